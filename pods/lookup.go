package pods

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/flock"
)

// open looks for uuid in every state directory and observes its state. It
// does not keep any lock.
func (d *Dir) open(uuid string) (*Pod, error) {
	for _, s := range stateDirs {
		path := filepath.Join(d.root, s, uuid)
		l, err := flock.OpenDir(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		p := &Pod{UUID: uuid, dir: d, sdir: s}
		locked := l.TryShared() != nil
		l.Close()
		p.state = observe(s, locked)
		return p, nil
	}
	// A concurrent rename may move the pod between two directories while we
	// look; one more pass finds it at its new place.
	for _, s := range stateDirs {
		if _, err := os.Stat(filepath.Join(d.root, s, uuid)); err == nil {
			return d.open(uuid)
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrNotFound, uuid)
}

func observe(sdir string, locked bool) State {
	switch sdir {
	case dirEmbryo:
		return Embryo
	case dirPrepare:
		if locked {
			return Preparing
		}
		return AbortedPrepare
	case dirPrepared:
		return Prepared
	case dirRun:
		if locked {
			return Running
		}
		return Exited
	case dirExitedGarbage:
		if locked {
			return ExitedDeleting
		}
		return ExitedGarbage
	case dirGarbage:
		if locked {
			return Deleting
		}
		return Garbage
	}
	return stateUnknown
}

// UUIDs lists the UUIDs of all pods in every state, sorted.
func (d *Dir) UUIDs() ([]string, error) {
	seen := map[string]bool{}
	for _, s := range stateDirs {
		ents, err := os.ReadDir(filepath.Join(d.root, s))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		for _, e := range ents {
			if uuidRE.MatchString(e.Name()) {
				seen[e.Name()] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for u := range seen {
		out = append(out, u)
	}
	sort.Strings(out)
	return out, nil
}

// List opens every pod, sorted by UUID. Pods that vanish while listing are
// skipped; a pod renamed between two state directories while listing is
// reported once, in the state found last.
func (d *Dir) List() ([]*Pod, error) {
	byUUID := map[string]*Pod{}
	for _, s := range stateDirs {
		ents, err := os.ReadDir(filepath.Join(d.root, s))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		for _, e := range ents {
			if !uuidRE.MatchString(e.Name()) {
				continue
			}
			l, err := flock.OpenDir(filepath.Join(d.root, s, e.Name()))
			if err != nil {
				continue // moved or removed meanwhile
			}
			locked := l.TryShared() != nil
			l.Close()
			byUUID[e.Name()] = &Pod{UUID: e.Name(), dir: d, sdir: s, state: observe(s, locked)}
		}
	}
	out := make([]*Pod, 0, len(byUUID))
	for _, p := range byUUID {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UUID < out[j].UUID })
	return out, nil
}

// Get finds a pod by full UUID, unique UUID prefix, or pod name.
func (d *Dir) Get(ref string) (*Pod, error) {
	if ref == "" {
		return nil, fmt.Errorf("%w: empty pod reference", ErrNotFound)
	}
	if uuidRE.MatchString(ref) {
		return d.open(ref)
	}
	uuids, err := d.UUIDs()
	if err != nil {
		return nil, err
	}
	var match []string
	if len(ref) >= minPrefixLength {
		for _, u := range uuids {
			if strings.HasPrefix(u, ref) {
				match = append(match, u)
			}
		}
	}
	switch {
	case len(match) == 1:
		return d.open(match[0])
	case len(match) > 1:
		return nil, fmt.Errorf("%w: %q matches %d pods", ErrAmbiguous, ref, len(match))
	}
	if NameRE.MatchString(ref) {
		if p, err := d.byName(ref); err == nil {
			return p, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrNotFound, ref)
}

// byName finds the pod named name, preferring one that is not garbage.
func (d *Dir) byName(name string) (*Pod, error) {
	var found []*Pod
	// A pod keeps its name until gc removes it.
	for _, s := range []string{dirEmbryo, dirPrepare, dirPrepared, dirRun, dirExitedGarbage} {
		ents, _ := os.ReadDir(filepath.Join(d.root, s))
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(d.root, s, e.Name(), nameFile))
			if err != nil || strings.TrimSpace(string(b)) != name {
				continue
			}
			p, err := d.open(e.Name())
			if err != nil {
				continue
			}
			if p.state == AbortedPrepare {
				continue
			}
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	case 1:
		return found[0], nil
	}
	// An exited pod keeps its name until gc; a live pod wins.
	for _, p := range found {
		if !p.IsFinished() {
			return p, nil
		}
	}
	return found[len(found)-1], nil
}

func ctime(path string) (t timeT) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return t
	}
	return timeOf(st.Ctim)
}
