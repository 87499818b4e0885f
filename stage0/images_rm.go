package stage0

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/rkt-ng/rkt/manifests"
	"github.com/rkt-ng/rkt/pods"
)

// ErrImageInUse means a live pod uses the image.
var ErrImageInUse = errors.New("image is used by a pod that has not been garbage collected")

// imagesInUse lists the image IDs referenced by pods that still exist.
func (c *Config) imagesInUse() (map[string]bool, error) {
	pd, err := c.Pods()
	if err != nil {
		return nil, err
	}
	list, err := pd.List()
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, p := range list {
		if p.State() == pods.Garbage || p.State() == pods.ExitedGarbage {
			continue
		}
		b, err := os.ReadFile(p.ManifestPath())
		if err != nil {
			continue
		}
		pm, err := manifests.DecodePod(b)
		if err != nil {
			continue
		}
		for _, ra := range pm.Apps {
			used[ra.Image.ID.String()] = true
		}
	}
	return used, nil
}

// RemoveImages removes images from the store, refusing images of live pods.
func (c *Config) RemoveImages(ctx context.Context, refs []string, out io.Writer) error {
	s, err := c.Store()
	if err != nil {
		return err
	}
	used, err := c.imagesInUse()
	if err != nil {
		return err
	}
	var errs []error
	for _, ref := range refs {
		img, err := s.Resolve(ref)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if used[img.ID] {
			errs = append(errs, fmt.Errorf("image %s: %w", ref, ErrImageInUse))
			continue
		}
		if err := s.Remove(ctx, img.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(out, "successfully removed aci for image: %q\n", img.ID)
	}
	return errors.Join(errs...)
}
