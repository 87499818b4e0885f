package stage0

import (
	"context"
	"fmt"
	"os"

	"github.com/rkt-ng/rkt/manifests"
	"github.com/rkt-ng/rkt/pods"
	"github.com/rkt-ng/rkt/stage0/images"
	"github.com/rkt-ng/rkt/stage1"
)

// ExportBundle writes an OCI runtime bundle (images.ExportBundle) of an
// app of a prepared pod to dir: the app's image rendered afresh, and the
// app as the pod manifest has it, with the isolators given to `rkt
// prepare`. The pod is locked while it is read; it stays prepared.
func (c *Config) ExportBundle(ctx context.Context, ref, dir string, o ExportOptions, configure images.BundleConfig) error {
	p, err := c.pod(ref)
	if err != nil {
		return err
	}
	if p.State() != pods.Prepared {
		return fmt.Errorf("export pod %s: %w: %s, want prepared", p.UUID, pods.ErrBadState, p.State())
	}
	if err := p.TakeLock(); err != nil {
		return fmt.Errorf("export pod %s: %w", p.UUID, err)
	}
	defer p.Close()
	app, err := exportApp(p, o.App)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(p.ManifestPath())
	if err != nil {
		return fmt.Errorf("pod %s: %w", p.UUID, err)
	}
	pm, err := manifests.DecodePod(b)
	if err != nil {
		return fmt.Errorf("pod %s: %w", p.UUID, err)
	}
	opts, err := stage1.ReadOptions(p.OptionsPath())
	if err != nil {
		return fmt.Errorf("pod %s: %w", p.UUID, err)
	}
	for i := range pm.Apps {
		ra := &pm.Apps[i]
		if ra.Name.String() != app {
			continue
		}
		return c.Images().ExportBundle(ctx, ra.Image.ID.String(), dir, images.BundleOptions{
			Overwrite: o.Overwrite, App: ra, AppOptions: opts.Apps[app],
		}, configure)
	}
	return fmt.Errorf("pod %s has no app %q", p.UUID, app)
}
