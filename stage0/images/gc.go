package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	// preparing is set when a pod is being created or prepared: it may be
	// about to use a tree it has not recorded yet.
	preparing bool
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

// storeRefs reads what every pod directory uses from the store.
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
		if podBeingCreated(p) {
			r.preparing = true
		}
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
	return r, nil
}

// podBeingCreated reports whether p is an embryo or a pod being prepared,
// whose tree IDs may not be recorded yet.
func podBeingCreated(p *pods.Pod) bool {
	switch p.State() {
	case pods.Preparing:
		return true
	case pods.Embryo:
		return time.Since(p.Created()) < pods.EmbryoTimeout || time.Since(p.MarkedAt()) < pods.EmbryoTimeout
	}
	return false
}

// anyPodBeingCreated looks only at the embryo and prepare directories, so
// that it is cheap enough to ask before every tree removal.
func (c *Config) anyPodBeingCreated() (bool, error) {
	pd, err := c.pods()
	if err != nil {
		return false, err
	}
	for _, dir := range []string{"embryo", "prepare"} {
		ents, err := os.ReadDir(filepath.Join(pd.Root(), dir))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, err
		}
		for _, e := range ents {
			p, err := pd.Get(e.Name())
			if err != nil {
				continue // moved on meanwhile, or not a pod
			}
			if podBeingCreated(p) {
				return true, nil
			}
		}
	}
	return false, nil
}

// CollectTrees removes the rendered trees that no pod directory records.
//
// A pod records its trees only after store.Render returned them, and Render
// hands out an existing tree without taking any lock, so a tree that no pod
// records may be about to be mounted by a pod being prepared. Trees are
// therefore left alone while any pod is being created, which is checked
// again right before each removal; the pod directory exists (in embryo/ or
// prepare/) before its preparation renders anything.
func (c *Config) CollectTrees(ctx context.Context, s *store.Store, out io.Writer) error {
	if err := s.CleanTemp(); err != nil {
		return err
	}
	// Trees first, then the pods: a tree rendered after this listing is
	// not a candidate at all.
	trees, err := s.Trees()
	if err != nil {
		return err
	}
	refs, err := c.storeRefs()
	if err != nil {
		return err
	}
	if refs.preparing {
		c.logger().Debug("a pod is being prepared; tree store gc skipped")
		return nil
	}
	if err := pausepoint.Reach(ctx, pausepoint.TreeGCCandidates); err != nil {
		return err
	}
	var errs []error
	for _, t := range trees {
		if refs.trees[t.ID] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		busy, err := c.anyPodBeingCreated()
		if err != nil {
			return err
		}
		if busy {
			c.logger().Debug("a pod is being prepared; tree store gc stopped")
			break
		}
		if err := s.RemoveTree(ctx, t.ID); err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				errs = append(errs, err)
			}
			continue
		}
		fmt.Fprintf(out, "removed treestore %q\n", t.ID)
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
// running, prepared, or exited and not yet collected by `rkt gc`.
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
		if err := s.Remove(ctx, img.ID); err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				errs = append(errs, err)
			}
			continue
		}
		fmt.Fprintf(out, "successfully removed aci for image: %q\n", img.ID)
	}
	return errors.Join(errs...)
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
