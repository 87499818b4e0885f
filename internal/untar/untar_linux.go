package untar

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/eintr"
)

// zeros is compared with each chunk read to find holes.
var zeros = make([]byte, bufSize)

const bufSize = 1 << 20

// ErrUnsafePath marks an entry whose name or hard-link target would leave the
// target directory or pass through a symlink.
var ErrUnsafePath = errors.New("unsafe path")

// Options control Extract.
type Options struct {
	// StripPrefix, if set, selects the entries under it and strips it from
	// their names: "rootfs/" for an ACI. Entries outside it (the ACI
	// "manifest") are skipped; the prefix directory itself is the target
	// directory, which takes its attributes. Hard-link targets must be under
	// it too.
	StripPrefix string
	// Keep, if set, is asked about every entry that is not a directory, with
	// its cleaned name relative to the target directory ("etc/passwd");
	// entries it rejects are skipped. Directories are always extracted. This
	// implements the appc pathWhitelist.
	Keep func(name string) bool
	// KeepOwners applies uid/gid, setuid/setgid bits, all extended attributes
	// (security.capability included) and creates block and character devices.
	// It needs root. Without it, files belong to the caller, setuid/setgid
	// bits are cleared, only user.* xattrs are set and device entries are
	// skipped.
	KeepOwners bool
	// OCI applies the OCI image-spec layer rules for whiteout entries.
	OCI bool
	// RejectDuplicates makes a second entry with the same name an error, as
	// the ACI format requires.
	RejectDuplicates bool
}

const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
	// xattrPAX is the PAX record prefix GNU tar and Go use for xattrs.
	xattrPAX = "SCHILY.xattr."
	// resolve is how every path inside the tree is resolved: never above
	// the root fd and never through a symlink, magic or not.
	resolve = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS
)

// CleanName normalizes a tar entry name to a slash-separated path relative
// to the archive root ("." for the root itself). Absolute names and names
// with a ".." component are rejected with ErrUnsafePath.
func CleanName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("%w: absolute name", ErrUnsafePath)
	}
	for rest := name; rest != ""; {
		var c string
		c, rest, _ = strings.Cut(rest, "/")
		if c == ".." {
			return "", fmt.Errorf("%w: \"..\" component", ErrUnsafePath)
		}
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%w: NUL byte in name", ErrUnsafePath)
	}
	return path.Clean(name), nil
}

// CheckEntry reports whether Extract could accept hdr: a supported entry
// type, a safe name and, for a hard link, a safe target. Importers use it to
// refuse an archive before storing it.
func CheckEntry(hdr *tar.Header) error {
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeDir, tar.TypeSymlink, tar.TypeLink,
		tar.TypeChar, tar.TypeBlock, tar.TypeFifo, tar.TypeXGlobalHeader:
	default:
		return fmt.Errorf("unsupported entry type %q", hdr.Typeflag)
	}
	if _, err := CleanName(hdr.Name); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeLink {
		if _, err := CleanName(hdr.Linkname); err != nil {
			return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
		}
	}
	return nil
}

// Extract reads the tar stream r and creates its entries under dir, which
// must exist. It stops with ctx.Err() when ctx is cancelled.
func Extract(ctx context.Context, r io.Reader, dir string, o Options) error {
	root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	e := &extractor{
		ctx:     ctx,
		o:       o,
		root:    root,
		cacheFd: -1,
		buf:     make([]byte, bufSize),
		prefix:  path.Clean(strings.TrimSuffix(o.StripPrefix, "/")),
		dirs:    map[string]*dirAttrs{},
	}
	if o.StripPrefix == "" {
		e.prefix = ""
	}
	if o.RejectDuplicates {
		e.seen = map[string]struct{}{}
	}
	if o.OCI {
		e.layer = map[string]struct{}{}
	}
	defer e.close()

	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 1<<16)
	}
	tr := tar.NewReader(br)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		if err := e.entry(tr, hdr); err != nil {
			return fmt.Errorf("tar entry %q: %w", hdr.Name, err)
		}
	}
	return e.finish()
}

// dirAttrs are applied to a directory once every entry is extracted, so that
// creating its children does not change its mtime and a read-only mode does
// not get in the way.
type dirAttrs struct {
	mode     uint32
	uid, gid int
	mtime    time.Time
	xattrs   map[string]string
}

