// Package overlay mounts read-only views of stacked directories, as `rkt
// export` and `rkt image render` need to read an image's layers or a pod's
// rootfs merged. It is Linux-only.
package overlay

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// MountReadOnly mounts a read-only overlay of lowers (topmost first) on mp.
// Without an upper dir overlayfs is read-only but wants two lower dirs, so a
// single one is bind-mounted instead.
func MountReadOnly(mp string, lowers []string) error {
	for _, d := range lowers {
		// overlayfs(5): ':' separates lower dirs and ',' options.
		if strings.ContainsAny(d, ":,") {
			return fmt.Errorf("path %s: overlayfs cannot take a path with ':' or ','", d)
		}
	}
	if len(lowers) == 1 {
		if err := unix.Mount(lowers[0], mp, "", unix.MS_BIND, ""); err != nil {
			return &os.PathError{Op: "bind mount", Path: mp, Err: err}
		}
		if err := unix.Mount("", mp, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			unix.Unmount(mp, unix.MNT_DETACH)
			return &os.PathError{Op: "remount read-only", Path: mp, Err: err}
		}
		return nil
	}
	if err := unix.Mount("overlay", mp, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(lowers, ":")); err != nil {
		return &os.PathError{Op: "mount overlay", Path: mp, Err: err}
	}
	return nil
}
