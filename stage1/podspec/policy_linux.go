package podspec

import (
	"fmt"
	"slices"
	"strings"

	"github.com/appc/spec/schema/types"

	"github.com/rkt-ng/rkt/stage1"
	"github.com/rkt-ng/rkt/stage2/caps"
	"github.com/rkt-ng/rkt/stage2/seccomp"
)

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

// ConfineImage checks the isolators of app that came from its image (those
// o.UserIsolators does not name) against the default confinement: a
// capability retain set beyond appc's default set (caps.DefaultSet), a
// seccomp retain set allowing a syscall the default filter blocks, a
// negative OOM score adjustment or no_new_privs turned off is refused with
// an *ImagePrivilegesError. Isolators that only restrict pass; an image's
// seccomp remove set is turned into a retain set of the default filter
// minus the removed syscalls, so that it narrows the default filter instead
// of replacing it. Kinds lifted by --insecure-options (in) are not checked:
// the user decided those. Every flavor calls it before any app starts.
func ConfineImage(app string, isos types.Isolators, o stage1.AppOptions, in Insecure) (types.Isolators, error) {
	user := func(n types.ACIdentifier) bool { return slices.Contains(o.UserIsolators, n.String()) }
	grant := func(flag, value string) string {
		if o.GrantedBy == stage1.GrantedByPodManifest {
			return "set it in the pod manifest's apps[].app.isolators"
		}
		return "grant with " + flag + "=" + value
	}
	var asks []string
	out := make(types.Isolators, 0, len(isos))
	for _, iso := range isos {
		if user(iso.Name) {
			out = append(out, iso)
			continue
		}
		switch v := iso.Value().(type) {
		case *types.LinuxCapabilitiesRetainSet:
			if in.Capabilities {
				break
			}
			s, err := caps.ParseSet(capNames(v.Set()))
			if err != nil {
				return nil, fmt.Errorf("app %s: isolator %s: %w", app, iso.Name, err)
			}
			if extra := s &^ caps.DefaultSet; extra != 0 {
				asks = append(asks, fmt.Sprintf("isolator %s retains %s (%s)", iso.Name, extra, grant("--caps-retain", s.String())))
			}
		case *types.LinuxSeccompRetainSet:
			if in.Seccomp {
				break
			}
			extra, err := seccompBeyondDefault(syscallNames(v.Set()))
			if err != nil {
				return nil, fmt.Errorf("app %s: isolator %s: %w", app, iso.Name, err)
			}
			if len(extra) > 0 {
				asks = append(asks, fmt.Sprintf("isolator %s allows %s beyond the default filter (%s)", iso.Name, summary(extra, 6),
					grant("--seccomp", "mode=retain,"+strings.Join(syscallNames(v.Set()), ","))))
			}
		case *types.LinuxSeccompRemoveSet:
			if in.Seccomp {
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
			if int(*v) < 0 {
				asks = append(asks, fmt.Sprintf("isolator %s is %d (%s)", iso.Name, int(*v), grant("--oom-score-adj", fmt.Sprint(int(*v)))))
			}
		}
		out = append(out, iso)
	}
	if len(asks) > 0 {
		return nil, &ImagePrivilegesError{App: app, Asks: asks}
	}
	return out, nil
}

// CheckIsolators refuses what the appc library accepts but stage2 cannot
// apply: unknown capability or syscall names, an unknown errno, or both a
// retain and a remove set of one kind.
func CheckIsolators(isos types.Isolators) error {
	var retain, remove []string
	nCaps, nSeccomp := 0, 0
	for _, iso := range isos {
		switch v := iso.Value().(type) {
		case *types.LinuxCapabilitiesRetainSet:
			nCaps++
			retain = capNames(v.Set())
		case *types.LinuxCapabilitiesRevokeSet:
			nCaps++
			remove = capNames(v.Set())
		case *types.LinuxSeccompRetainSet:
			nSeccomp++
			if _, err := seccomp.Build(seccomp.Retain, syscallNames(v.Set()), string(v.Errno())); err != nil {
				return fmt.Errorf("isolator %s: %w", iso.Name, err)
			}
		case *types.LinuxSeccompRemoveSet:
			nSeccomp++
			if _, err := seccomp.Build(seccomp.Remove, syscallNames(v.Set()), string(v.Errno())); err != nil {
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
	_, err := caps.Resolve(retain, remove)
	return err
}

// seccompBeyondDefault lists the syscalls a retain set allows that the
// default filter blocks.
func seccompBeyondDefault(set []string) ([]string, error) {
	def, err := seccomp.Allowed(seccomp.Retain, []string{DefaultSeccompSet})
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
	def, err := seccomp.Allowed(seccomp.Retain, []string{DefaultSeccompSet})
	if err != nil {
		return nil, err
	}
	left, err := seccomp.Allowed(seccomp.Remove, syscallNames(v.Set()))
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
