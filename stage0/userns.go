package stage0

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

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

// privateUsers gives the pod a UID block and decides how its trees are
// laid down: idmapped overlay layers where the kernel can (no copy), else a
// copy with shifted owners (rkt's way).
func (c *Config) privateUsers(pd *pods.Dir, pr *prepared, pc *PrepareConfig) error {
	shift, err := c.allocUIDs(pd, pr.pod)
	if err != nil {
		return err
	}
	pr.shift = shift
	if pc.NoOverlay {
		return nil
	}
	m, err := newIDMapper(shift, uidCount)
	if err == nil {
		err = probeIdmap(m, pr.pod)
	}
	if err != nil {
		if m != nil {
			m.Close()
		}
		c.logger().Info("idmapped mounts unavailable; copying the pod's trees", "pod", pr.pod.UUID, "err", err)
		pc.NoOverlay = true
		return nil
	}
	pr.idmap = m
	return nil
}

// probeIdmap checks that the filesystem of the data dir takes idmapped
// mounts, with a throwaway bind in the pod directory.
func probeIdmap(m *idmapper, p *pods.Pod) error {
	src := filepath.Join(p.Path(), ".idmap-probe")
	dst := filepath.Join(src, "m")
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(src)
	if err := m.bind(src, dst); err != nil {
		return err
	}
	return unix.Unmount(dst, unix.MNT_DETACH)
}

// allocUIDs gives the pod a free UID block, recorded in its directory. It
// runs under a lock so that two pods being prepared at once never get the
// same block.
func (c *Config) allocUIDs(pd *pods.Dir, p *pods.Pod) (int, error) {
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
	// The pod's root reaches its rootfs through the pod directory.
	if err := os.Chmod(p.Path(), 0o711); err != nil {
		return 0, err
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
