package tests

import (
	"strings"
	"testing"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// TestACEValidator runs the appc spec's own executor conformance suite
// (ace-validator v0.8.11, main and sidekick) in one pod, on the network
// modes that matter for the metadata service.
func TestACEValidator(t *testing.T) {
	testutil.RequireRoot(t)
	main, sidekick := testutil.ACEImages(t)
	for _, net := range []string{"default", "host", "none", "default-restricted"} {
		t.Run(net, func(t *testing.T) {
			c := testutil.NewCtx(t)
			r := c.Run(t, "--insecure-options=image", "run", "--net="+net, "--mds-register", "--volume", "database,kind=empty", main, sidekick)
			for _, want := range []string{"prestart OK", "main OK", "sidekick OK", "poststop OK"} {
				if !strings.Contains(r.Stdout+r.Stderr, want) {
					t.Errorf("%q missing", want)
				}
			}
			wantExit(t, r, 0)
		})
	}
}