type extractor struct {
	ctx  context.Context
	o    Options
	root int
	buf  []byte
	// prefix is StripPrefix cleaned and without its slash, or "".
	prefix string
	// seen holds every extracted name, for RejectDuplicates.
	seen map[string]struct{}
	// layer holds, with OCI, every name of this layer and all its
	// ancestors: what an opaque whiteout must keep.
	layer map[string]struct{}
	// dirs holds the deferred attributes of directories, by name.
	dirs map[string]*dirAttrs
	// cacheName/cacheFd are the last parent directory opened (an O_PATH
	// fd). Tar entries come sorted, so most entries share it.
	cacheName string
	cacheFd   int
}

func (e *extractor) close() {
	e.invalidate()
	unix.Close(e.root)
}

func (e *extractor) invalidate() {
	if e.cacheFd >= 0 {
		unix.Close(e.cacheFd)
		e.cacheFd = -1
	}
}

func (e *extractor) entry(tr *tar.Reader, hdr *tar.Header) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	name, err := CleanName(hdr.Name)
	if err != nil {
		return err
	}
	if name, err = e.strip(name); err != nil || name == "" {
		return err
	}
	if e.seen != nil {
		if _, dup := e.seen[name]; dup {
			return errors.New("duplicate entry")
		}
		e.seen[name] = struct{}{}
	}
	dirName, base := path.Split(name)
	dirName = path.Clean(dirName)
	if e.o.OCI && strings.HasPrefix(base, whiteoutPrefix) {
		return e.whiteout(dirName, base)
	}
	if hdr.Typeflag != tar.TypeDir && e.o.Keep != nil && !e.o.Keep(name) {
		return nil
	}
	if e.layer != nil {
		e.markLayer(name)
	}
	if name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return errors.New("root of the archive is not a directory")
		}
		e.deferDir(name, hdr)
		return nil
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return e.dir(name, dirName, base, hdr)
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		return e.file(tr, dirName, base, hdr)
	case tar.TypeSymlink:
		return e.symlink(dirName, base, hdr)
	case tar.TypeLink:
		return e.hardlink(name, dirName, base, hdr)
	case tar.TypeChar, tar.TypeBlock:
		if !e.o.KeepOwners {
			return nil
		}
		typ := uint32(unix.S_IFCHR)
		if hdr.Typeflag == tar.TypeBlock {
			typ = unix.S_IFBLK
		}
		return e.node(dirName, base, hdr, typ, unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
	case tar.TypeFifo:
		return e.node(dirName, base, hdr, unix.S_IFIFO, 0)
	default:
		return fmt.Errorf("unsupported entry type %q", hdr.Typeflag)
	}
}

// strip removes StripPrefix from a cleaned name; "" means skip the entry.
func (e *extractor) strip(name string) (string, error) {
	if e.prefix == "" {
		return name, nil
	}
	if name == e.prefix {
		return ".", nil
	}
	if rest, ok := strings.CutPrefix(name, e.prefix+"/"); ok {
		return rest, nil
	}
	return "", nil
}

func (e *extractor) markLayer(name string) {
	for name != "." && name != "/" {
		if _, ok := e.layer[name]; ok {
			return // its ancestors are in already
		}
		e.layer[name] = struct{}{}
		name = path.Dir(name)
	}
}

// parent returns an O_PATH fd of the directory dirName, creating missing
// directories (mode 0755) like tar does. The fd belongs to the cache.
func (e *extractor) parent(dirName string) (int, error) {
	if dirName == "." {
		return e.root, nil
	}
	if e.cacheFd >= 0 && e.cacheName == dirName {
		return e.cacheFd, nil
	}
	fd, err := openBeneath(e.root, dirName, unix.O_PATH|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) {
		fd, err = e.mkdirAll(dirName)
	}
	if err != nil {
		return -1, pathErr(dirName, err)
	}
	e.invalidate()
	e.cacheName, e.cacheFd = dirName, fd
	return fd, nil
}

// mkdirAll creates dirName component by component below the root.
func (e *extractor) mkdirAll(dirName string) (int, error) {
	cur := -1
	at := e.root
	for rest := dirName; rest != ""; {
		var c string
		c, rest, _ = strings.Cut(rest, "/")
		fd, err := openBeneath(at, c, unix.O_PATH|unix.O_DIRECTORY)
		if errors.Is(err, unix.ENOENT) {
			if err = unix.Mkdirat(at, c, 0o755); err != nil && err != unix.EEXIST {
				err = os.NewSyscallError("mkdirat", err)
			} else {
				fd, err = openBeneath(at, c, unix.O_PATH|unix.O_DIRECTORY)
			}
		}
		if cur >= 0 {
			unix.Close(cur)
		}
		if err != nil {
			return -1, err
		}
		cur, at = fd, fd
	}
	return cur, nil
}

