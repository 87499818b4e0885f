package podspec

import (
	"fmt"

	"github.com/appc/spec/schema/types"

	"github.com/rkt-ng/rkt/stage2"
	"github.com/rkt-ng/rkt/stage2/caps"
	"github.com/rkt-ng/rkt/stage2/seccomp"
)

// DefaultSeccompSet is appc/rkt's default filter when an app names none.
const DefaultSeccompSet = seccomp.GroupRktWhitelist

// Insecure lists the confinement that --insecure-options lifted.
type Insecure struct {
	Capabilities, Seccomp bool
}

// Confine sets p's capabilities, seccomp filter, no_new_privs and OOM score
// from the app's isolators, and returns the names of the isolators it
// applied so the caller can report the others as ignored (appc requires
// telling the user).
func Confine(p *stage2.Proc, isos types.Isolators, in Insecure) (applied map[types.ACIdentifier]bool, err error) {
	applied = map[types.ACIdentifier]bool{}
	p.CapsUnrestricted = in.Capabilities
	// no_new_privs is on unless an isolator turns it off: a setuid binary
	// or file capabilities in the image never raise an app's privileges.
	p.NoNewPrivs = true
	var retain, remove []string
	var seccomp *stage2.Seccomp
	for _, iso := range isos {
		switch v := iso.Value().(type) {
		case *types.LinuxCapabilitiesRetainSet:
			if retain != nil || remove != nil {
				return nil, fmt.Errorf("isolator %s: only one capabilities set is allowed", iso.Name)
			}
			retain = capNames(v.Set())
		case *types.LinuxCapabilitiesRevokeSet:
			if retain != nil || remove != nil {
				return nil, fmt.Errorf("isolator %s: only one capabilities set is allowed", iso.Name)
			}
			remove = capNames(v.Set())
		case *types.LinuxSeccompRetainSet:
			if seccomp != nil {
				return nil, fmt.Errorf("isolator %s: conflicting seccomp retain and remove sets", iso.Name)
			}
			seccomp = &stage2.Seccomp{Retain: true, Syscalls: syscallNames(v.Set()), Errno: string(v.Errno())}
		case *types.LinuxSeccompRemoveSet:
			if seccomp != nil {
				return nil, fmt.Errorf("isolator %s: conflicting seccomp retain and remove sets", iso.Name)
			}
			seccomp = &stage2.Seccomp{Syscalls: syscallNames(v.Set()), Errno: string(v.Errno())}
		case *types.LinuxNoNewPrivileges:
			p.NoNewPrivs = bool(*v)
		case *types.LinuxOOMScoreAdj:
			n := int(*v)
			p.OOMScoreAdj = &n
		default:
			continue
		}
		applied[iso.Name] = true
	}
	if !in.Capabilities {
		p.Caps, err = effectiveCaps(retain, remove)
		if err != nil {
			return nil, err
		}
		p.CapsRetained = retain != nil
	}
	if !in.Seccomp {
		if seccomp == nil {
			seccomp = &stage2.Seccomp{Retain: true, Syscalls: []string{DefaultSeccompSet}}
		}
		p.Seccomp = seccomp
	}
	return applied, nil
}

// effectiveCaps applies a retain set (replacing appc's default set,
// caps.DefaultSet) or a remove set (subtracted from it). The result is never
// nil, so that an empty set survives the trip to stage2.
func effectiveCaps(retain, remove []string) ([]string, error) {
	s, err := caps.Resolve(retain, remove)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, c := range s.Caps() {
		out = append(out, c.String())
	}
	return out, nil
}

func capNames(cs []types.LinuxCapability) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, string(c))
	}
	return out
}

func syscallNames(cs []types.LinuxSeccompEntry) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, string(c))
	}
	return out
}
