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

	"github.com/rkt-ng/rkt/internal/atomicfile"
	"github.com/rkt-ng/rkt/internal/mountinfo"
	"github.com/rkt-ng/rkt/internal/overlay"
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
	if err := overlay.MountReadOnly(mp, append([]string{upper}, lowers...)); err != nil {
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
