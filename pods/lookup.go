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
	"github.com/rkt-ng/rkt/pods/layout"
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

// Get finds a pod by full UUID, pod name, or unique UUID prefix. A full
// UUID always wins (a pod name cannot be a UUID). Otherwise a pod named ref
// is taken only when ref is not also a UUID prefix of another pod: a name
// like "5bee" must not silently act on a different pod, nor a prefix on a
// pod that merely has that name. Every such case, and a prefix of several
// pods, is ErrAmbiguous naming the candidates.
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
	var prefixed []string
	if len(ref) >= minPrefixLength {
		for _, u := range uuids {
			if strings.HasPrefix(u, ref) {
				prefixed = append(prefixed, u)
			}
		}
	}
	var named *Pod
	if NameRE.MatchString(ref) {
		if named, err = d.byName(ref); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	if named != nil {
		var others []string
		for _, u := range prefixed {
			if u != named.UUID {
				others = append(others, u)
			}
		}
		if len(others) > 0 {
			return nil, fmt.Errorf("%w: %q is the name of pod %s and a UUID prefix of %s; give a full UUID",
				ErrAmbiguous, ref, named.UUID, listPods(others))
		}
		return named, nil
	}
	switch {
	case len(prefixed) == 1:
		return d.open(prefixed[0])
	case len(prefixed) > 1:
		return nil, fmt.Errorf("%w: %q is a UUID prefix of %s; give a longer prefix", ErrAmbiguous, ref, listPods(prefixed))
	}
	// rkt 1.30's answer for a reference that names no pod.
	return nil, fmt.Errorf("%w: no matches found for %q", ErrNotFound, ref)
}

// listPods names candidate pods in an error: "pod U" or "pods U1, U2, ...".
func listPods(uuids []string) string {
	const max = 5
	if len(uuids) == 1 {
		return "pod " + uuids[0]
	}
	if len(uuids) <= max {
		return "pods " + strings.Join(uuids, ", ")
	}
	return fmt.Sprintf("pods %s and %d more", strings.Join(uuids[:max], ", "), len(uuids)-max)
}

// byName finds the pod named name, preferring one that is not garbage.
func (d *Dir) byName(name string) (*Pod, error) {
	var found []*Pod
	// A pod keeps its name until gc removes it.
	for _, s := range []string{dirEmbryo, dirPrepare, dirPrepared, dirRun, dirExitedGarbage} {
		ents, _ := os.ReadDir(filepath.Join(d.root, s))
		for _, e := range ents {
			b, err := os.ReadFile(layout.Dir(filepath.Join(d.root, s, e.Name())).Name())
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
