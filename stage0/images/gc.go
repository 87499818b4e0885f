package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/appc/spec/schema/types"

	"github.com/rkt-ng/rkt/internal/pausepoint"
	"github.com/rkt-ng/rkt/manifests"
	"github.com/rkt-ng/rkt/pods"
	"github.com/rkt-ng/rkt/stage0/store"
)

// podRefs is what the pods that exist on disk use from the store.
type podRefs struct {
	// trees are the tree IDs recorded by any pod directory, garbage or not:
	// a pod directory may still have overlays mounted on them.
	trees map[string]bool
	// images are the image IDs of the apps of every pod directory.
	images map[string]bool
	// stage1s are the name and labels of the stage1 image of every pod; a
	// pod records its stage1 tree, not the stage1 image ID.
	stage1s []imageKey
}

type imageKey struct {
	name   string
	labels types.Labels
}

// matches reports whether img has the name and every label of k.
func (k imageKey) matches(img store.Image) bool {
	if img.Name != k.name {
		return false
	}
	for _, l := range k.labels {
		if v, ok := img.Labels.Get(l.Name.String()); !ok || v != l.Value {
			return false
		}
	}
	return true
}

// maxPodMoves bounds how often storeRefs follows one pod to its next state
// directory; a pod has six, and moves only forward.
const maxPodMoves = 8

// storeRefs reads what every pod directory uses from the store. A pod that
// moves to its next state directory while its records are read is read
// again there, so that no record is missed: the gc callers rely on every
// pod that recorded a tree or image before the listing being seen.
func (c *Config) storeRefs() (*podRefs, error) {
	pd, err := c.pods()
	if err != nil {
		return nil, err
	}
	list, err := pd.List()
	if err != nil {
		return nil, err
	}
	r := &podRefs{trees: map[string]bool{}, images: map[string]bool{}}
	for _, p := range list {
		for range maxPodMoves {
			r.read(p)
			if _, err := os.Lstat(p.Path()); err == nil {
				break
			}
			// Moved (or removed) meanwhile: read it where it is now.
			if p, err = pd.Get(p.UUID); err != nil {
				break
			}
		}
	}
	return r, nil
}

// read adds what pod p records to r; missing records are skipped (a pod
// being created records its trees as it renders them, under a store.Hold).
func (r *podRefs) read(p *pods.Pod) {
	if id, err := os.ReadFile(p.Stage1TreeStoreIDPath()); err == nil {
		r.trees[strings.TrimSpace(string(id))] = true
	}
	if b, err := os.ReadFile(p.Stage1ManifestPath()); err == nil {
		if im, err := manifests.DecodeImage(b); err == nil {
			r.stage1s = append(r.stage1s, imageKey{name: im.Name.String(), labels: im.Labels})
		}
	}
	ents, _ := os.ReadDir(p.AppsInfoDir())
	for _, e := range ents {
		if id, err := os.ReadFile(p.AppTreeStoreIDPath(e.Name())); err == nil {
			r.trees[strings.TrimSpace(string(id))] = true
		}
	}
	if b, err := os.ReadFile(p.ManifestPath()); err == nil {
		if pm, err := manifests.DecodePod(b); err == nil {
			for _, ra := range pm.Apps {
				r.images[ra.Image.ID.String()] = true
			}
		}
	}
}

// CollectTrees removes the rendered trees that no pod directory records.
//
// A pod holds each tree (store.Hold) from its render until it has recorded
// the tree's ID in its directory. Each candidate is removed by
// store.RemoveTreeUnused, which skips a held tree and otherwise, under the
// tree's exclusive lock, has the pods' records read again: a pod that got
// the tree after the first listing has recorded it by then.
func (c *Config) CollectTrees(ctx context.Context, s *store.Store, out io.Writer) error {
	if err := s.CleanTemp(); err != nil {
		return err
	}
	trees, err := s.Trees()
	if err != nil {
		return err
	}
	refs, err := c.storeRefs()
	if err != nil {
		return err
	}
	if err := pausepoint.Reach(ctx, pausepoint.TreeGCCandidates); err != nil {
		return err
	}
	var errs []error
	for _, t := range trees {
		if refs.trees[t.ID] {
			continue
		}
		removed, err := s.RemoveTreeUnused(ctx, t.ID, func() (bool, error) {
			now, err := c.storeRefs()
			if err != nil {
				return false, err
			}
			return now.trees[t.ID], nil
		})
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			errs = append(errs, err)
			continue
		}
		if removed {
			fmt.Fprintf(out, "removed treestore %q\n", t.ID)
		}
	}
	return errors.Join(errs...)
}

// GCOptions are `rkt image gc`'s flags.
type GCOptions struct {
	// GracePeriod keeps images used (or imported) more recently than this.
	GracePeriod time.Duration
}

// GC removes the trees no pod uses, then the images not used within
// the grace period. An image that any existing pod directory uses, as an app
// or as its stage1, is never removed, whatever its age: the pod may be
// running, prepared, or exited and not yet collected by `rkt gc`; the
// pods' records are read again under the image's exclusive lock. Last, the
// OCI layers that no remaining image lists are removed (store.CollectLayers).
func (c *Config) GC(ctx context.Context, o GCOptions, out io.Writer) error {
	s, err := c.Store()
	if err != nil {
		return err
	}
	if err := c.CollectTrees(ctx, s, out); err != nil {
		return fmt.Errorf("image gc: tree store: %w", err)
	}
	imgs, err := s.List()
	if err != nil {
		return err
	}
	refs, err := c.storeRefs()
	if err != nil {
		return err
	}
	now := time.Now()
	var errs []error
	for _, img := range imgs {
		last := img.LastUsed
		if img.ImportTime.After(last) {
			last = img.ImportTime
		}
		if now.Sub(last) < o.GracePeriod || refs.usesImage(img) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.RemoveUnused(ctx, img.ID, c.imageInUse(img)); err != nil {
			if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrInUse) {
				errs = append(errs, err)
			}
			continue
		}
		fmt.Fprintf(out, "successfully removed aci for image: %q\n", img.ID)
	}
	errs = append(errs, collectLayers(ctx, s, out))
	return errors.Join(errs...)
}

// collectLayers removes the OCI layers that no image uses any more.
func collectLayers(ctx context.Context, s *store.Store, out io.Writer) error {
	return s.CollectLayers(ctx, func(diffID string) {
		fmt.Fprintf(out, "removed layer %q\n", diffID)
	})
}

func (r *podRefs) usesImage(img store.Image) bool {
	if r.images[img.ID] {
		return true
	}
	for _, k := range r.stage1s {
		if k.matches(img) {
			return true
		}
	}
	return false
}

// imageInUse is the check that store.RemoveUnused runs under the image's
// lock: the pods' records read again, once every Hold of the image ended.
func (c *Config) imageInUse(img store.Image) func() (bool, error) {
	return func() (bool, error) {
		refs, err := c.storeRefs()
		if err != nil {
			return false, err
		}
		return refs.usesImage(img), nil
	}
}
