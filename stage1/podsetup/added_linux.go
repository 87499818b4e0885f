package podsetup

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Added is the mount plan of an app added to a running pod, sent to its init
// with the app's start request (stage2.AppStart.Mounts).
type Added struct {
	App          App  `json:"app"`
	DisablePaths bool `json:"disablePaths,omitempty"`
	// Cgroups are mounts in the pod's root (its view, "/") that make the
	// app's cgroups writable, made before the app's own mounts.
	Cgroups []Mount `json:"cgroups,omitempty"`
}

// MountAddedFds runs MountAdded for a plan received as JSON with its fds:
// the rootfs tree, then one per bind.
func MountAddedFds(plan []byte, fds []int) error {
	var a Added
	if err := json.Unmarshal(plan, &a); err != nil {
		return fmt.Errorf("decode app mounts: %w", err)
	}
	if len(fds) != 1+len(a.App.Binds) {
		return fmt.Errorf("app %s: %d mount trees sent, want %d", a.App.Name, len(fds), 1+len(a.App.Binds))
	}
	for _, m := range a.Cgroups {
		if err := mount(m.Source, m.Target, m.FSType, m.Flags, m.Data); err != nil {
			return fmt.Errorf("app %s: cgroup view: %w", a.App.Name, err)
		}
	}
	return MountAdded(&a.App, a.DisablePaths, fds[0], fds[1:])
}

// MountAdded makes the mounts of an app added to a running mutable pod
// (rkt app). It runs in the pod's init, in the pod's mount namespace after
// pivot_root, where the host's paths are out of reach: the host (the app
// start entrypoint) hands over the app's rootfs and each bind source as
// detached mount trees (open_tree(2) with OPEN_TREE_CLONE), which are moved
// into place with move_mount(2). a.Rootfs is the app's rootfs as the pod
// sees it; bindFds[i] is the tree of a.Binds[i]. Everything else (proc,
// sys, dev, masked paths, read-only rootfs) is as for the pod's first apps.
// On error the app's mounts are undone. The fds are not closed.
func MountAdded(a *App, disablePaths bool, rootfsFd int, bindFds []int) (retErr error) {
	if len(bindFds) != len(a.Binds) {
		return fmt.Errorf("app %s: %d bind sources for %d binds", a.Name, len(bindFds), len(a.Binds))
	}
	fi, err := os.Lstat(a.Rootfs)
	if err != nil {
		return fmt.Errorf("app %s: rootfs mount point: %w", a.Name, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("app %s: rootfs mount point %s is not a directory", a.Name, a.Rootfs)
	}
	if err := moveMount(rootfsFd, a.Rootfs); err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			UnmountAdded(a.Rootfs)
		}
	}()
	return mountAppWith("/", disablePaths, a, func(i int, _ Bind, target string) error {
		return moveMount(bindFds[i], target)
	})
}

// moveMount attaches a detached tree at target and makes it private: a
// clone of a shared host mount would otherwise stay a peer of it, and the
// mounts made below it in the pod would propagate back to the host.
func moveMount(fd int, target string) error {
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return &os.PathError{Op: "move_mount", Path: target, Err: err}
	}
	return mount("", target, "", unix.MS_REC|unix.MS_PRIVATE, "")
}

// UnmountAdded detaches every mount stacked on an app's rootfs mount point
// (the rootfs with all its submounts), as the pod sees it.
func UnmountAdded(rootfs string) error {
	for range 16 {
		err := unix.Unmount(rootfs, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil // no longer a mount point
		}
		if err != nil {
			return &os.PathError{Op: "umount", Path: rootfs, Err: err}
		}
	}
	return fmt.Errorf("umount %s: still mounted", rootfs)
}

// OpenTree returns a detached copy of the mount tree at path (recursive: with
// its submounts) for MountAdded, close-on-exec.
func OpenTree(path string, recursive bool) (int, error) {
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, flags)
	if err != nil {
		return -1, &os.PathError{Op: "open_tree", Path: path, Err: err}
	}
	return fd, nil
}
