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
	"github.com/rkt-ng/rkt/pods/layout"
)

// User namespace ranges: each pod with --private-users gets its own block of
// 65536 host IDs, from uidBase up, recorded in its pod directory as rkt did
// (layout.PrivateUsersPrepared holds "SHIFT:COUNT").
const (
	uidBase   = 1 << 28
	uidCount  = 1 << 16
	uidBlocks = 4096
)

// privateUsers gives the pod a UID block and decides how its trees are
// laid down: an overlay of idmapped layers where the kernel can (no copy),
// else a copy with shifted owners (rkt's way).
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
		c.logger().Warn("idmapped overlay layers unavailable (they need Linux 6.13 or later and idmapped mounts on the filesystem of --dir); copying the pod's trees with shifted owners",
			"pod", pr.pod.UUID, "err", err)
		pc.NoOverlay = true
		return nil
	}
	pr.idmap = m
	return nil
}

// probeIdmap checks that the filesystem of the data dir takes idmapped
// mounts and that overlayfs takes a layer as a file descriptor
// (FSCONFIG_SET_FD "lowerdir+", Linux ≥ 6.13), with a throwaway directory
// in the pod directory. Nothing is mounted.
func probeIdmap(m *idmapper, p *pods.Pod) error {
	dir := filepath.Join(p.Path(), ".idmap-probe")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	defer os.Remove(dir)
	fd, err := m.detached(dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("fsopen overlay", err)
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigSetFd(fsfd, "lowerdir+", fd); err != nil {
		return os.NewSyscallError("fsconfig lowerdir+ fd", err)
	}
	return nil
}

// allocUIDs gives the pod a free UID block, recorded in its directory. It
// runs under a lock so that two pods being prepared at once never get the
// same block.
func (c *Config) allocUIDs(pd *pods.Dir, p *pods.Pod) (int, error) {
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
	if err := os.WriteFile(p.PrivateUsersPath(), []byte(fmt.Sprintf("%d:%d", shift, uidCount)), 0o644); err != nil {
		return 0, err
	}
	if err := openToPodRoot(p.Path(), shift); err != nil {
		return 0, err
	}
	return shift, nil
}

// readUIDRange reads a pod's private-users-prepared file.
func readUIDRange(podDir string) (shift, count int, err error) {
	b, err := os.ReadFile(layout.Dir(podDir).PrivateUsersPrepared())
	if err != nil {
		return 0, 0, err
	}
	s, n, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
	if !ok {
		return 0, 0, fmt.Errorf("%s: malformed", layout.PrivateUsersPrepared)
	}
	if shift, err = strconv.Atoi(s); err != nil {
		return 0, 0, err
	}
	count, err = strconv.Atoi(n)
	return shift, count, err
}

// openToPodRoot lets the pod's root (host gid shift) search the pod
// directory, and nobody else: root:shift 0710. stage1 starts the pod's
// first process there (its working directory) and names the pod's rootfs
// relative to it, so the pod's root needs no access to the directories
// above, which stay root-only.
func openToPodRoot(podDir string, shift int) error {
	if err := os.Lchown(podDir, 0, shift); err != nil {
		return err
	}
	return os.Chmod(podDir, 0o710)
}
