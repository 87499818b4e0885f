package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rkt-ng/rkt/internal/flock"
	"github.com/rkt-ng/rkt/internal/pausepoint"
)

// usedLayers is the set of layer diff_id hexes named by the layer list of
// any OCI image in the store.
func (s *Store) usedLayers() (map[string]bool, error) {
	imgs, err := s.List()
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, img := range imgs {
		if img.Kind != KindOCI {
			continue
		}
		rec, err := s.ociRecord(img.ID)
		if errors.Is(err, os.ErrNotExist) {
			continue // removed since the listing, or its import is unfinished
		}
		if err != nil {
			return nil, err
		}
		for _, l := range rec.Layers {
			used[strings.TrimPrefix(l.DiffID, "sha256:")] = true
		}
	}
	return used, nil
}

// CollectLayers removes the unpacked OCI layers that no image in the store
// uses, and calls removed with the diff_id of each. A layer is skipped while
// anything holds it: an import from before it looks for the layer until its
// image's row is written, and a Hold of an image using it. Under the
// layer's exclusive use lock the images' layer lists are read again, so a
// layer whose import finished since the first listing is kept. A pod's
// layers are safe as long as its image is: image removal checks the pods.
func (s *Store) CollectLayers(ctx context.Context, removed func(diffID string)) error {
	used, err := s.usedLayers()
	if err != nil {
		return fmt.Errorf("collect layers: %w", err)
	}
	ents, err := os.ReadDir(filepath.Join(s.dir, layersDir))
	if err != nil {
		return fmt.Errorf("collect layers: %w", err)
	}
	var cands []string
	for _, e := range ents {
		if validHex64(e.Name()) && !used[e.Name()] {
			cands = append(cands, e.Name())
		}
	}
	if err := pausepoint.Reach(ctx, pausepoint.LayerGCCandidates); err != nil {
		return err
	}
	var errs []error
	for _, h := range cands {
		if err := ctx.Err(); err != nil {
			return err
		}
		ok, err := s.removeLayer(h, true)
		if err != nil {
			errs = append(errs, fmt.Errorf("layer sha256:%s: %w", h, err))
			continue
		}
		if ok && removed != nil {
			removed("sha256:" + h)
		}
	}
	return errors.Join(errs...)
}

// removeLayer removes layer h unless it is held or, if checkUsed, read
// again under its exclusive use lock, some image uses it.
func (s *Store) removeLayer(h string, checkUsed bool) (bool, error) {
	l, err := flock.Open(filepath.Join(s.dir, "locks", layerUseKey(h)))
	if err != nil {
		return false, err
	}
	defer l.Close()
	if err := l.TryExclusive(); errors.Is(err, flock.ErrLocked) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if checkUsed {
		used, err := s.usedLayers()
		if err != nil || used[h] {
			return false, err
		}
	}
	final := s.layerDir(h)
	if _, err := os.Lstat(final); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	// Out of sight first, so that a half-removed layer is never mounted;
	// CleanTemp removes what a crash leaves of .rm-<hex>.
	trash := filepath.Join(s.dir, layersDir, ".rm-"+h)
	if err := os.RemoveAll(trash); err != nil {
		return false, err
	}
	if err := os.Rename(final, trash); err != nil {
		return false, err
	}
	if err := os.RemoveAll(trash); err != nil {
		return false, err
	}
	return true, nil
}
