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

// TestImageGCBesideRunFetch: `rkt image gc --grace-period=0s` while a
// `rkt run` has fetched its image and no pod records it yet keeps the
// image (prepare holds it until the pod records it); the run goes on, and
// once the pod is gone the image is collected.
func TestImageGCBesideRunFetch(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/fetchrace")
	runCtx, pause := c.PausePoint(t, "images-resolved")
	run := runCtx.Start(t, "--insecure-options=image", "run", "--net=host", aci, "--", "--print-msg=fetched ran")
	pause.Wait(t, 2*time.Minute)
	c.MustRun(t, "image", "gc", "--grace-period=0s")
	pause.Release(t)
	if res := run.Wait(t, 2*time.Minute); res.ExitCode != 0 || !strings.Contains(res.Stdout, "fetched ran") {
		t.Fatalf("run beside image gc: %s", res)
	}
	c.MustRun(t, "gc", "--grace-period=0s")
	c.MustRun(t, "image", "gc", "--grace-period=0s")
	if l := c.MustRun(t, "image", "list"); strings.Contains(l.Stdout, "rkt-ng.test/fetchrace") {
		t.Errorf("image gc kept the image once no pod used it:\n%s", l.Stdout)
	}
}

// TestImageGCBesideAppAdd: the same for `rkt app add` to a sandbox, which
// holds the image from its fetch and the tree from its render until the
// pod records them.
func TestImageGCBesideAppAdd(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/addrace")
	sb, uuid := startSandbox(t, c, "--net=none")
	addCtx, pause := c.PausePoint(t, "images-resolved")
	add := addCtx.Start(t, "--insecure-options=image", "app", "add", uuid, aci, "--name=late", "--", "--print-msg=added ran")
	pause.Wait(t, 2*time.Minute)
	c.MustRun(t, "image", "gc", "--grace-period=0s")
	pause.Release(t)
	if res := add.Wait(t, 2*time.Minute); res.ExitCode != 0 {
		t.Fatalf("app add beside image gc: %s", res)
	}
	// The recorded image and tree stay through another gc.
	c.MustRun(t, "image", "gc", "--grace-period=0s")
	c.MustRun(t, "app", "start", uuid, "--app=late")
	sb.WaitOutput(t, "added ran", time.Minute)
	c.MustRun(t, "stop", uuid)
	sb.Wait(t, time.Minute)
}
