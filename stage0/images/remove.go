package images

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/rkt-ng/rkt/stage0/store"
)

// ErrImageInUse means a pod that has not been garbage collected uses the
// image, as an app or as its stage1.
var ErrImageInUse = errors.New("image is used by a pod that has not been garbage collected")

// Remove removes images from the store, refusing images of live pods.
func (c *Config) Remove(ctx context.Context, refs []string, out io.Writer) error {
	s, err := c.Store()
	if err != nil {
		return err
	}
	used, err := c.storeRefs()
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
		if used.usesImage(img) {
			errs = append(errs, fmt.Errorf("image %s: %w", ref, ErrImageInUse))
			continue
		}
		if err := s.RemoveUnused(ctx, img.ID, c.imageInUse(img)); err != nil {
			if errors.Is(err, store.ErrInUse) {
				err = fmt.Errorf("image %s: %w", ref, ErrImageInUse)
			}
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(out, "successfully removed aci for image: %q\n", img.ID)
	}
	errs = append(errs, collectLayers(ctx, s, out))
	return errors.Join(errs...)
}
