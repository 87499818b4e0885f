package stage0

import (
	"fmt"
	"strings"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"github.com/rkt-ng/rkt/stage1"
)

// applyIsolatorFlags turns rkt's isolator flags into appc isolators that
// replace the image's isolators of the same kind.
func applyIsolatorFlags(isos types.Isolators, spec AppSpec) (types.Isolators, error) {
	replace := func(iso *types.Isolator, err error, flag string, names ...types.ACIdentifier) error {
		if err != nil {
			return fmt.Errorf("%s: %w", flag, err)
		}
		isos.ReplaceIsolatorsByName(*iso, names)
		return nil
	}
	if spec.Memory != "" {
		r, err := types.NewResourceMemoryIsolator(spec.Memory, spec.Memory)
		if err != nil {
			return nil, fmt.Errorf("--memory=%s: %w", spec.Memory, err)
		}
		if err := replace(asIsolator(r.AsIsolator()), nil, "--memory", types.ResourceMemoryName); err != nil {
			return nil, err
		}
	}
	if spec.CPU != "" {
		r, err := types.NewResourceCPUIsolator(spec.CPU, spec.CPU)
		if err != nil {
			return nil, fmt.Errorf("--cpu=%s: %w", spec.CPU, err)
		}
		if err := replace(asIsolator(r.AsIsolator()), nil, "--cpu", types.ResourceCPUName); err != nil {
			return nil, err
		}
	}
	if spec.CPUShares != nil {
		r, err := types.NewLinuxCPUShares(*spec.CPUShares)
		if err != nil {
			return nil, fmt.Errorf("--cpu-shares=%d: %w", *spec.CPUShares, err)
		}
		if err := replace(asIsolator(r.AsIsolator()), nil, "--cpu-shares", types.LinuxCPUSharesName); err != nil {
			return nil, err
		}
	}
	if spec.OOMScoreAdj != nil {
		r, err := types.NewLinuxOOMScoreAdj(*spec.OOMScoreAdj)
		if err != nil {
			return nil, fmt.Errorf("--oom-score-adj=%d: %w", *spec.OOMScoreAdj, err)
		}
		if err := replace(asIsolator(r.AsIsolator()), nil, "--oom-score-adj", types.LinuxOOMScoreAdjName); err != nil {
			return nil, err
		}
	}
	capNames := []types.ACIdentifier{types.LinuxCapabilitiesRetainSetName, types.LinuxCapabilitiesRevokeSetName}
	if len(spec.CapsRetain) > 0 && len(spec.CapsRemove) > 0 {
		return nil, fmt.Errorf("--caps-retain and --caps-remove conflict: give only one")
	}
	if len(spec.CapsRetain) > 0 {
		r, err := types.NewLinuxCapabilitiesRetainSet(normCaps(spec.CapsRetain)...)
		if err != nil {
			return nil, fmt.Errorf("--caps-retain: %w", err)
		}
		iso, err := r.AsIsolator()
		if err := replace(iso, err, "--caps-retain", capNames...); err != nil {
			return nil, err
		}
	}
	if len(spec.CapsRemove) > 0 {
		r, err := types.NewLinuxCapabilitiesRevokeSet(normCaps(spec.CapsRemove)...)
		if err != nil {
			return nil, fmt.Errorf("--caps-remove: %w", err)
		}
		iso, err := r.AsIsolator()
		if err := replace(iso, err, "--caps-remove", capNames...); err != nil {
			return nil, err
		}
	}
	if spec.Seccomp != "" {
		iso, err := seccompIsolator(spec.Seccomp)
		if err != nil {
			return nil, err
		}
		isos.ReplaceIsolatorsByName(*iso, []types.ACIdentifier{types.LinuxSeccompRetainSetName, types.LinuxSeccompRemoveSetName})
	}
	return isos, nil
}

func asIsolator(i types.Isolator) *types.Isolator { return &i }

// normCaps accepts "net_admin", "NET_ADMIN" and "CAP_NET_ADMIN".
func normCaps(in []string) []string {
	out := make([]string, 0, len(in))
	for _, c := range in {
		for _, c := range strings.Split(c, ",") {
			c = strings.ToUpper(strings.TrimSpace(c))
			if c == "" {
				continue
			}
			if !strings.HasPrefix(c, "CAP_") {
				c = "CAP_" + c
			}
			out = append(out, c)
		}
	}
	return out
}

