package stage0

import (
	"fmt"
	"slices"
	"strings"

	"github.com/appc/spec/schema/types"

	"github.com/rkt-ng/rkt/stage2/caps"
	"github.com/rkt-ng/rkt/stage2/seccomp"
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

// ImagePrivilegesError is an image whose isolators ask for more than the
// default confinement. Only the user grants privileges: with app flags on the
// command line or in a pod manifest they wrote.
type ImagePrivilegesError struct {
	App string
	// Asks are the isolators that ask for more, each with how to grant it.
	Asks []string
}

func (e *ImagePrivilegesError) Error() string {
	return fmt.Sprintf("app %s: the image asks for privileges beyond the default set, which only the user can grant: %s",
		e.App, strings.Join(e.Asks, "; "))
}

// privilegeGrant says how the user grants what an image isolator asks for.
type privilegeGrant int

const (
	grantByFlags       privilegeGrant = iota // rkt run IMAGE --caps-retain=... (app flags)
	grantByPodManifest                       // --pod-manifest: apps[].app.isolators
)

// confineImageIsolators checks an image's own isolators, before the app
// flags replace some of them, against the default confinement: a
// capability retain set beyond appc's default set, a seccomp retain set
// allowing a syscall the default filter blocks, or a negative OOM score
// adjustment is refused with an *ImagePrivilegesError. Isolators that only
// restrict pass; an image's seccomp remove set is turned into a retain set
// of the default filter minus the removed syscalls, so that it narrows the
// default filter instead of replacing it. Kinds that a flag of spec
// replaces, and kinds lifted by --insecure-options, are not checked: the
// user decided those.
func confineImageIsolators(app types.ACName, isos types.Isolators, spec AppSpec, in Insecure, how privilegeGrant) (types.Isolators, error) {
	capsByFlag := len(spec.CapsRetain) > 0 || len(spec.CapsRemove) > 0
	seccompByFlag := spec.Seccomp != ""
	grant := func(flag, value string) string {
		if how == grantByPodManifest {
			return "set it in the pod manifest's apps[].app.isolators"
		}
		return "grant with " + flag + "=" + value
	}
	var asks []string
	out := make(types.Isolators, 0, len(isos))
	for _, iso := range isos {
		switch v := iso.Value().(type) {
		case *types.LinuxCapabilitiesRetainSet:
			if capsByFlag || in.Capabilities {
				break
			}
			s, err := caps.ParseSet(capStrings(v.Set()))
			if err != nil {
				return nil, fmt.Errorf("app %s: isolator %s: %w", app, iso.Name, err)
			}
			if extra := s &^ caps.DefaultSet; extra != 0 {
				asks = append(asks, fmt.Sprintf("isolator %s retains %s (%s)", iso.Name, extra, grant("--caps-retain", s.String())))
			}
		case *types.LinuxSeccompRetainSet:
			if seccompByFlag || in.Seccomp {
				break
			}
			extra, err := seccompBeyondDefault(entries(v.Set()))
			if err != nil {
				return nil, fmt.Errorf("app %s: isolator %s: %w", app, iso.Name, err)
			}
			if len(extra) > 0 {
				asks = append(asks, fmt.Sprintf("isolator %s allows %s beyond the default filter (%s)", iso.Name, summary(extra, 6),
					grant("--seccomp", "mode=retain,"+strings.Join(entries(v.Set()), ","))))
			}
		case *types.LinuxSeccompRemoveSet:
			if seccompByFlag || in.Seccomp {
				break
			}
			narrowed, err := narrowRemoveSet(v)
			if err != nil {
				return nil, fmt.Errorf("app %s: isolator %s: %w", app, iso.Name, err)
			}
			out = append(out, *narrowed)
			continue
		case *types.LinuxNoNewPrivileges:
			// no_new_privs is on by default: turning it off lets setuid
			// binaries and file capabilities raise the app's privileges.
			if !bool(*v) {
				asks = append(asks, fmt.Sprintf("isolator %s turns no_new_privs off (set it in a pod manifest's apps[].app.isolators)", iso.Name))
			}
		case *types.LinuxOOMScoreAdj:
			if spec.OOMScoreAdj != nil {
				break
			}
			if int(*v) < 0 {
				asks = append(asks, fmt.Sprintf("isolator %s is %d (%s)", iso.Name, int(*v), grant("--oom-score-adj", fmt.Sprint(int(*v)))))
			}
		}
		out = append(out, iso)
	}
	if len(asks) > 0 {
		return nil, &ImagePrivilegesError{App: app.String(), Asks: asks}
	}
	return out, nil
}

// defaultSeccompSet is the filter stage1 applies when an app names none
// (stage1/podspec.DefaultSeccompSet).
const defaultSeccompSet = seccomp.GroupRktWhitelist

// seccompBeyondDefault lists the syscalls a retain set allows that the
// default filter blocks.
func seccompBeyondDefault(set []string) ([]string, error) {
	def, err := seccomp.Allowed(seccomp.Retain, []string{defaultSeccompSet})
	if err != nil {
		return nil, err
	}
	got, err := seccomp.Allowed(seccomp.Retain, set)
	if err != nil {
		return nil, err
	}
	var extra []string
	for _, n := range got {
		if !slices.Contains(def, n) {
			extra = append(extra, n)
		}
	}
	return extra, nil
}

// narrowRemoveSet turns an image's remove set into the retain set of the
// default filter without the removed syscalls, keeping its errno.
func narrowRemoveSet(v *types.LinuxSeccompRemoveSet) (*types.Isolator, error) {
	def, err := seccomp.Allowed(seccomp.Retain, []string{defaultSeccompSet})
	if err != nil {
		return nil, err
	}
	left, err := seccomp.Allowed(seccomp.Remove, entries(v.Set()))
	if err != nil {
		return nil, err
	}
	var keep []string
	for _, n := range def {
		if slices.Contains(left, n) {
			keep = append(keep, n)
		}
	}
	if len(keep) == 0 {
		keep = []string{seccomp.GroupEmpty}
	}
	r, err := types.NewLinuxSeccompRetainSet(string(v.Errno()), keep...)
	if err != nil {
		return nil, err
	}
	return r.AsIsolator()
}

// summary joins the first n names and says how many more there are.
func summary(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ",")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ","), len(names)-n)
}
