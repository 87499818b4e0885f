package caps

import (
	"errors"
	"fmt"
	"math/bits"
	"strings"

	"golang.org/x/sys/unix"
)

// Cap is a Linux capability number, as in linux/capability.h.
type Cap int

// Last is the highest capability this package knows.
const Last Cap = unix.CAP_CHECKPOINT_RESTORE

// names is indexed by capability number; the indexes make the compiler reject
// a duplicate.
var names = [...]string{
	unix.CAP_CHOWN:              "CAP_CHOWN",
	unix.CAP_DAC_OVERRIDE:       "CAP_DAC_OVERRIDE",
	unix.CAP_DAC_READ_SEARCH:    "CAP_DAC_READ_SEARCH",
	unix.CAP_FOWNER:             "CAP_FOWNER",
	unix.CAP_FSETID:             "CAP_FSETID",
	unix.CAP_KILL:               "CAP_KILL",
	unix.CAP_SETGID:             "CAP_SETGID",
	unix.CAP_SETUID:             "CAP_SETUID",
	unix.CAP_SETPCAP:            "CAP_SETPCAP",
	unix.CAP_LINUX_IMMUTABLE:    "CAP_LINUX_IMMUTABLE",
	unix.CAP_NET_BIND_SERVICE:   "CAP_NET_BIND_SERVICE",
	unix.CAP_NET_BROADCAST:      "CAP_NET_BROADCAST",
	unix.CAP_NET_ADMIN:          "CAP_NET_ADMIN",
	unix.CAP_NET_RAW:            "CAP_NET_RAW",
	unix.CAP_IPC_LOCK:           "CAP_IPC_LOCK",
	unix.CAP_IPC_OWNER:          "CAP_IPC_OWNER",
	unix.CAP_SYS_MODULE:         "CAP_SYS_MODULE",
	unix.CAP_SYS_RAWIO:          "CAP_SYS_RAWIO",
	unix.CAP_SYS_CHROOT:         "CAP_SYS_CHROOT",
	unix.CAP_SYS_PTRACE:         "CAP_SYS_PTRACE",
	unix.CAP_SYS_PACCT:          "CAP_SYS_PACCT",
	unix.CAP_SYS_ADMIN:          "CAP_SYS_ADMIN",
	unix.CAP_SYS_BOOT:           "CAP_SYS_BOOT",
	unix.CAP_SYS_NICE:           "CAP_SYS_NICE",
	unix.CAP_SYS_RESOURCE:       "CAP_SYS_RESOURCE",
	unix.CAP_SYS_TIME:           "CAP_SYS_TIME",
	unix.CAP_SYS_TTY_CONFIG:     "CAP_SYS_TTY_CONFIG",
	unix.CAP_MKNOD:              "CAP_MKNOD",
	unix.CAP_LEASE:              "CAP_LEASE",
	unix.CAP_AUDIT_WRITE:        "CAP_AUDIT_WRITE",
	unix.CAP_AUDIT_CONTROL:      "CAP_AUDIT_CONTROL",
	unix.CAP_SETFCAP:            "CAP_SETFCAP",
	unix.CAP_MAC_OVERRIDE:       "CAP_MAC_OVERRIDE",
	unix.CAP_MAC_ADMIN:          "CAP_MAC_ADMIN",
	unix.CAP_SYSLOG:             "CAP_SYSLOG",
	unix.CAP_WAKE_ALARM:         "CAP_WAKE_ALARM",
	unix.CAP_BLOCK_SUSPEND:      "CAP_BLOCK_SUSPEND",
	unix.CAP_AUDIT_READ:         "CAP_AUDIT_READ",
	unix.CAP_PERFMON:            "CAP_PERFMON",
	unix.CAP_BPF:                "CAP_BPF",
	unix.CAP_CHECKPOINT_RESTORE: "CAP_CHECKPOINT_RESTORE",
}

