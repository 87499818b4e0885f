package rktgroup

import (
	"os"

	"golang.org/x/sys/unix"
)

// Fix gives dir the mode and owner it must have: root:<rkt> Mode when shared
// is set and the group exists, root:root private otherwise, changing only
// what differs (so that a data directory an older rkt made gets fixed, and
// one made while the group existed is closed again once it is gone). Only
// root changes anything; for another user Fix is a no-op.
func Fix(dir string, private os.FileMode, shared bool) error {
	if os.Geteuid() != 0 {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: dir, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return &os.PathError{Op: "open", Path: dir, Err: unix.ENOTDIR}
	}
	mode, gid := uint32(private.Perm()), 0
	if shared {
		if g, ok := GID(); ok {
			mode, gid = 0o750|unix.S_ISGID, g
		}
	}
	if st.Uid != 0 || int(st.Gid) != gid {
		if err := unix.Lchown(dir, 0, gid); err != nil {
			return &os.PathError{Op: "chown", Path: dir, Err: err}
		}
		// chown(2) clears the setgid bit of some file systems' dirs.
		st.Mode = 0
	}
	if st.Mode&0o7777 != mode {
		// os.Chmod would drop S_ISGID unless given as os.ModeSetgid.
		if err := unix.Chmod(dir, mode); err != nil {
			return &os.PathError{Op: "chmod", Path: dir, Err: err}
		}
	}
	return nil
}
