package stage2

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWithTerm(t *testing.T) {
	t.Parallel()
	app := []string{"PATH=/bin", "TERM=xterm", "AC_APP_NAME=a"}
	got := withTerm(app, "vt100")
	if diff := cmp.Diff([]string{"PATH=/bin", "AC_APP_NAME=a", "TERM=vt100"}, got); diff != "" {
		t.Errorf("withTerm mismatch (-want +got):\n%s", diff)
	}
	// The app's own environment, shared with its other processes, is left alone.
	if diff := cmp.Diff([]string{"PATH=/bin", "TERM=xterm", "AC_APP_NAME=a"}, app); diff != "" {
		t.Errorf("withTerm changed its input (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"TERM=dumb"}, withTerm(nil, "dumb")); diff != "" {
		t.Errorf("withTerm(nil) mismatch (-want +got):\n%s", diff)
	}
}
