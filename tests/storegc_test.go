package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// TestTreeGCSparesHeldTree: `rkt image render` holds the rendered tree while
// it copies it; an `rkt image gc` that runs meanwhile (with a grace period
// that keeps the image) must not remove the tree under it (issue 17).
func TestTreeGCSparesHeldTree(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := testutil.NewACI(t, "rkt-ng.test/held", testutil.WithoutApp(), testutil.WithFile("/held.txt", "held", 0o644))
	c.MustRun(t, "--insecure-options=image", "fetch", aci)
	pc, pause := c.PausePoint(t, "tree-held")
	out := filepath.Join(t.TempDir(), "out")
	render := pc.Start(t, "image", "render", "--rootfs-only", "rkt-ng.test/held", out)
	pause.Wait(t, 2*time.Minute)
	c.MustRun(t, "image", "gc", "--grace-period=24h")
	pause.Release(t)
	if res := render.Wait(t, 2*time.Minute); res.ExitCode != 0 {
		t.Fatalf("image render beside image gc: %s", res)
	}
	if b, err := os.ReadFile(filepath.Join(out, "held.txt")); err != nil || string(b) != "held" {
		t.Errorf("rendered held.txt = %q, %v; want \"held\"", b, err)
	}
	// Once nothing holds it, the tree is collected.
	c.MustRun(t, "image", "gc", "--grace-period=24h")
	if trees := globAll(t, c, "cas/tree/*"); len(trees) != 0 {
		t.Errorf("image gc left tree store entries: %v", trees)
	}
}

// TestTreeGCRacingPrepare: tree gc lists the trees that no pod records, and
// a pod is prepared on one of them before gc gets to remove it. gc must see
// the new pod's record and keep the tree, so that the prepared pod runs
// (issue 17).
func TestTreeGCRacingPrepare(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/gcrace")
	c.MustRun(t, "--insecure-options=image", "fetch", aci)
	// Render the app's tree with no pod recording it.
	c.MustRun(t, "image", "render", "--rootfs-only", "rkt-ng.test/gcrace", filepath.Join(t.TempDir(), "r"))
	if trees := globAll(t, c, "cas/tree/*"); len(trees) != 1 {
		t.Fatalf("tree store after image render: %v, want one tree", trees)
	}
	gcCtx, pause := c.PausePoint(t, "tree-gc-candidates")
	gc := gcCtx.Start(t, "image", "gc", "--grace-period=24h")
	pause.Wait(t, 2*time.Minute)
	res := c.MustRun(t, "--insecure-options=image", "prepare", "--quiet", aci, "--", "--print-msg=prepared ran")
	uuid := strings.TrimSpace(res.Stdout)
	pause.Release(t)
	if res := gc.Wait(t, 2*time.Minute); res.ExitCode != 0 {
		t.Fatalf("image gc: %s", res)
	}
	run := c.Run(t, "run-prepared", "--net=host", uuid)
	if run.ExitCode != 0 || !strings.Contains(run.Stdout, "prepared ran") {
		t.Errorf("run-prepared after a racing tree gc: %s", run)
	}
}
