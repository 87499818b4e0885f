package manifests

import (
	"archive/tar"
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

// WriteACI writes an uncompressed ACI: the manifest entry then rootfsDir as
// "rootfs/", entries sorted by name, hard links preserved as type-1 entries.
func WriteACI(w io.Writer, im *schema.ImageManifest, rootfsDir string, o BuildOptions) error {
	mb, err := im.MarshalJSON()
	if err != nil {
		return fmt.Errorf("marshal manifest: %w", err)
	}
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
	err = filepath.WalkDir(rootfsDir, func(p string, d fs.DirEntry, err error) error {
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
	for _, p := range paths {
		rel, _ := filepath.Rel(rootfsDir, p)
		name := "rootfs"
		if rel != "." {
			name = "rootfs/" + filepath.ToSlash(rel)
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		target := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if target, err = os.Readlink(p); err != nil {
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
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
	}
	return tw.Close()
}
