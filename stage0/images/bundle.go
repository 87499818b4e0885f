package images

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/appc/spec/schema"
)

// BundleConfig writes the runtime configuration of a bundle: given the
// image's ID and manifest and its rendered rootfs, it returns the content
// of config.json. The caller supplies it (stage1/ocibundle), so that this
// package knows only the stage1 contract.
type BundleConfig func(id string, im *schema.ImageManifest, rootfs string) ([]byte, error)

// ExportBundle writes an OCI runtime bundle of an image to dir:
// dir/rootfs, the image rendered with its dependencies, and
// dir/config.json from configure. dir appears complete or not at all.
func (c *Config) ExportBundle(ctx context.Context, ref, dir string, overwrite bool, configure BundleConfig) (err error) {
	_, img, im, err := c.storedImage(ref)
	if err != nil {
		return err
	}
	dir = filepath.Clean(dir)
	if _, err := os.Lstat(dir); err == nil && !overwrite {
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
	b, err := configure(img.ID, im, rootfs)
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
