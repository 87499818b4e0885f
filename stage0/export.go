package stage0

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/appc/spec/schema"
	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/atomicfile"
	"github.com/rkt-ng/rkt/internal/copytree"
	"github.com/rkt-ng/rkt/internal/mountinfo"
	"github.com/rkt-ng/rkt/internal/untar"
	"github.com/rkt-ng/rkt/manifests"
	"github.com/rkt-ng/rkt/pods"
	"github.com/rkt-ng/rkt/pods/layout"
	"github.com/rkt-ng/rkt/stage0/store"
)

// ExportOptions are `rkt export`'s flags.
type ExportOptions struct {
	// App picks the app of a pod of several apps.
	App string
	// Overwrite replaces an existing output file.
	Overwrite bool
}

// Export writes the rootfs of an app of an exited pod, as the app left it,
// to out as an uncompressed ACI with the app's image manifest. The rootfs
// already holds the image's dependencies, so the manifest loses its
// dependencies and pathWhitelist. out is replaced atomically: on error no
// file (and no partial file) is left.
//
// The pod is locked while it is read, so gc cannot collect it meanwhile. An
// overlay rootfs that is no longer mounted is mounted read-only again from
// the pod's upper dir over the image's tree, inside the pod directory (so
// gc unmounts it if this process dies), and unmounted afterwards.
func (c *Config) Export(ctx context.Context, ref, out string, o ExportOptions) error {
	if !o.Overwrite {
		if _, err := os.Lstat(out); err == nil {
			return fmt.Errorf("export: %s exists (use --overwrite)", out)
		}
	}
	p, err := c.pod(ref)
	if err != nil {
		return err
	}
	if p.State() != pods.Exited && p.State() != pods.ExitedGarbage {
		return fmt.Errorf("export pod %s: %w: %s, want exited", p.UUID, pods.ErrBadState, p.State())
	}
	if err := p.TakeLock(); err != nil {
		return fmt.Errorf("export pod %s: %w", p.UUID, err)
	}
	defer p.Close()
	app, err := exportApp(p, o.App)
	if err != nil {
		return err
	}
	im, err := appImageManifest(p, app)
	if err != nil {
		return err
	}
	im.Dependencies = nil
	im.PathWhitelist = nil
	rootfs, release, err := c.exportRootfs(ctx, p, app)
	if err != nil {
		return fmt.Errorf("export pod %s app %s: %w", p.UUID, app, err)
	}
	defer release()
	// A --private-users pod's rootfs shows host-shifted owners where it was
	// copied (--no-overlay) or is still mounted with idmapped layers; the
	// image gets the pod's own IDs.
	var bo manifests.BuildOptions
	if shift, count, err := readUIDRange(p.Path()); err == nil {
		bo.IDShift, bo.IDCount = shift, count
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("export pod %s: %w", p.UUID, err)
	}
	err = atomicfile.Write(out, 0o644, func(w io.Writer) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		bw := bufio.NewWriterSize(w, 1<<20)
		if err := manifests.WriteACI(bw, im, rootfs, bo); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		return fmt.Errorf("export pod %s app %s: %w", p.UUID, app, err)
	}
	return nil
}

// exportApp returns the app to export: want, or the pod's only app.
func exportApp(p *pods.Pod, want string) (string, error) {
	b, err := os.ReadFile(p.ManifestPath())
	if err != nil {
		return "", fmt.Errorf("pod %s: %w", p.UUID, err)
	}
	pm, err := manifests.DecodePod(b)
	if err != nil {
		return "", fmt.Errorf("pod %s: %w", p.UUID, err)
	}
	names := make([]string, 0, len(pm.Apps))
	for _, ra := range pm.Apps {
		names = append(names, ra.Name.String())
		if ra.Name.String() == want {
			return want, nil
		}
	}
	switch {
	case want != "":
		return "", fmt.Errorf("pod %s has no app %q (apps: %s)", p.UUID, want, strings.Join(names, ", "))
	case len(names) != 1:
		return "", fmt.Errorf("pod %s has several apps (%s): choose one with --app", p.UUID, strings.Join(names, ", "))
	}
	return names[0], nil
}

func appImageManifest(p *pods.Pod, app string) (*schema.ImageManifest, error) {
	b, err := os.ReadFile(p.AppManifestPath(app))
	if err != nil {
		return nil, fmt.Errorf("pod %s app %s: image manifest: %w", p.UUID, app, err)
	}
	im, err := manifests.DecodeImage(b)
	if err != nil {
		return nil, fmt.Errorf("pod %s app %s: image manifest: %w", p.UUID, app, err)
	}
	return im, nil
}

