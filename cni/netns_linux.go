package cni

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/eintr"
	"github.com/rkt-ng/rkt/internal/flock"
	"github.com/rkt-ng/rkt/internal/mountinfo"
	"github.com/rkt-ng/rkt/internal/netns"
)

// NewNetNS creates a network namespace, with loopback up, and bind-mounts it
// at path (for example /run/rkt/netns/<uuid>), which must not exist. The
// parent directory is made a mount point of its own first (see
// prepareNetNSDir). On error nothing is left behind.
func NewNetNS(path string) error {
	path = filepath.Clean(path)
	if err := prepareNetNSDir(filepath.Dir(path)); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL|unix.O_CLOEXEC, 0o444)
	if err != nil {
		return fmt.Errorf("create netns file: %w", err)
	}
	f.Close()
	if err := onNewNetNSThread(path); err != nil {
		if rerr := RemoveNetNS(path); rerr != nil {
			return fmt.Errorf("create netns %s: %w (cleanup: %v)", path, err, rerr)
		}
		return fmt.Errorf("create netns %s: %w", path, err)
	}
	return nil
}

// onNewNetNSThread moves a dedicated OS thread into a new network namespace,
// bind-mounts that namespace at path, brings lo up and moves the thread back.
func onNewNetNSThread(path string) error {
	return netns.DoNew(func() error {
		// The thread's namespace link now names the new namespace.
		if err := unix.Mount(netns.ThreadPath(), path, "none", unix.MS_BIND, ""); err != nil {
			return &os.PathError{Op: "mount", Path: path, Err: err}
		}
		return loopbackUp()
	})
}

// loopbackUp brings lo up in the calling thread's network namespace.
func loopbackUp() error {
	// A netlink handle opens its socket in the namespace of the calling
	// thread, which is the new one.
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

// RemoveNetNS unmounts and removes a namespace file made by NewNetNS. The
// namespace itself is freed by the kernel once no process is in it. A missing
// or already unmounted file is not an error.
func RemoveNetNS(path string) error {
	err := eintr.Retry(func() error { return unix.Unmount(path, unix.MNT_DETACH) })
	// EINVAL: not a mount point (already unmounted).
	if err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return &os.PathError{Op: "unmount", Path: path, Err: err}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns file: %w", err)
	}
	return nil
}

// isNetNS reports whether path is a mounted network namespace.
func isNetNS(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// Do runs fn on an OS thread that is inside the network namespace mounted at
// path. Sockets that fn creates belong to that namespace and can be used from
// any goroutine afterwards. fn must not start goroutines that rely on the
// namespace: they run on other threads.
func Do(path string, fn func() error) error {
	if !isNetNS(path) {
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("open netns: %w", err)
		}
		return fmt.Errorf("open netns %s: not a network namespace", path)
	}
	return netns.Do(path, fn)
}

// prepareNetNSDir creates dir and turns it into a mount point of its own, as
// iproute2 does for /run/netns.
//
// A namespace bind mount placed in an ordinary directory belongs to the
// mount of the enclosing file system (/run), and is copied into every mount
// namespace created afterwards, including each pod's. Such copies keep the
// network namespace (and its veth) alive after we unmount ours, and with a
// shared /run our mounts also spread to every peer of it. So dir is
// bind-mounted onto itself, made MS_PRIVATE (leaving the peer group of /run:
// our netns mounts stop propagating to the rest of the system), then
// MS_SHARED (a new peer group of its own: the copy in a pod's mount namespace
// is a peer or slave of it, so our unmount at teardown propagates there and
// the namespace is really freed).
//
// The directory is flocked while this happens so that two concurrent runs do
// not stack two mounts, which would hide the lower one's netns mounts.
func prepareNetNSDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create netns dir: %w", err)
	}
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("resolve netns dir: %w", err)
	}
	l, err := flock.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("lock netns dir: %w", err)
	}
	defer l.Close()
	if err := l.Exclusive(); err != nil {
		return fmt.Errorf("lock netns dir: %w", err)
	}
	mounted, err := isMountPoint(dir)
	if err != nil {
		return err
	}
	if mounted {
		return nil
	}
	if err := unix.Mount(dir, dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return &os.PathError{Op: "bind mount", Path: dir, Err: err}
	}
	if err := unix.Mount("", dir, "none", unix.MS_PRIVATE, ""); err != nil {
		return &os.PathError{Op: "make private", Path: dir, Err: err}
	}
	if err := unix.Mount("", dir, "none", unix.MS_SHARED, ""); err != nil {
		return &os.PathError{Op: "make shared", Path: dir, Err: err}
	}
	return nil
}

// isMountPoint reports whether dir (a clean absolute path without symlinks)
// is a mount point in this mount namespace, from /proc/self/mountinfo.
func isMountPoint(dir string) (bool, error) {
	ms, err := mountinfo.Read()
	if err != nil {
		return false, err
	}
	for _, m := range ms {
		if m.Mountpoint == dir {
			return true, nil
		}
	}
	return false, nil
}
