package caps

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func TestNames(t *testing.T) {
	t.Parallel()
	if len(names) != int(Last)+1 {
		t.Fatalf("%d names for %d capabilities", len(names), Last+1)
	}
	for c, n := range names {
		if n == "" {
			t.Errorf("capability %d has no name", c)
			continue
		}
		got, err := Parse(n)
		if err != nil || got != Cap(c) {
			t.Errorf("Parse(%q) = %d, %v; want %d", n, got, err, c)
		}
		if s := Cap(c).String(); s != n {
			t.Errorf("Cap(%d).String() = %q, want %q", c, s, n)
		}
	}
	for name, want := range map[string]Cap{
		"CAP_CHOWN": 0, "CAP_SYS_ADMIN": 21, "cap_net_admin": 12, "Cap_Bpf": 39, "CAP_CHECKPOINT_RESTORE": 40,
	} {
		if got, err := Parse(name); err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", name, got, err, want)
		}
	}
	if got := Cap(41).String(); got != "CAP_41" {
		t.Errorf("Cap(41).String() = %q", got)
	}
}

func TestDefaultSet(t *testing.T) {
	t.Parallel()
	want := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
		"CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD",
		"CAP_AUDIT_WRITE", "CAP_SETFCAP"}
	if diff := cmp.Diff(strings.Join(want, ","), DefaultSet.String()); diff != "" {
		t.Errorf("DefaultSet mismatch (-want +got):\n%s", diff)
	}
	// The value Docker and rkt containers show in /proc/self/status CapBnd.
	if DefaultSet != 0xa80425fb {
		t.Errorf("DefaultSet = %#x, want 0xa80425fb", uint64(DefaultSet))
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		retain  []string
		remove  []string
		want    Set
		wantErr string
	}{
		{name: "default", want: DefaultSet},
		{name: "retain replaces", retain: []string{"CAP_NET_ADMIN", "CAP_SYS_ADMIN"},
			want: NewSet(unix.CAP_NET_ADMIN, unix.CAP_SYS_ADMIN)},
		{name: "retain empty", retain: []string{}, want: 0},
		{name: "remove subtracts", remove: []string{"CAP_NET_RAW", "CAP_MKNOD", "CAP_SYS_ADMIN"},
			want: DefaultSet &^ NewSet(unix.CAP_NET_RAW, unix.CAP_MKNOD)},
		{name: "remove all defaults", remove: strings.Split(DefaultSet.String(), ","), want: 0},
		{name: "both", retain: []string{"CAP_KILL"}, remove: []string{"CAP_CHOWN"},
			wantErr: "conflicting retain and remove sets"},
		{name: "unknown retain", retain: []string{"CAP_KILL", "CAP_FLY"},
			wantErr: `capabilities retain set: unknown capability "CAP_FLY"`},
		{name: "unknown remove", remove: []string{"SYS_ADMIN"},
			wantErr: `capabilities remove set: unknown capability "SYS_ADMIN"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Resolve(tc.retain, tc.remove)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("Resolve(%q, %q) = %v, %v; want error %q", tc.retain, tc.remove, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Resolve(%q, %q) = %s, want %s", tc.retain, tc.remove, got, tc.want)
			}
		})
	}
	if _, err := Resolve([]string{}, []string{}); !errors.Is(err, ErrConflict) {
		t.Errorf("Resolve(empty, empty) error = %v, want ErrConflict", err)
	}
}

func TestSet(t *testing.T) {
	t.Parallel()
	s := NewSet(unix.CAP_CHOWN, unix.CAP_CHECKPOINT_RESTORE)
	if !s.Has(unix.CAP_CHOWN) || !s.Has(Last) || s.Has(unix.CAP_KILL) || s.Has(-1) || s.Has(64) {
		t.Errorf("Has on %s is wrong", s)
	}
	if diff := cmp.Diff([]Cap{0, 40}, s.Caps()); diff != "" {
		t.Errorf("Caps mismatch (-want +got):\n%s", diff)
	}
	if got := Set(0).String(); got != "" {
		t.Errorf("empty set String = %q", got)
	}
}

// FuzzResolve feeds isolator sets (one name per line; an empty string is a
// nil set) and checks the result only ever holds known capabilities and
// round-trips through its names.
func FuzzResolve(f *testing.F) {
	f.Add("CAP_NET_ADMIN\nCAP_SYS_ADMIN", "")
	f.Add("", "CAP_NET_RAW")
	f.Add("CAP_KILL", "CAP_KILL")
	f.Add("cap_bpf\nCAP_CHECKPOINT_RESTORE\nCAP_42", "")
	f.Fuzz(func(t *testing.T, retain, remove string) {
		if len(retain)+len(remove) > 1<<12 {
			return
		}
		split := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, "\n")
		}
		s, err := Resolve(split(retain), split(remove))
		if err != nil {
			return
		}
		if s > 1<<(Last+1)-1 {
			t.Fatalf("set %#x has unknown capabilities", uint64(s))
		}
		if remove != "" && s&^DefaultSet != 0 {
			t.Fatalf("remove set %q added %s", remove, s&^DefaultSet)
		}
		var names []string
		if s != 0 {
			names = strings.Split(s.String(), ",")
		}
		back, err := ParseSet(names)
		if err != nil || back != s {
			t.Fatalf("ParseSet(%q) = %s, %v; want %s", names, back, err, s)
		}
	})
}