// String returns the appc name ("CAP_CHOWN"), or "CAP_<n>" for a number this
// package does not know.
func (c Cap) String() string {
	if c >= 0 && c <= Last {
		return names[c]
	}
	return fmt.Sprintf("CAP_%d", int(c))
}

// Parse returns the capability named name ("CAP_NET_ADMIN", any case).
func Parse(name string) (Cap, error) {
	for c, n := range names {
		if strings.EqualFold(n, name) {
			return Cap(c), nil
		}
	}
	return 0, fmt.Errorf("unknown capability %q", name)
}

// Set is a set of capabilities, bit c standing for Cap(c), in the layout of
// the kernel's 64-bit capability masks (/proc/<pid>/status CapEff and so on).
type Set uint64

// DefaultSet is the set an app gets without a capability isolator: the 14
// capabilities of the appc spec and rkt (the same as Docker's defaults).
const DefaultSet Set = 1<<unix.CAP_AUDIT_WRITE |
	1<<unix.CAP_CHOWN |
	1<<unix.CAP_DAC_OVERRIDE |
	1<<unix.CAP_FSETID |
	1<<unix.CAP_FOWNER |
	1<<unix.CAP_KILL |
	1<<unix.CAP_MKNOD |
	1<<unix.CAP_NET_RAW |
	1<<unix.CAP_NET_BIND_SERVICE |
	1<<unix.CAP_SETUID |
	1<<unix.CAP_SETGID |
	1<<unix.CAP_SETPCAP |
	1<<unix.CAP_SETFCAP |
	1<<unix.CAP_SYS_CHROOT

// NewSet returns the set holding caps. It panics on a number outside
// 0..Last, which is a programming error.
func NewSet(caps ...Cap) Set {
	var s Set
	for _, c := range caps {
		if c < 0 || c > Last {
			panic(fmt.Sprintf("caps: capability %d out of range", int(c)))
		}
		s |= 1 << c
	}
	return s
}

// Has says whether c is in s.
func (s Set) Has(c Cap) bool { return c >= 0 && c < 64 && s&(1<<c) != 0 }

// Caps returns the members of s in increasing order.
func (s Set) Caps() []Cap {
	out := make([]Cap, 0, bits.OnesCount64(uint64(s)))
	for c := Cap(0); c < 64; c++ {
		if s.Has(c) {
			out = append(out, c)
		}
	}
	return out
}

// String returns the members' names joined by commas ("" for the empty set).
func (s Set) String() string {
	var b strings.Builder
	for i, c := range s.Caps() {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(c.String())
	}
	return b.String()
}

// ParseSet returns the set of the named capabilities; the first unknown name
// is an error naming it.
func ParseSet(names []string) (Set, error) {
	var s Set
	for _, n := range names {
		c, err := Parse(n)
		if err != nil {
			return 0, err
		}
		s |= 1 << c
	}
	return s, nil
}

// ErrConflict is returned by Resolve when both a retain and a remove set are
// given; the appc spec makes the two isolators mutually exclusive.
var ErrConflict = errors.New("conflicting retain and remove sets")

// Resolve computes an app's capability set from its isolators. A non-nil
// retain replaces DefaultSet (an empty, non-nil retain means no capability);
// a non-nil remove is subtracted from DefaultSet; with neither the result is
// DefaultSet; with both it is ErrConflict.
func Resolve(retain, remove []string) (Set, error) {
	switch {
	case retain != nil && remove != nil:
		return 0, ErrConflict
	case retain != nil:
		s, err := ParseSet(retain)
		if err != nil {
			return 0, fmt.Errorf("capabilities retain set: %w", err)
		}
		return s, nil
	case remove != nil:
		s, err := ParseSet(remove)
		if err != nil {
			return 0, fmt.Errorf("capabilities remove set: %w", err)
		}
		return DefaultSet &^ s, nil
	}
	return DefaultSet, nil
}