func (e *extractor) dir(name, dirName, base string, hdr *tar.Header) error {
	pfd, err := e.parent(dirName)
	if err != nil {
		return err
	}
	err = unix.Mkdirat(pfd, base, 0o700)
	if err == unix.EEXIST {
		var st unix.Stat_t
		if err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return os.NewSyscallError("fstatat", err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			e.deferDir(name, hdr) // directory over directory: keep contents
			return nil
		}
		if err = e.removeAt(pfd, base, name); err != nil {
			return err
		}
		err = unix.Mkdirat(pfd, base, 0o700)
	}
	if err != nil {
		return os.NewSyscallError("mkdirat", err)
	}
	e.deferDir(name, hdr)
	return nil
}

func (e *extractor) deferDir(name string, hdr *tar.Header) {
	e.dirs[name] = &dirAttrs{
		mode:   uint32(hdr.Mode) & 0o7777,
		uid:    hdr.Uid,
		gid:    hdr.Gid,
		mtime:  hdr.ModTime,
		xattrs: e.xattrs(hdr),
	}
}

// create runs mk (which creates base in pfd); if base exists it is removed
// (recursively for a directory, never following a symlink) and mk retried.
func (e *extractor) create(pfd int, base, name string, mk func() error) error {
	err := mk()
	if err == unix.EEXIST {
		if err := e.removeAt(pfd, base, name); err != nil {
			return err
		}
		err = mk()
	}
	return err
}

func (e *extractor) file(tr *tar.Reader, dirName, base string, hdr *tar.Header) error {
	pfd, err := e.parent(dirName)
	if err != nil {
		return err
	}
	fd := -1
	err = e.create(pfd, base, path.Join(dirName, base), func() error {
		var err error
		fd, err = unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		return err
	})
	if err != nil {
		return os.NewSyscallError("openat", err)
	}
	defer unix.Close(fd)
	if err := e.copy(fd, tr); err != nil {
		return err
	}
	if e.o.KeepOwners {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return os.NewSyscallError("fchown", err)
		}
	}
	// After fchown: chown(2) clears the setuid and setgid bits.
	if err := unix.Fchmod(fd, e.mode(hdr)); err != nil {
		return os.NewSyscallError("fchmod", err)
	}
	for k, v := range e.xattrs(hdr) {
		if err := unix.Fsetxattr(fd, k, []byte(v), 0); err != nil && !notSupported(err) {
			return os.NewSyscallError("fsetxattr "+k, err)
		}
	}
	if err := futimens(fd, hdr.ModTime); err != nil {
		return os.NewSyscallError("futimens", err)
	}
	return nil
}

// copy writes the entry's content to fd through the large buffer. Chunks
// that are all zeros (the holes tar.Reader expands in sparse entries) are
// skipped with lseek, so a small archive cannot fill the disk with a huge
// sparse file; ftruncate sets the final size.
func (e *extractor) copy(fd int, r io.Reader) error {
	var off int64
	hole := false
	for {
		n, rerr := r.Read(e.buf)
		chunk := e.buf[:n]
		if n > 0 && bytes.Equal(chunk, zeros[:n]) {
			if _, err := unix.Seek(fd, int64(n), io.SeekCurrent); err != nil {
				return os.NewSyscallError("lseek", err)
			}
			hole = true
			chunk = nil
		}
		for len(chunk) > 0 {
			w, err := eintr.Retry2(func() (int, error) { return unix.Write(fd, chunk) })
			if err != nil {
				return os.NewSyscallError("write", err)
			}
			chunk = chunk[w:]
		}
		off += int64(n)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("read tar: %w", rerr)
		}
		if err := e.ctx.Err(); err != nil {
			return err
		}
	}
	if hole {
		if err := unix.Ftruncate(fd, off); err != nil {
			return os.NewSyscallError("ftruncate", err)
		}
	}
	return nil
}

func (e *extractor) symlink(dirName, base string, hdr *tar.Header) error {
	pfd, err := e.parent(dirName)
	if err != nil {
		return err
	}
	err = e.create(pfd, base, path.Join(dirName, base), func() error {
		return unix.Symlinkat(hdr.Linkname, pfd, base)
	})
	if err != nil {
		return os.NewSyscallError("symlinkat", err)
	}
	return e.attrsAt(pfd, base, hdr, false)
}

func (e *extractor) node(dirName, base string, hdr *tar.Header, typ uint32, dev uint64) error {
	pfd, err := e.parent(dirName)
	if err != nil {
		return err
	}
	err = e.create(pfd, base, path.Join(dirName, base), func() error {
		return unix.Mknodat(pfd, base, typ|0o600, int(dev))
	})
	if err != nil {
		return os.NewSyscallError("mknodat", err)
	}
	return e.attrsAt(pfd, base, hdr, true)
}

