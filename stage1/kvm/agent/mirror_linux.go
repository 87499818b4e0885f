package agent

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// rktShared is where the agent keeps the 9p view of the stage1 rootfs's
// /rkt, which the guest's own /rkt (a tmpfs) hides, and rktLocal that
// tmpfs. Both are outside the pod directory: the namespace stage1 unmounts
// everything below its stage1/ when the pod exits, before the last copy.
const (
	rktShared = "/run/rkt-shared"
	rktLocal  = "/run/rkt-local"
)

// mirrorEvery is how often the guest's /rkt is copied to the host's.
const mirrorEvery = 250 * time.Millisecond

// localRkt puts a tmpfs (rktLocal) on the stage1 rootfs's /rkt in the guest, keeping
// the 9p directory it hides at rktShared. Unix sockets cannot be bound on
// a 9p mount (bind(2) fails with ENXIO), and stage2 binds its enter socket
// and the apps' sd_notify sockets below /rkt; the statuses and logs that
// the host reads there reach it through [mirror].
func localRkt(rkt string) error {
	if err := os.MkdirAll(rkt, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(rktShared, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(rkt, rktShared, "", unix.MS_BIND, ""); err != nil {
		return os.NewSyscallError("mount bind /rkt", err)
	}
	// Out of the 9p mount's peer group: the tmpfs mounted next on /rkt
	// would otherwise propagate onto this bind of /rkt too.
	if err := unix.Mount("", rktShared, "", unix.MS_PRIVATE, ""); err != nil {
		return os.NewSyscallError("mount make-private", err)
	}
	if err := os.MkdirAll(rktLocal, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", rktLocal, "tmpfs", unix.MS_NODEV|unix.MS_NOSUID, "mode=755"); err != nil {
		return os.NewSyscallError("mount tmpfs /rkt", err)
	}
	if err := unix.Mount(rktLocal, rkt, "", unix.MS_BIND, ""); err != nil {
		return os.NewSyscallError("mount bind tmpfs on /rkt", err)
	}
	return nil
}

// mirror copies what changed in the tree src (the guest's /rkt) to dst
// (the host's) every mirrorEvery until ctx is done, then once more: files
// whose size or mtime changed, new directories and symlinks. Sockets and
// FIFOs stay in the guest. It never follows a symlink or leaves src's
// filesystem.
func mirror(ctx context.Context, src, dst string) {
	seen := map[string]fileState{}
	t := time.NewTicker(mirrorEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			mirrorOnce(src, dst, seen)
			return
		case <-t.C:
			mirrorOnce(src, dst, seen)
		}
	}
}

type fileState struct {
	size  int64
	mtime time.Time
}

func mirrorOnce(src, dst string, seen map[string]fileState) {
	var root unix.Stat_t
	if err := unix.Lstat(src, &root); err != nil {
		return
	}
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		out := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			if st, ok := fi.Sys().(*unix.Stat_t); ok && st.Dev != root.Dev {
				return fs.SkipDir
			}
			os.Mkdir(out, fi.Mode().Perm())
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return nil
			}
			if cur, err := os.Readlink(out); err != nil || cur != target {
				os.Remove(out)
				os.Symlink(target, out)
			}
		case d.Type().IsRegular():
			st := fileState{fi.Size(), fi.ModTime()}
			if seen[rel] == st {
				return nil
			}
			if copyFile(p, out, fi.Mode().Perm()) == nil {
				seen[rel] = st
			}
		}
		return nil
	})
}

// copyFile replaces dst's content with src's.
func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
