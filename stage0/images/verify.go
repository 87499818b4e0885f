package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/rkt-ng/rkt/stage0/store"
)

// ErrStoreCorrupt means `rkt image verify` found corrupt entries that it
// did not (or was not asked to) remove.
var ErrStoreCorrupt = errors.New("corrupt store entries")

// VerifyOptions are `rkt image verify`'s flags.
type VerifyOptions struct {
	// Repair removes what is corrupt, unless a pod uses it or a process
	// holds it; a removed image or layer comes back with the next fetch,
	// a removed tree with the next render.
	Repair bool
}

// Verify re-hashes the stored images refs (every image if none), their
// layers and rendered trees, and prints one line per corrupt entry, and
// with o.Repair what it did about it. It fails with ErrStoreCorrupt if a
// corrupt entry is left.
func (c *Config) Verify(ctx context.Context, refs []string, o VerifyOptions, out io.Writer) error {
	s, err := c.Store()
	if err != nil {
		return err
	}
	var ids []string
	for _, ref := range refs {
		img, err := s.Resolve(ref)
		if err != nil {
			return err
		}
		ids = append(ids, img.ID)
	}
	faults, err := s.Verify(ctx, ids)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	left := 0
	for _, f := range faults {
		fmt.Fprintf(out, "corrupt %s %s: %v\n", f.Kind, f.ID, f.Err)
		if !o.Repair || errors.Is(f.Err, store.ErrNotFound) {
			// A missing layer has nothing to remove: a fetch restores it.
			left++
			continue
		}
		removed, err := c.repair(ctx, s, f)
		switch {
		case err != nil:
			fmt.Fprintf(out, "not removed %s %s: %v\n", f.Kind, f.ID, err)
			left++
		case !removed:
			fmt.Fprintf(out, "not removed %s %s: in use by a pod or another rkt\n", f.Kind, f.ID)
			left++
		default:
			fmt.Fprintf(out, "removed %s %s\n", f.Kind, f.ID)
		}
	}
	if left > 0 {
		hint := ""
		if !o.Repair {
			hint = "; --repair removes them"
		}
		return fmt.Errorf("%w: %d%s", ErrStoreCorrupt, left, hint)
	}
	if len(faults) == 0 {
		fmt.Fprintln(out, "store verified: no corrupt entries")
	}
	return nil
}

// repair removes the corrupt entry f unless a pod uses it.
func (c *Config) repair(ctx context.Context, s *store.Store, f store.Fault) (bool, error) {
	switch f.Kind {
	case "image":
		img, err := s.Get(f.ID)
		if err != nil {
			return false, err
		}
		err = s.RemoveUnused(ctx, f.ID, c.imageInUse(img))
		if errors.Is(err, store.ErrInUse) {
			return false, nil
		}
		return err == nil, err
	case "tree":
		return s.RemoveTreeUnused(ctx, f.ID, func() (bool, error) {
			refs, err := c.storeRefs()
			if err != nil {
				return false, err
			}
			return refs.trees[f.ID], nil
		})
	case "layer":
		// The images of the layer go with it, so that their next fetch
		// downloads it again; none may belong to a pod (its overlay may
		// be mounted on the layer).
		imgs, err := imagesWithLayer(s, f.ID)
		if err != nil {
			return false, err
		}
		refs, err := c.storeRefs()
		if err != nil {
			return false, err
		}
		for _, img := range imgs {
			if refs.usesImage(img) {
				return false, nil
			}
		}
		removed, err := s.RemoveLayer(f.ID)
		if err != nil || !removed {
			return false, err
		}
		for _, img := range imgs {
			if err := s.RemoveUnused(ctx, img.ID, c.imageInUse(img)); err != nil && !errors.Is(err, store.ErrNotFound) {
				return true, err
			}
		}
		return true, nil
	}
	return false, fmt.Errorf("unknown kind %q", f.Kind)
}

// imagesWithLayer lists the OCI images whose layer list has diffID.
func imagesWithLayer(s *store.Store, diffID string) ([]store.Image, error) {
	imgs, err := s.List()
	if err != nil {
		return nil, err
	}
	var out []store.Image
	for _, img := range imgs {
		if img.Kind != store.KindOCI {
			continue
		}
		ids, err := s.OCIDiffIDs(img.ID)
		if err != nil {
			continue
		}
		if slices.Contains(ids, diffID) {
			out = append(out, img)
		}
	}
	return out, nil
}