// attrsAt applies owner, mode (if chmod), xattrs and mtime to base in pfd,
// which is not a regular file or directory, never following it.
func (e *extractor) attrsAt(pfd int, base string, hdr *tar.Header, chmod bool) error {
	if e.o.KeepOwners {
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return os.NewSyscallError("fchownat", err)
		}
	}
	if chmod {
		// base was just created by mknodat, so it is not a symlink.
		if err := unix.Fchmodat(pfd, base, e.mode(hdr), 0); err != nil {
			return os.NewSyscallError("fchmodat", err)
		}
	}
	if xs := e.xattrs(hdr); len(xs) > 0 {
		// No fd-based l*xattr exists for an entry that cannot be opened;
		// /proc/self/fd/N names the parent directory itself, and base is
		// not followed.
		p := "/proc/self/fd/" + strconv.Itoa(pfd) + "/" + base
		for k, v := range xs {
			if strings.HasPrefix(k, "user.") {
				continue // xattr(7): user.* only on regular files and directories
			}
			if err := unix.Lsetxattr(p, k, []byte(v), 0); err != nil && !notSupported(err) {
				return os.NewSyscallError("lsetxattr "+k, err)
			}
		}
	}
	ts := timespecs(hdr.ModTime)
	if err := unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return os.NewSyscallError("utimensat", err)
	}
	return nil
}

func (e *extractor) hardlink(name, dirName, base string, hdr *tar.Header) error {
	target, err := CleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
	}
	if target, err = e.strip(target); err != nil {
		return err
	}
	if target == "" || target == "." {
		return fmt.Errorf("hard link target %q: %w: outside the extracted tree", hdr.Linkname, ErrUnsafePath)
	}
	if target == name {
		return nil // a link to itself: nothing to do
	}
	tdir, tbase := path.Split(target)
	tfd, err := openBeneath(e.root, path.Clean(tdir), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
	}
	defer unix.Close(tfd)
	pfd, err := e.parent(dirName)
	if err != nil {
		return err
	}
	// flags 0: a symlink target is linked itself, never followed.
	err = e.create(pfd, base, name, func() error { return unix.Linkat(tfd, tbase, pfd, base, 0) })
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, os.NewSyscallError("linkat", err))
	}
	return nil
}

// whiteout applies an OCI whiteout entry base found in dirName.
func (e *extractor) whiteout(dirName, base string) error {
	// The marker's directory exists in this layer.
	e.markLayer(dirName)
	switch {
	case base == whiteoutOpaque:
		fd, err := openBeneath(e.root, dirName, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			if gone(err) {
				return nil
			}
			return pathErr(dirName, err)
		}
		return e.opaque(fd, dirName)
	case strings.HasPrefix(base, whiteoutMeta):
		return nil // other AUFS metadata (.wh..wh.plnk, ...): not content
	}
	target := strings.TrimPrefix(base, whiteoutPrefix)
	if target == "" || target == "." || target == ".." {
		return fmt.Errorf("invalid whiteout %q", base)
	}
	name := path.Join(dirName, target)
	if _, ok := e.layer[name]; ok {
		return nil // whiteouts hide lower layers only
	}
	pfd, err := openBeneath(e.root, dirName, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		if gone(err) {
			return nil
		}
		return pathErr(dirName, err)
	}
	defer unix.Close(pfd)
	return e.removeAt(pfd, target, name)
}

// opaque removes everything below the directory fd (named name) that this
// layer did not create; it closes fd.
func (e *extractor) opaque(fd int, name string) error {
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return err
	}
	for _, d := range ents {
		child := path.Join(name, d.Name())
		if _, ok := e.layer[child]; !ok {
			if err := e.removeAt(fd, d.Name(), child); err != nil {
				return err
			}
			continue
		}
		if !d.IsDir() { // from Getdents d_type: the entry itself, never followed
			continue
		}
		cfd, err := unix.Openat(fd, d.Name(), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return pathErr(child, err)
		}
		if err := e.opaque(cfd, child); err != nil {
			return err
		}
	}
	return nil
}

