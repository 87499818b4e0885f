// Package copytree copies a directory tree preserving what a container rootfs
// needs: modes, owners, mtimes, symlinks, device nodes, fifos and hard links.
// It never follows a symlink in the source. Linux-only.
package copytree

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Copy copies src into dst, which must not exist yet.
func Copy(src, dst string) error {
	type inode struct{ dev, ino uint64 }
	links := map[inode]string{}
	type dirTime struct {
		path string
		ts   [2]unix.Timespec
	}
	var dirs []dirTime
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return &os.PathError{Op: "lstat", Path: p, Err: err}
		}
		mode := st.Mode & 0o7777
		ts := [2]unix.Timespec{st.Atim, st.Mtim}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if err := os.Mkdir(target, 0o700); err != nil {
				return err
			}
			dirs = append(dirs, dirTime{target, ts})
		case unix.S_IFLNK:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(l, target); err != nil {
				return err
			}
		case unix.S_IFREG:
			key := inode{st.Dev, st.Ino}
			if first, ok := links[key]; ok && st.Nlink > 1 {
				return os.Link(first, target)
			}
			if err := copyFile(p, target); err != nil {
				return err
			}
			links[key] = target
		case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
			if err := unix.Mknod(target, st.Mode, int(st.Rdev)); err != nil {
				return &os.PathError{Op: "mknod", Path: target, Err: err}
			}
		default:
			return nil // sockets are not copied
		}
		if err := unix.Lchown(target, int(st.Uid), int(st.Gid)); err != nil {
			return &os.PathError{Op: "lchown", Path: target, Err: err}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			if err := unix.Chmod(target, mode); err != nil {
				return &os.PathError{Op: "chmod", Path: target, Err: err}
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				unix.UtimesNano(target, ts[:])
			}
		} else {
			unix.UtimesNanoAt(unix.AT_FDCWD, target, ts[:], unix.AT_SYMLINK_NOFOLLOW)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		unix.UtimesNano(dirs[i].path, dirs[i].ts[:])
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Shift adds shift to the owner and group of everything under dir (dir
// included), never following symlinks: a rootfs copied for a user namespace
// whose root is host uid shift.
func Shift(dir string, shift int) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return &os.PathError{Op: "lstat", Path: p, Err: err}
		}
		mode := st.Mode & 0o7777
		if err := unix.Lchown(p, int(st.Uid)+shift, int(st.Gid)+shift); err != nil {
			return &os.PathError{Op: "lchown", Path: p, Err: err}
		}
		// chown(2) clears setuid and setgid bits; the image asked for them.
		if st.Mode&unix.S_IFMT != unix.S_IFLNK && mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
			return unix.Chmod(p, mode)
		}
		return nil
	})
}
