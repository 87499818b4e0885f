package store

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// OCI whiteouts (image-spec layer.md) become overlayfs whiteouts, so that
// each layer can be unpacked on its own and used as a lower directory:
// "<dir>/.wh.<name>" becomes a 0:0 character device <dir>/<name>, and
// "<dir>/.wh..wh..opq" the xattr trusted.overlay.opaque=y on <dir>
// (Documentation/filesystems/overlayfs.rst, "whiteouts and opaque
// directories"). A whiteout hides lower layers only, so a same-named entry
// of the layer itself wins.
const (
	whPrefix     = ".wh."
	whMeta       = ".wh..wh."
	whOpaque     = ".wh..wh..opq"
	opaqueXattr  = "trusted.overlay.opaque"
	resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS
)

// whiteouts collects the whiteout entries of one layer while it is
// extracted; it is the untar.Options.Keep of the extraction, which skips them.
type whiteouts struct {
	files  []string // cleaned paths of hidden entries
	opaque []string // cleaned paths of opaque directories
	err    error
}

func (w *whiteouts) keep(name string) bool {
	dir, base := path.Split(name)
	if !strings.HasPrefix(base, whPrefix) {
		return true
	}
	dir = path.Clean(dir)
	switch {
	case base == whOpaque:
		w.opaque = append(w.opaque, dir)
	case strings.HasPrefix(base, whMeta):
		// Other AUFS metadata (.wh..wh.plnk): not content.
	default:
		target := strings.TrimPrefix(base, whPrefix)
		if target == "" || target == "." || target == ".." {
			if w.err == nil {
				w.err = fmt.Errorf("invalid whiteout %q", name)
			}
			return false
		}
		w.files = append(w.files, path.Join(dir, target))
	}
	return false
}

// apply writes the collected whiteouts into the extracted layer at root.
func (w *whiteouts) apply(root string) error {
	if w.err != nil {
		return w.err
	}
	if len(w.files) == 0 && len(w.opaque) == 0 {
		return nil
	}
	rfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(rfd)
	for _, name := range w.files {
		dir, base := path.Split(name)
		pfd, err := mkdirBeneath(rfd, path.Clean(dir))
		if err != nil {
			return fmt.Errorf("whiteout %s: %w", name, err)
		}
		var st unix.Stat_t
		err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == nil {
			unix.Close(pfd)
			continue // the layer has the entry itself
		}
		if err == unix.ENOENT {
			err = unix.Mknodat(pfd, base, unix.S_IFCHR, 0)
		}
		unix.Close(pfd)
		if err != nil {
			return fmt.Errorf("whiteout %s: %w", name, os.NewSyscallError("mknodat", err))
		}
	}
	for _, dir := range w.opaque {
		fd, err := mkdirBeneath(rfd, dir)
		if err != nil {
			return fmt.Errorf("opaque whiteout in %s: %w", dir, err)
		}
		err = unix.Fsetxattr(fd, opaqueXattr, []byte("y"), 0)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("opaque whiteout in %s: %w", dir, os.NewSyscallError("fsetxattr", err))
		}
	}
	return nil
}

// mkdirBeneath opens the directory name below rfd, creating missing
// components (0755), never following symlinks. The fd is O_RDONLY.
func mkdirBeneath(rfd int, name string) (int, error) {
	if name == "." || name == "" {
		return unix.Dup(rfd)
	}
	how := &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: resolveFlags}
	fd, err := unix.Openat2(rfd, name, how)
	if err == nil {
		return fd, nil
	}
	if err != unix.ENOENT {
		return -1, &os.PathError{Op: "openat2", Path: name, Err: err}
	}
	pfd, err := mkdirBeneath(rfd, path.Dir(name))
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	if err := unix.Mkdirat(pfd, path.Base(name), 0o755); err != nil && err != unix.EEXIST {
		return -1, &os.PathError{Op: "mkdirat", Path: name, Err: err}
	}
	fd, err = unix.Openat2(pfd, path.Base(name), how)
	if err != nil {
		return -1, &os.PathError{Op: "openat2", Path: name, Err: err}
	}
	return fd, nil
}

// maxPasswdSize bounds the /etc/passwd read from an image.
const maxPasswdSize = 4 << 20

// passwdGroup returns a function giving the primary group (numeric) of a
// user from the image's /etc/passwd: the file of the topmost layer that has
// one, unless a layer above hides it. It returns "" when unknown.
func (s *Store) passwdGroup(layers []ociLayer) func(user string) string {
	return func(user string) string {
		for i := len(layers) - 1; i >= 0; i-- {
			h := strings.TrimPrefix(layers[i].DiffID, "sha256:")
			b, found, hidden := readLayerFile(filepath.Join(s.layerDir(h), "rootfs"), "etc/passwd")
			if hidden {
				return ""
			}
			if found {
				return primaryGroup(b, user)
			}
		}
		return ""
	}
}

// readLayerFile reads a regular file of one layer. hidden is true when the
// layer hides lower ones' copies (a whiteout device or an opaque parent).
func readLayerFile(root, name string) (data []byte, found, hidden bool) {
	rfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false, false
	}
	defer unix.Close(rfd)
	how := &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW, Resolve: resolveFlags}
	fd, err := unix.Openat2(rfd, name, how)
	if err != nil {
		var st unix.Stat_t
		if unix.Fstatat(rfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
			return nil, false, true
		}
		if dfd, err := unix.Openat2(rfd, path.Dir(name), &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: resolveFlags}); err == nil {
			buf := make([]byte, 2)
			n, _ := unix.Fgetxattr(dfd, opaqueXattr, buf)
			unix.Close(dfd)
			if n == 1 && buf[0] == 'y' {
				return nil, false, true
			}
		}
		return nil, false, false
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, false, false
	}
	b, err := io.ReadAll(io.LimitReader(f, maxPasswdSize))
	if err != nil {
		return nil, false, false
	}
	return b, true, false
}

// primaryGroup finds user (a name or a numeric uid) in passwd content and
// returns its gid field.
func primaryGroup(passwd []byte, user string) string {
	sc := bufio.NewScanner(strings.NewReader(string(passwd)))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 4 {
			continue
		}
		if f[0] == user || f[2] == user {
			if _, err := strconv.ParseUint(f[3], 10, 32); err == nil {
				return f[3]
			}
			return ""
		}
	}
	return ""
}