// removeAt removes base from pfd, recursively if it is a directory, without
// following symlinks. A missing base is not an error.
func (e *extractor) removeAt(pfd int, base, name string) error {
	err := unix.Unlinkat(pfd, base, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR {
		return pathErr(name, os.NewSyscallError("unlinkat", err))
	}
	// A directory goes away: the cached parent may be below it, and its
	// deferred attributes must not land on a later directory of that name.
	if e.cacheFd >= 0 && (e.cacheName == name || strings.HasPrefix(e.cacheName, name+"/")) {
		e.invalidate()
	}
	for k := range e.dirs {
		if k == name || strings.HasPrefix(k, name+"/") {
			delete(e.dirs, k)
		}
	}
	return removeAll(pfd, base, name)
}

func removeAll(pfd int, base, name string) error {
	err := unix.Unlinkat(pfd, base, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err == unix.EISDIR {
		if err := removeChildren(pfd, base, name); err != nil {
			return err
		}
		err = unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR)
	}
	if err != nil && err != unix.ENOENT {
		return pathErr(name, os.NewSyscallError("unlinkat", err))
	}
	return nil
}

func removeChildren(pfd int, base, name string) error {
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return pathErr(name, os.NewSyscallError("openat", err))
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return err
	}
	for _, d := range ents {
		if err := removeAll(fd, d.Name(), name+"/"+d.Name()); err != nil {
			return err
		}
	}
	return nil
}

// finish applies the deferred directory attributes, deepest first, so that
// a read-only parent never blocks its children.
func (e *extractor) finish() error {
	e.invalidate()
	names := make([]string, 0, len(e.dirs))
	for k := range e.dirs {
		names = append(names, k)
	}
	slices.Sort(names)
	slices.Reverse(names)
	for _, name := range names {
		if err := e.ctx.Err(); err != nil {
			return err
		}
		if err := e.applyDir(name, e.dirs[name]); err != nil {
			return fmt.Errorf("directory %q: %w", name, err)
		}
	}
	return nil
}

func (e *extractor) applyDir(name string, a *dirAttrs) error {
	fd, err := openBeneath(e.root, name, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		if gone(err) {
			return nil // replaced by a later entry
		}
		return err
	}
	defer unix.Close(fd)
	if e.o.KeepOwners {
		if err := unix.Fchown(fd, a.uid, a.gid); err != nil {
			return os.NewSyscallError("fchown", err)
		}
	}
	if err := unix.Fchmod(fd, a.mode); err != nil {
		return os.NewSyscallError("fchmod", err)
	}
	for k, v := range a.xattrs {
		if err := unix.Fsetxattr(fd, k, []byte(v), 0); err != nil && !notSupported(err) {
			return os.NewSyscallError("fsetxattr "+k, err)
		}
	}
	if err := futimens(fd, a.mtime); err != nil {
		return os.NewSyscallError("futimens", err)
	}
	return nil
}

// mode is the permission bits to apply to a non-directory.
func (e *extractor) mode(hdr *tar.Header) uint32 {
	m := uint32(hdr.Mode) & 0o7777
	if !e.o.KeepOwners {
		m &^= unix.S_ISUID | unix.S_ISGID
	}
	return m
}

// xattrs returns the entry's extended attributes that may be applied.
func (e *extractor) xattrs(hdr *tar.Header) map[string]string {
	var xs map[string]string
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, xattrPAX)
		if !ok || name == "" || (!e.o.KeepOwners && !strings.HasPrefix(name, "user.")) {
			continue
		}
		if xs == nil {
			xs = map[string]string{}
		}
		xs[name] = v
	}
	return xs
}

// openBeneath opens name below dirfd with openat2(2), refusing symlinks (the
// last component included) and anything outside dirfd. EAGAIN (a concurrent
// rename) and EINTR are retried.
func openBeneath(dirfd int, name string, flags int) (int, error) {
	how := &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolve}
	for {
		fd, err := eintr.Retry2(func() (int, error) { return unix.Openat2(dirfd, name, how) })
		switch err {
		case nil:
			return fd, nil
		case unix.EAGAIN:
			continue
		case unix.ELOOP, unix.EXDEV:
			return -1, fmt.Errorf("%w: path goes through a symlink", ErrUnsafePath)
		}
		return -1, os.NewSyscallError("openat2", err)
	}
}

// gone reports whether err means the path no longer exists as a directory.
func gone(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, ErrUnsafePath)
}

func notSupported(err error) bool {
	return err == unix.ENOTSUP || err == unix.EOPNOTSUPP
}

func pathErr(name string, err error) error {
	return fmt.Errorf("%s: %w", name, err)
}

func timespecs(mtime time.Time) [2]unix.Timespec {
	return [2]unix.Timespec{
		{Nsec: unix.UTIME_OMIT},
		{Sec: mtime.Unix(), Nsec: int64(mtime.Nanosecond())},
	}
}

// futimens is utimensat(fd, NULL, ...): x/sys has no fd-based variant that
// avoids /proc.
func futimens(fd int, mtime time.Time) error {
	ts := timespecs(mtime)
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
