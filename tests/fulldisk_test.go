package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// freeBytes is the space left on the filesystem of dir.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// TestFullDisk puts --dir on a small tmpfs: a fetch that does not fit and a
// render that does not fit each fail with one line naming the cause and
// leave the data dir as it was; pods still run and gc still works on a
// full disk (issue 17).
func TestFullDisk(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	// The stage1 image (~50 MB) is stored as a blob and a rendered tree.
	if err := unix.Mount("tmpfs", c.DataDir, "tmpfs", 0, "size=160m,mode=0700"); err != nil {
		t.Skipf("requires a tmpfs mount: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(c.DataDir, unix.MNT_DETACH) })
	aci := inspectACI(t, "rkt-ng.test/small")
	smallID := strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", aci).Stdout)
	wantExit(t, runInsecure(t, c, "--net=host", aci, "--", "--print-msg=fits"), 0)
	c.MustRun(t, "gc", "--grace-period=0s")
	base := dataSnapshot(t, c)
	free := freeBytes(t, c.DataDir)
	t.Logf("%d MiB free after the stage1 image", free>>20)

	sameAsBase := func(t *testing.T, when string) {
		t.Helper()
		if extra, missing := diffLists(dataSnapshot(t, c), base); len(extra) > 0 || len(missing) > 0 {
			t.Errorf("%s: data dir differs from before:\nextra: %v\nmissing: %v", when, extra, missing)
		}
	}

	// 1. A fetch larger than the free space.
	huge := testutil.NewACI(t, "rkt-ng.test/huge", testutil.WithoutApp(),
		testutil.WithFile("/huge", strings.Repeat("h", int(free+(4<<20))), 0o644))
	res := c.Run(t, "--insecure-options=image", "fetch", huge)
	wantExit(t, res, 254)
	oneLineError(t, res, "no space left on device")
	sameAsBase(t, "failed fetch")

	// 2. An image that fits as a blob, but not rendered beside it.
	big := inspectACI(t, "rkt-ng.test/big", testutil.WithFile("/big", strings.Repeat("b", int(free*6/10)), 0o644))
	id := strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", big).Stdout)
	res = runInsecure(t, c, "--net=host", id, "--", "--print-msg=MUST-NOT-RUN")
	wantExit(t, res, 254)
	oneLineError(t, res, "no space left on device")
	c.MustRun(t, "gc", "--grace-period=0s")
	c.MustRun(t, "image", "rm", id)
	sameAsBase(t, "failed render")

	// 3. A full disk: a pod whose trees are rendered (by a first pod) still
	// runs, and gc still collects both.
	wantExit(t, runInsecure(t, c, "--net=host", smallID, "--", "--print-msg=renders"), 0)
	filler := filepath.Join(c.DataDir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	// Leave the few KiB the pod directory itself needs.
	if err := os.Truncate(filler, max(0, fileSize(t, filler)-(2<<20))); err != nil {
		t.Fatal(err)
	}
	// By ID: a path would be imported again, into cas/tmp.
	wantExit(t, runInsecure(t, c, "--net=host", smallID, "--", "--print-msg=still runs"), 0)
	if err := os.Truncate(filler, fileSize(t, filler)+(2<<20)-(64<<10)); err != nil {
		t.Fatal(err)
	}
	c.MustRun(t, "gc", "--grace-period=0s")
	if left := podDirs(t, c); len(left) != 0 {
		t.Errorf("gc on a full disk left pods %v", left)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	sameAsBase(t, "full disk")
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestLogFillsDisk: a pod whose output fills the disk under --dir keeps
// running; its log is cut at one point, said in one line on the pod's
// stderr, and `rkt logs`, `rkt stop` and gc still work.
func TestLogFillsDisk(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	if err := unix.Mount("tmpfs", c.DataDir, "tmpfs", 0, "size=160m,mode=0700"); err != nil {
		t.Skipf("requires a tmpfs mount: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(c.DataDir, unix.MNT_DETACH) })
	aci := inspectACI(t, "rkt-ng.test/flood")
	id := strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", aci).Stdout)
	wantExit(t, runInsecure(t, c, "--net=host", id, "--", "--print-msg=baseline"), 0)
	c.MustRun(t, "gc", "--grace-period=0s")
	base := dataSnapshot(t, c)
	// A first pod renders the trees (gc removed them), which then take no
	// more space.
	wantExit(t, runInsecure(t, c, "--net=host", id, "--", "--print-msg=renders"), 0)

	// Leave 4 MiB; the app writes 8 MiB.
	filler := filepath.Join(c.DataDir, "filler")
	if err := os.WriteFile(filler, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fallocate(mustOpen(t, filler), 0, 0, freeBytes(t, c.DataDir)-(4<<20)); err != nil {
		t.Fatalf("fallocate: %v", err)
	}
	before := podDirs(t, c)
	p := c.Start(t, "--insecure-options=image", "run", "--net=host", id, "--", "--flood=8M", "--sleep=1h")
	p.WaitOutput(t, "FLOODED", 2*time.Minute)
	p.WaitOutput(t, "log cut at byte", 30*time.Second)
	if n := strings.Count(p.Stderr(), "log cut"); n != 1 || !strings.Contains(p.Stderr(), "no space left on device") {
		t.Errorf("want one line saying where the log was cut and why, got %d:\n%s", n, p.Stderr())
	}
	pods, _ := diffLists(podDirs(t, c), before)
	if len(pods) != 1 {
		t.Fatalf("new pods: %v", pods)
	}
	uuid := filepath.Base(pods[0])
	// Still running after its log hit the full disk.
	time.Sleep(500 * time.Millisecond)
	if p.Exited() {
		t.Fatalf("the pod exited after its log filled the disk: %s", p.Wait(t, time.Second))
	}
	if st := c.MustRun(t, "status", uuid); !strings.Contains(st.Stdout, "state=running") {
		t.Errorf("status of the flooding pod:\n%s", st.Stdout)
	}
	logs := c.MustRun(t, "logs", uuid)
	if !strings.HasPrefix(logs.Stdout, strings.Repeat("x", 1023)+"\n") || len(logs.Stdout) >= 8<<20 {
		t.Errorf("rkt logs of the cut log: %d bytes, starting %.40q", len(logs.Stdout), logs.Stdout)
	}
	c.MustRun(t, "stop", uuid)
	p.Wait(t, time.Minute)
	c.MustRun(t, "gc", "--grace-period=0s")
	if left := podDirs(t, c); len(left) != 0 {
		t.Errorf("gc on a full disk left pods %v", left)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if extra, missing := diffLists(dataSnapshot(t, c), base); len(extra) > 0 || len(missing) > 0 {
		t.Errorf("data dir differs from before:\nextra: %v\nmissing: %v", extra, missing)
	}
}

// mustOpen opens p for writing; the test closes it at its end.
func mustOpen(t *testing.T, p string) int {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return int(f.Fd())
}
