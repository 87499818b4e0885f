package images

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/appc/spec/schema"

	"github.com/rkt-ng/rkt/internal/atomicfile"
	"github.com/rkt-ng/rkt/internal/copytree"
	"github.com/rkt-ng/rkt/internal/mountinfo"
	"github.com/rkt-ng/rkt/internal/overlay"
	"github.com/rkt-ng/rkt/internal/pausepoint"
	"github.com/rkt-ng/rkt/internal/untar"
	"github.com/rkt-ng/rkt/stage0/store"
)

// Export writes the stored blob of an image, an uncompressed ACI, to
// out, atomically.
func (c *Config) Export(ctx context.Context, ref, out string, overwrite bool) error {
	if !overwrite {
		if _, err := os.Lstat(out); err == nil {
			return fmt.Errorf("image export: %s exists (use --overwrite)", out)
		}
	}
	s, err := c.Store()
	if err != nil {
		return err
	}
	img, err := s.Resolve(ref)
	if err != nil {
		return err
	}
	blob, err := s.OpenBlob(img.ID)
	if err != nil {
		return err
	}
	defer blob.Close()
	err = atomicfile.Write(out, 0o644, func(w io.Writer) error {
		_, err := io.Copy(w, ctxReader{ctx, blob})
		return err
	})
	if err != nil {
		return fmt.Errorf("image export %s: %w", img.ID, err)
	}
	return nil
}

// ctxReader stops a long copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// ExtractOptions are the flags of `rkt image extract` and `rkt image render`.
type ExtractOptions struct {
	// RootfsOnly writes the root filesystem's content to the directory
	// itself, without the manifest.
	RootfsOnly bool
	// Overwrite replaces an existing directory.
	Overwrite bool
}

// Extract writes an image's own content (without its dependencies) to
// dir: dir/manifest and dir/rootfs, or with RootfsOnly the rootfs in dir.
func (c *Config) Extract(ctx context.Context, ref, dir string, o ExtractOptions) error {
	s, img, im, err := c.storedImage(ref)
	if err != nil {
		return err
	}
	return writeImageDir(dir, im, o, func(rootfs string) error {
		blob, err := s.OpenBlob(img.ID)
		if err != nil {
			return err
		}
		defer blob.Close()
		return untar.Extract(ctx, blob, rootfs, untar.Options{
			StripPrefix:      "rootfs/",
			KeepOwners:       os.Geteuid() == 0,
			RejectDuplicates: true,
		})
	})
}

// Render writes an image rendered with its dependencies, as a pod sees
// it, to dir, laid out as Extract does.
func (c *Config) Render(ctx context.Context, ref, dir string, o ExtractOptions) error {
	s, img, im, err := c.storedImage(ref)
	if err != nil {
		return err
	}
	// Held until copied: tree gc must not remove it under the copy.
	tree, hold, err := s.Acquire(ctx, img.ID)
	if err != nil {
		return err
	}
	defer hold.Release()
	if err := pausepoint.Reach(ctx, pausepoint.TreeHeld); err != nil {
		return err
	}
	return writeImageDir(dir, im, o, func(rootfs string) error {
		if err := os.Remove(rootfs); err != nil { // copytree makes it
			return err
		}
		src := tree.Rootfs
		if len(tree.Layers) > 0 {
			// OCI layers hold overlayfs whiteouts: merge them through a
			// read-only overlay mounted next to the output.
			mp := rootfs + ".layers"
			if err := os.Mkdir(mp, 0o700); err != nil {
				return err
			}
			defer os.Remove(mp)
			if err := overlay.MountReadOnly(mp, tree.Lowers()); err != nil {
				return err
			}
			defer mountinfo.UnmountAll(mp)
			src = mp
		}
		return copytree.Copy(src, rootfs)
	})
}

// writeImageDir builds the directory next to dir and renames it into place,
// so that dir is either absent, the old one, or complete.
func writeImageDir(dir string, im *schema.ImageManifest, o ExtractOptions, fill func(rootfs string) error) (err error) {
	dir = filepath.Clean(dir)
	if _, err := os.Lstat(dir); err == nil && !o.Overwrite {
		return fmt.Errorf("%s exists (use --overwrite)", dir)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	rootfs := tmp
	if !o.RootfsOnly {
		b, err := im.MarshalJSON()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(tmp, "manifest"), b, 0o644); err != nil {
			return err
		}
		rootfs = filepath.Join(tmp, "rootfs")
		if err := os.Mkdir(rootfs, 0o755); err != nil {
			return err
		}
	}
	if err := fill(rootfs); err != nil {
		return fmt.Errorf("write %s: %w", dir, err)
	}
	return replaceDir(tmp, dir)
}

// storedImage opens the store and finds an image and its manifest.
func (c *Config) storedImage(ref string) (*store.Store, store.Image, *schema.ImageManifest, error) {
	s, err := c.Store()
	if err != nil {
		return nil, store.Image{}, nil, err
	}
	img, err := s.Resolve(ref)
	if err != nil {
		return nil, store.Image{}, nil, err
	}
	im, err := s.Manifest(img.ID)
	if err != nil {
		return nil, store.Image{}, nil, err
	}
	return s, img, im, nil
}

// Manifest finds an image by ID (prefix) or name and returns its manifest.
func (c *Config) Manifest(ref string) (*schema.ImageManifest, error) {
	_, _, im, err := c.storedImage(ref)
	return im, err
}

// List lists the images in the store.
func (c *Config) List() ([]store.Image, error) {
	s, err := c.Store()
	if err != nil {
		return nil, err
	}
	return s.List()
}

// replaceDir puts the finished directory tmp in dir's place: a rename when
// dir does not exist, else dir moved aside, tmp renamed, and the old tree
// removed (put back if the second rename fails).
func replaceDir(tmp, dir string) error {
	if _, err := os.Lstat(dir); err != nil {
		return os.Rename(tmp, dir)
	}
	old := tmp + ".old"
	if err := os.Rename(dir, old); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.Rename(old, dir)
		return err
	}
	return os.RemoveAll(old)
}
