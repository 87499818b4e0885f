package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/rkt-ng/rkt/internal/flock"
)

// Hold keeps what Acquire returned in the store: while it is held, tree gc
// (RemoveTreeUnused), layer gc (CollectLayers) and image removal
// (RemoveUnused, Remove) leave the tree, the image and its layers alone.
//
// A hold is a set of shared flocks on locks/<key>, so it ends when it is
// released or when its process dies, never later. It is meant to bridge the
// time from render to the moment the user of the tree has recorded it
// where garbage collection looks for references (a pod records its tree
// IDs and image IDs in its pod directory): gc takes the exclusive lock,
// which waits for or skips every hold, and only then reads the references,
// so a tree is either held, recorded, or unused (docs/reliability.md).
type Hold struct {
	locks []*flock.Lock
}

// Release ends the hold. It may be called more than once, and on nil.
func (h *Hold) Release() {
	if h == nil {
		return
	}
	for _, l := range h.locks {
		l.Close()
	}
	h.locks = nil
}

// holdKeys takes shared locks on keys in order, the images first (the
// store's lock order is images, then trees and layers).
func (s *Store) holdKeys(ctx context.Context, keys []string) (*Hold, error) {
	h := &Hold{}
	for _, k := range keys {
		l, err := s.lock(ctx, k, false)
		if err != nil {
			h.Release()
			return nil, err
		}
		h.locks = append(h.locks, l)
	}
	return h, nil
}

// maxAcquireTries bounds how often Acquire renders a tree that tree gc
// removes again before it could hold it; each try that loses means a gc
// finished in between, so more than a few is not a race but a bug.
const maxAcquireTries = 5

// Acquire is Render that also holds the tree (and, for an OCI image, the
// image and its layers) until the returned Hold is released; see Hold.
func (s *Store) Acquire(ctx context.Context, id string) (Tree, *Hold, error) {
	if img, err := s.Get(id); err == nil && img.Kind == KindOCI {
		return s.acquireOCI(ctx, id)
	}
	order, err := s.renderOrder(id)
	if err != nil {
		return Tree{}, nil, fmt.Errorf("render image %s: %w", id, err)
	}
	t := treeOf(s, order)
	top := order[len(order)-1].img.ID
	for range maxAcquireTries {
		h, err := s.holdKeys(ctx, []string{top, t.ID})
		if err != nil {
			return Tree{}, nil, err
		}
		if _, err := s.Get(top); err != nil {
			h.Release()
			return Tree{}, nil, fmt.Errorf("render image %s: %w", id, err) // removed meanwhile
		}
		if s.rendered(t.ID) {
			return t, h, nil
		}
		// Rendering needs the tree's exclusive lock: let go of ours.
		h.Release()
		if err := s.renderLocked(ctx, id, t, order); err != nil {
			return Tree{}, nil, err
		}
	}
	return Tree{}, nil, fmt.Errorf("render image %s: tree %s removed %d times before it could be held", id, t.ID, maxAcquireTries)
}

// acquireOCI holds an OCI image (its row) and its layers, in that order.
func (s *Store) acquireOCI(ctx context.Context, id string) (Tree, *Hold, error) {
	h, err := s.holdKeys(ctx, []string{id})
	if err != nil {
		return Tree{}, nil, err
	}
	if _, err := s.Get(id); err != nil {
		h.Release()
		return Tree{}, nil, fmt.Errorf("render image %s: %w", id, err)
	}
	layers, err := s.OCILayers(id)
	if err != nil {
		h.Release()
		return Tree{}, nil, fmt.Errorf("render image %s: %w", id, err)
	}
	var keys []string
	for _, l := range layers {
		keys = append(keys, layerUseKey(filepath.Base(filepath.Dir(l))))
	}
	slices.Sort(keys)
	lh, err := s.holdKeys(ctx, slices.Compact(keys))
	if err != nil {
		h.Release()
		return Tree{}, nil, err
	}
	h.locks = append(h.locks, lh.locks...)
	t, err := s.ociTree(id)
	if err != nil {
		h.Release()
		return Tree{}, nil, fmt.Errorf("render image %s: %w", id, err)
	}
	return t, h, nil
}

// imageUseKey is the lock a HoldImage takes (shared) on image id, and that
// RemoveUnused tries (exclusive) before it removes the image. It is not the
// image's own lock, which an import of the same image or Touch takes
// exclusively while the holder still holds the image.
func imageUseKey(id string) string { return "use-" + id }

// HoldImage keeps image id from RemoveUnused until the returned Hold is
// released, without keeping imports or Touch of it waiting: it bridges the
// time from a fetch to the moment its user records the image (a pod, in
// its manifest). It returns ErrNotFound if the image is not in the store
// once held (removed before it could be held); the caller may fetch again.
func (s *Store) HoldImage(ctx context.Context, id string) (*Hold, error) {
	if !validID(id) {
		_, err := s.Get(id)
		return nil, err
	}
	h, err := s.holdKeys(ctx, []string{imageUseKey(id)})
	if err != nil {
		return nil, err
	}
	// A RemoveUnused that tried the use lock before we took it may still be
	// removing the image: its exclusive lock on the image is waited for
	// (briefly; it does not wait for us), and then the row is looked at.
	l, err := s.lock(ctx, id, false)
	if err != nil {
		h.Release()
		return nil, err
	}
	_, err = s.Get(id)
	l.Close()
	if err != nil {
		h.Release()
		return nil, err
	}
	return h, nil
}

// imageHeld reports whether a HoldImage of id is live; the caller holds
// the image's exclusive lock.
func (s *Store) imageHeld(id string) (bool, error) {
	l, err := flock.Open(filepath.Join(s.dir, "locks", imageUseKey(id)))
	if err != nil {
		return false, fmt.Errorf("lock %s: %w", imageUseKey(id), err)
	}
	defer l.Close()
	if err := l.TryExclusive(); errors.Is(err, flock.ErrLocked) {
		return true, nil
	} else if err != nil {
		return false, fmt.Errorf("lock %s: %w", imageUseKey(id), err)
	}
	return false, nil
}
