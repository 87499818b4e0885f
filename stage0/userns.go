package stage0

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rkt-ng/rkt/internal/copytree"
	"github.com/rkt-ng/rkt/internal/flock"
	"github.com/rkt-ng/rkt/pods"
)

// User namespace ranges: each pod with --private-users gets its own block of
// 65536 host IDs, from uidBase up, recorded in its pod directory as rkt did
// (private-users-prepared holds "SHIFT:COUNT").
const (
	uidBase   = 1 << 28
	uidCount  = 1 << 16
	uidBlocks = 4096
	uidFile   = "private-users-prepared"
)

// shiftForPrivateUsers gives the pod a free UID block and shifts the owners
// of its copied rootfs into it. It runs under a lock so that two pods being
// prepared at once never get the same block.
func (c *Config) shiftForPrivateUsers(pd *pods.Dir, p *pods.Pod) (int, error) {
	// The pod's root is an unprivileged host uid: it must be able to reach
	// the pod's rootfs through every directory above it.
	for d := filepath.Dir(p.Path()); d != "/" && d != "."; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return 0, err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return 0, fmt.Errorf("--private-users: %s is not searchable by other users; the pod's user namespace cannot reach its rootfs (chmod o+x %s)", d, d)
		}
	}
	l, err := flock.Open(filepath.Join(pd.Root(), ".uidrange.lock"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	if err := l.Exclusive(); err != nil {
		return 0, err
	}
	used := map[int]bool{}
	list, err := pd.List()
	if err != nil {
		return 0, err
	}
	for _, q := range list {
		if q.IsGarbage() {
			continue
		}
		if shift, _, err := readUIDRange(q.Path()); err == nil {
			used[shift] = true
		}
	}
	shift := -1
	for k := 0; k < uidBlocks; k++ {
		if s := uidBase + k*uidCount; !used[s] {
			shift = s
			break
		}
	}
	if shift < 0 {
		return 0, fmt.Errorf("--private-users: all %d UID ranges are in use", uidBlocks)
	}
	if err := os.WriteFile(filepath.Join(p.Path(), uidFile), []byte(fmt.Sprintf("%d:%d", shift, uidCount)), 0o644); err != nil {
		return 0, err
	}
	if err := copytree.Shift(p.Stage1RootfsPath(), shift); err != nil {
		return 0, fmt.Errorf("--private-users: %w", err)
	}
	return shift, nil
}

// readUIDRange reads a pod's private-users-prepared file.
func readUIDRange(podDir string) (shift, count int, err error) {
	b, err := os.ReadFile(filepath.Join(podDir, uidFile))
	if err != nil {
		return 0, 0, err
	}
	s, n, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
	if !ok {
		return 0, 0, fmt.Errorf("%s: malformed", uidFile)
	}
	if shift, err = strconv.Atoi(s); err != nil {
		return 0, 0, err
	}
	count, err = strconv.Atoi(n)
	return shift, count, err
}