// exportRootfs returns a directory showing the app's rootfs and a function
// that releases it.
func (c *Config) exportRootfs(ctx context.Context, p *pods.Pod, app string) (string, func(), error) {
	nothing := func() {}
	target := p.AppRootfsPath(app)
	if !p.UsesOverlay() {
		if _, err := os.Stat(target); err != nil {
			return "", nil, fmt.Errorf("rootfs: %w", err)
		}
		return target, nothing, nil
	}
	// Still mounted: a pod whose stage1 died before its cleanup.
	if mps, err := mountinfo.Under(target); err == nil && slices.Contains(mps, filepath.Clean(target)) {
		return target, nothing, nil
	}
	id, err := os.ReadFile(p.AppTreeStoreIDPath(app))
	if err != nil {
		return "", nil, fmt.Errorf("tree ID: %w", err)
	}
	treeID := strings.TrimSpace(string(id))
	lowers, err := c.podTreeLowers(ctx, p, app, treeID)
	if err != nil {
		return "", nil, err
	}
	upper := filepath.Join(p.OverlayDir(treeID), layout.OverlayUpper, app)
	if _, err := os.Stat(upper); err != nil {
		return "", nil, fmt.Errorf("overlay upper dir: %w", err)
	}
	mp, err := os.MkdirTemp(p.Path(), ".export-")
	if err != nil {
		return "", nil, err
	}
	// The app's writes on top: their whiteouts and opaque dirs still hide
	// the image's files.
	if err := mountReadOnly(mp, append([]string{upper}, lowers...)); err != nil {
		os.Remove(mp)
		return "", nil, err
	}
	release := func() {
		if err := mountinfo.UnmountAll(mp); err != nil {
			c.logger().Warn("unmount export overlay; gc will retry", "pod", p.UUID, "path", mp, "err", err)
			return
		}
		if err := os.Remove(mp); err != nil && !errors.Is(err, os.ErrNotExist) {
			c.logger().Warn("remove export mount point", "pod", p.UUID, "path", mp, "err", err)
		}
	}
	return mp, release, nil
}

// podTreeLowers finds the directories of the tree an app's rootfs was laid
// down from, topmost first.
func (c *Config) podTreeLowers(ctx context.Context, p *pods.Pod, app, treeID string) ([]string, error) {
	s, err := c.Store()
	if err != nil {
		return nil, err
	}
	trees, err := s.Trees()
	if err != nil {
		return nil, err
	}
	for _, t := range trees {
		if t.ID == treeID {
			return t.Lowers(), nil
		}
	}
	// An OCI image's tree is its layers, which are not listed as trees.
	b, err := os.ReadFile(p.ManifestPath())
	if err != nil {
		return nil, err
	}
	pm, err := manifests.DecodePod(b)
	if err != nil {
		return nil, err
	}
	for _, ra := range pm.Apps {
		if ra.Name.String() != app {
			continue
		}
		if img, err := s.Get(ra.Image.ID.String()); err == nil && img.Kind == store.KindOCI {
			if t, err := s.Render(ctx, img.ID); err == nil && t.ID == treeID {
				return t.Lowers(), nil
			}
		}
	}
	return nil, fmt.Errorf("tree %s of the image is no longer in the store", treeID)
}

// mountReadOnly mounts a read-only overlay of lowers (topmost first) on mp.
// Without an upper dir overlayfs is read-only but wants two lower dirs, so a
// single one is bind-mounted instead.
func mountReadOnly(mp string, lowers []string) error {
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

// ExportImage writes the stored blob of an image, an uncompressed ACI, to
// out, atomically.
func (c *Config) ExportImage(ctx context.Context, ref, out string, overwrite bool) error {
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

// ExtractImage writes an image's own content (without its dependencies) to
// dir: dir/manifest and dir/rootfs, or with RootfsOnly the rootfs in dir.
func (c *Config) ExtractImage(ctx context.Context, ref, dir string, o ExtractOptions) error {
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

// RenderImage writes an image rendered with its dependencies, as a pod sees
// it, to dir, laid out as ExtractImage does.
func (c *Config) RenderImage(ctx context.Context, ref, dir string, o ExtractOptions) error {
	s, img, im, err := c.storedImage(ref)
	if err != nil {
		return err
	}
	tree, err := s.Render(ctx, img.ID)
	if err != nil {
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
			if err := mountReadOnly(mp, tree.Lowers()); err != nil {
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
	if _, err := os.Lstat(dir); err == nil {
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
	return os.Rename(tmp, dir)
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
