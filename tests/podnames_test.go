package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// TestPodNameLikeUUIDPrefix: a pod named like another pod's UUID prefix
// does not make `rkt stop NAME` stop the other pod; the reference is
// ambiguous and the error names both pods.
func TestPodNameLikeUUIDPrefix(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/names")
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	p := c.Start(t, "--insecure-options=image", "run", "--net=none", "--uuid-file-save="+uuidFile, aci, "--", "--print-msg=up", "--sleep=1h")
	p.WaitOutput(t, "up", 30*time.Second)
	b, err := os.ReadFile(uuidFile)
	if err != nil {
		t.Fatal(err)
	}
	victim := string(b)
	name := victim[:8]
	r := c.Run(t, "--insecure-options=image", "prepare", "--pod-name="+name, aci)
	wantExit(t, r, 0)
	named := strings.TrimSpace(r.Stdout)

	r = c.Run(t, "stop", name)
	wantExit(t, r, 254)
	oneLineError(t, r, "ambiguous", victim, named)
	if p.Exited() {
		t.Fatalf("rkt stop %s stopped pod %s", name, victim)
	}
	st := c.MustRun(t, "status", victim)
	if !strings.Contains(st.Stdout, "state=running") {
		t.Errorf("pod %s after the refused stop:\n%s", victim, st)
	}
	// A full UUID is exact; a pod name cannot be one.
	if st := c.MustRun(t, "status", named); !strings.Contains(st.Stdout, "state=prepared") {
		t.Errorf("status of the named pod by UUID:\n%s", st)
	}
	r = c.Run(t, "--insecure-options=image", "prepare", "--pod-name="+victim, aci)
	wantExit(t, r, 254)
	oneLineError(t, r, "cannot be a UUID")
	c.MustRun(t, "stop", victim)
	p.Wait(t, 20*time.Second)
}