// seccompIsolator parses --seccomp mode=retain|remove[,errno=E],SYSCALL...
func seccompIsolator(s string) (*types.Isolator, error) {
	mode, errno := "", ""
	var calls []string
	for _, f := range strings.Split(s, ",") {
		switch {
		case strings.HasPrefix(f, "mode="):
			mode = strings.TrimPrefix(f, "mode=")
		case strings.HasPrefix(f, "errno="):
			errno = strings.TrimPrefix(f, "errno=")
		case f != "":
			calls = append(calls, f)
		}
	}
	if len(calls) == 0 {
		return nil, fmt.Errorf("--seccomp %q: no syscalls given", s)
	}
	switch mode {
	case "retain":
		r, err := types.NewLinuxSeccompRetainSet(errno, calls...)
		if err != nil {
			return nil, fmt.Errorf("--seccomp %q: %w", s, err)
		}
		return r.AsIsolator()
	case "remove":
		r, err := types.NewLinuxSeccompRemoveSet(errno, calls...)
		if err != nil {
			return nil, fmt.Errorf("--seccomp %q: %w", s, err)
		}
		return r.AsIsolator()
	}
	return nil, fmt.Errorf("--seccomp %q: mode must be retain or remove", s)
}

// flagIsolators names the isolator kinds the app flags of spec set: they
// replace the image's isolators of those kinds, so they are the user's
// (stage1.AppOptions.UserIsolators).
func flagIsolators(spec AppSpec) []string {
	var names []types.ACIdentifier
	if spec.Memory != "" {
		names = append(names, types.ResourceMemoryName)
	}
	if spec.CPU != "" {
		names = append(names, types.ResourceCPUName)
	}
	if spec.CPUShares != nil {
		names = append(names, types.LinuxCPUSharesName)
	}
	if spec.OOMScoreAdj != nil {
		names = append(names, types.LinuxOOMScoreAdjName)
	}
	if len(spec.CapsRetain) > 0 || len(spec.CapsRemove) > 0 {
		names = append(names, types.LinuxCapabilitiesRetainSetName, types.LinuxCapabilitiesRevokeSetName)
	}
	if spec.Seccomp != "" {
		names = append(names, types.LinuxSeccompRetainSetName, types.LinuxSeccompRemoveSetName)
	}
	var out []string
	for _, n := range names {
		out = append(out, n.String())
	}
	return out
}

// withGrants adds to each app's stage1 options which isolators the user
// gave and how, so that the stage1 can refuse image isolators that ask for
// more than the default confinement (docs/stage1-abi.md 2.1).
func withGrants(apps, grants map[string]stage1.AppOptions) map[string]stage1.AppOptions {
	for name, g := range grants {
		if apps == nil {
			apps = map[string]stage1.AppOptions{}
		}
		ao := apps[name]
		ao.UserIsolators, ao.GrantedBy = g.UserIsolators, g.GrantedBy
		apps[name] = ao
	}
	return apps
}

// refuseImageGrants stands in for a stage1 that does not enforce the image
// privilege policy (no stage1.AnnotationImagePolicy, e.g. rkt's own): it
// refuses, conservatively, every image isolator that could grant more than
// the default confinement (any capability or seccomp retain set, a negative
// OOM score, no_new_privs off) unless the user gave that isolator. Without
// the flavor's knowledge of the default sets it cannot tell a narrowing
// retain set from a widening one; the user grants either with a flag.
func refuseImageGrants(pm *schema.PodManifest, grants map[string]stage1.AppOptions, stage1Name string) error {
	for _, ra := range pm.Apps {
		if ra.App == nil {
			continue
		}
		user := map[string]bool{}
		for _, n := range grants[ra.Name.String()].UserIsolators {
			user[n] = true
		}
		var asks []string
		for _, iso := range ra.App.Isolators {
			if user[iso.Name.String()] {
				continue
			}
			switch v := iso.Value().(type) {
			case *types.LinuxCapabilitiesRetainSet, *types.LinuxSeccompRetainSet:
				asks = append(asks, iso.Name.String())
			case *types.LinuxNoNewPrivileges:
				if !bool(*v) {
					asks = append(asks, iso.Name.String()+"=false")
				}
			case *types.LinuxOOMScoreAdj:
				if int(*v) < 0 {
					asks = append(asks, fmt.Sprintf("%s=%d", iso.Name, int(*v)))
				}
			}
		}
		if len(asks) > 0 {
			return fmt.Errorf("app %s: stage1 %s does not enforce rkt-ng's image privilege policy, so the image's isolators %s are refused; give them with --caps-retain, --seccomp or --oom-score-adj, or use a stage1 that enforces the policy",
				ra.Name, stage1Name, strings.Join(asks, ", "))
		}
	}
	return nil
}
