package images

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/appc/spec/schema"

	"github.com/rkt-ng/rkt/stage1"
)

// BundleApp is the app a bundle runs: an image's own app, or an app of a
// prepared pod with the user's isolators.
type BundleApp struct {
	ImageID string
	Image   *schema.ImageManifest
	// App is the pod manifest's app; nil means the image's own app.
	App *schema.RuntimeApp
	// Options says which of App's isolators the user gave.
	Options stage1.AppOptions
	// Rootfs is the rendered root filesystem in the bundle.
	Rootfs string
}

// BundleConfig returns the content of a bundle's config.json. The caller
// supplies it (stage1/ocibundle), so that this package knows only the
// stage1 contract.
type BundleConfig func(BundleApp) ([]byte, error)

// BundleOptions are the flags of a bundle export.
type BundleOptions struct {
	// Overwrite replaces an existing directory.
	Overwrite bool
	// App and AppOptions, when App is set, are the app of a prepared pod
	// to run instead of the image's own app.
	App        *schema.RuntimeApp
	AppOptions stage1.AppOptions
}

// ExportBundle writes an OCI runtime bundle of an image to dir:
// dir/rootfs, the image rendered with its dependencies, and
// dir/config.json from configure. dir appears complete or not at all.
func (c *Config) ExportBundle(ctx context.Context, ref, dir string, o BundleOptions, configure BundleConfig) (err error) {
	_, img, im, err := c.storedImage(ref)
	if err != nil {
		return err
	}
	dir = filepath.Clean(dir)
	if _, err := os.Lstat(dir); err == nil && !o.Overwrite {
		return fmt.Errorf("%s exists (use --overwrite)", dir)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".bundle-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	rootfs := filepath.Join(tmp, "rootfs")
	if err := c.Render(ctx, img.ID, rootfs, ExtractOptions{RootfsOnly: true}); err != nil {
		return err
	}
	b, err := configure(BundleApp{ImageID: img.ID, Image: im, App: o.App, Options: o.AppOptions, Rootfs: rootfs})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "config.json"), b, 0o644); err != nil {
		return err
	}
	// MkdirTemp made the bundle 0700; a runtime running the app as
	// another user needs to traverse it.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	return replaceDir(tmp, dir)
}
