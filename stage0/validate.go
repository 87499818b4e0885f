package stage0

import (
	"fmt"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"github.com/rkt-ng/rkt/cni"
	"github.com/rkt-ng/rkt/stage1/cgroups"
	"github.com/rkt-ng/rkt/stage2/caps"
	"github.com/rkt-ng/rkt/stage2/seccomp"
)

// validateIsolators checks what the appc library accepts but the runtime
// cannot apply (unknown capability or syscall names, malformed quantities,
// conflicting sets), so that bad input fails before a pod exists.
func validateIsolators(pm *schema.PodManifest) error {
	if _, err := cgroups.FromIsolators(pm.Isolators); err != nil {
		return fmt.Errorf("pod isolators: %w", err)
	}
	for _, ra := range pm.Apps {
		if ra.App == nil {
			continue
		}
		if err := validateApp(ra.App.Isolators); err != nil {
			return fmt.Errorf("app %s: %w", ra.Name, err)
		}
	}
	return nil
}

func validateApp(isos types.Isolators) error {
	if _, err := cgroups.FromIsolators(isos); err != nil {
		return err
	}
	var retain, remove []string
	nCaps, nSeccomp := 0, 0
	for _, iso := range isos {
		switch v := iso.Value().(type) {
		case *types.LinuxCapabilitiesRetainSet:
			nCaps++
			retain = capStrings(v.Set())
		case *types.LinuxCapabilitiesRevokeSet:
			nCaps++
			remove = capStrings(v.Set())
		case *types.LinuxSeccompRetainSet:
			nSeccomp++
			if _, err := seccomp.Build(seccomp.Retain, entries(v.Set()), string(v.Errno())); err != nil {
				return fmt.Errorf("isolator %s: %w", iso.Name, err)
			}
		case *types.LinuxSeccompRemoveSet:
			nSeccomp++
			if _, err := seccomp.Build(seccomp.Remove, entries(v.Set()), string(v.Errno())); err != nil {
				return fmt.Errorf("isolator %s: %w", iso.Name, err)
			}
		}
	}
	if nCaps > 1 {
		return fmt.Errorf("conflicting capability isolators: give either a retain or a remove set")
	}
	if nSeccomp > 1 {
		return fmt.Errorf("conflicting seccomp isolators: give either a retain or a remove set")
	}
	if _, err := caps.Resolve(retain, remove); err != nil {
		return err
	}
	return nil
}

func capStrings(cs []types.LinuxCapability) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, string(c))
	}
	return out
}

func entries(es []types.LinuxSeccompEntry) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, string(e))
	}
	return out
}

// validateNet checks a --net value against the configured networks.
func (c *Config) validateNet(spec string) error {
	if spec == "" || cni.IsHost(spec) {
		return nil
	}
	cat, err := cni.Load(c.LocalConfig, c.SystemConfig)
	if err != nil {
		return err
	}
	_, err = cat.Select(spec)
	return err
}
