package ns

import (
	"fmt"

	"github.com/rkt-ng/rkt/stage1/cgroups"
	"github.com/rkt-ng/rkt/stage1/podspec"
)

// validate refuses, before anything of the pod exists on the host and
// before any app starts, the isolators this flavor cannot apply (unknown
// capability or syscall names, malformed quantities, conflicting sets) and
// the image isolators that ask for more than the default confinement
// (docs/stage1-abi.md 2.1). It rewrites the apps' isolators into the ones
// to apply: an image's seccomp remove set narrows the default filter.
// stage0 checks only what needs no flavor knowledge.
func (p *pod) validate() error {
	if _, err := cgroups.FromIsolators(p.manifest.Isolators); err != nil {
		return fmt.Errorf("pod isolators: %w", err)
	}
	in := podspec.Insecure{Capabilities: p.args.DisableCaps, Seccomp: p.args.DisableSeccomp}
	for i := range p.manifest.Apps {
		ra := &p.manifest.Apps[i]
		name := ra.Name.String()
		if ra.App == nil {
			return fmt.Errorf("app %s: the pod manifest has no app", name)
		}
		isos, err := podspec.ConfineImage(name, ra.App.Isolators, p.opts.Apps[name], in)
		if err != nil {
			return err
		}
		if _, err := cgroups.FromIsolators(isos); err != nil {
			return fmt.Errorf("app %s: %w", name, err)
		}
		if err := podspec.CheckIsolators(isos); err != nil {
			return fmt.Errorf("app %s: %w", name, err)
		}
		app := *ra.App
		app.Isolators = isos
		ra.App = &app
	}
	return nil
}
