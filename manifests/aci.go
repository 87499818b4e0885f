package manifests

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/appc/spec/schema"
)

// BuildOptions control how an ACI archive is written.
type BuildOptions struct {
	// ModTime, if set, replaces every entry's mtime, so that the same input
	// gives the same bytes (reproducible builds).
	ModTime *time.Time
	// OwnerRoot writes uid/gid 0 for every entry instead of the files' owners.
	OwnerRoot bool
	// IDShift and IDCount undo a user namespace's shift: an owner in
	// [IDShift, IDShift+IDCount) is written as owner-IDShift, so a rootfs
	// seen with host-shifted owners is written with its pod's own IDs.
	// Owners outside the range are written as they are.
	IDShift, IDCount int
}

// unshift maps a host ID in the shifted range back to the pod's ID.
func (o BuildOptions) unshift(id int) int {
	if o.IDCount > 0 && id >= o.IDShift && id-o.IDShift < o.IDCount {
		return id - o.IDShift
	}
	return id
}

// openHook, when set by a test, runs after an entry was Lstat'ed and before
// it is opened: the moment a racing writer would swap it for a symlink.
var openHook func(rel string)

// WriteACI writes an uncompressed ACI: the manifest entry then rootfsDir as
// "rootfs/", entries sorted by name, hard links preserved as type-1 entries.
//
// rootfsDir may be written by someone hostile meanwhile (an exited app's
// rootfs in `rkt export`, a build dir): every path is resolved inside
// rootfsDir through os.Root, so nothing outside it is ever read; symlinks
// are archived as symlinks and never followed; and a regular file is
// archived only if the file opened is the one Lstat saw (same device and
// inode), else WriteACI fails. A directory swapped for a symlink to another
// directory of the tree makes that directory's files appear under the old
// name; no byte from outside the tree can.
func WriteACI(w io.Writer, im *schema.ImageManifest, rootfsDir string, o BuildOptions) error {
	mb, err := im.MarshalJSON()
	if err != nil {
		return fmt.Errorf("marshal manifest: %w", err)
	}
	root, err := os.OpenRoot(rootfsDir)
	if err != nil {
		return err
	}
	defer root.Close()
	tw := tar.NewWriter(w)
	mtime := time.Now()
	if o.ModTime != nil {
		mtime = *o.ModTime
	}
	if err := tw.WriteHeader(&tar.Header{Name: "manifest", Mode: 0o644, Size: int64(len(mb)), ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return err
	}
	if _, err := tw.Write(mb); err != nil {
		return err
	}
	var paths []string
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return fmt.Errorf("walk %s: %w", rootfsDir, err)
	}
	sort.Strings(paths)
	type inode struct{ dev, ino uint64 }
	links := map[inode]string{}
	for _, rel := range paths {
		p := filepath.Join(rootfsDir, rel)
		name := "rootfs"
		if rel != "." {
			name = "rootfs/" + rel
		}
		fi, err := root.Lstat(rel)
		if err != nil {
			return err
		}
		target := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if target, err = root.Readlink(rel); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, target)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		h.Name = name
		h.Uname, h.Gname = "", ""
		h.Format = tar.FormatPAX
		h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
		if o.ModTime != nil {
			h.ModTime = *o.ModTime
		}
		h.Uid, h.Gid = o.unshift(h.Uid), o.unshift(h.Gid)
		if o.OwnerRoot {
			h.Uid, h.Gid = 0, 0
		}
		if fi.IsDir() {
			h.Name += "/"
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.Mode().IsRegular() && st.Nlink > 1 {
			ino := inode{uint64(st.Dev), st.Ino}
			if first, seen := links[ino]; seen {
				h.Typeflag = tar.TypeLink
				h.Linkname = first
				h.Size = 0
			} else {
				links[ino] = name
			}
		}
		if h.Typeflag != tar.TypeReg {
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			continue
		}
		if openHook != nil {
			openHook(rel)
		}
		// O_NONBLOCK: a FIFO swapped in must not hang the build.
		f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		err = copyEntry(tw, h, f, fi)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return tw.Close()
}

// errChanged means a file was replaced between its Lstat and its open.
var errChanged = errors.New("changed while it was archived (replaced by another file or a symlink)")

// copyEntry writes the header and exactly h.Size bytes of f, which must be
// the regular file fi describes.
func copyEntry(tw *tar.Writer, h *tar.Header, f *os.File, fi fs.FileInfo) error {
	ofi, err := f.Stat()
	if err != nil {
		return err
	}
	if !ofi.Mode().IsRegular() || !os.SameFile(fi, ofi) {
		return errChanged
	}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, f, h.Size); err != nil {
		return fmt.Errorf("read %d bytes: %w", h.Size, err)
	}
	return nil
}
