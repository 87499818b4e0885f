package stage0

import (
	"strings"
	"testing"
)

func TestCheckUser(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		command string
		euid    int
		ok      bool
	}{
		{"rkt run", 0, true},
		{"rkt run", 1000, false},
		{"rkt fetch", 1000, false},
		{"rkt trust", 1000, false},
		{"rkt image rm", 1000, false},
		{"rkt app add", 1000, false},
		{"rkt config", 1000, false},
		{"rkt list", 1000, true},
		{"rkt status", 1000, true},
		{"rkt cat-manifest", 1000, true},
		{"rkt image list", 1000, true},
		{"rkt image cat-manifest", 1000, true},
		{"rkt version", 1000, true},
		{"rkt", 1000, true},
	} {
		t.Run(tc.command, func(t *testing.T) {
			t.Parallel()
			err := checkUser(tc.command, tc.euid)
			if tc.ok != (err == nil) {
				t.Fatalf("checkUser(%q, %d) = %v, want ok=%v", tc.command, tc.euid, err, tc.ok)
			}
			if err != nil && !strings.Contains(err.Error(), tc.command+": cannot run as unprivileged user") {
				t.Errorf("error %q does not name the command with rkt's words", err)
			}
		})
	}
}
