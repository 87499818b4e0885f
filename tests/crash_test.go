package tests

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// dataSnapshot lists the files and directories under the data dir, as paths
// relative to it. Lock files are left out: they are empty, created on
// demand, and hold no state once their holder is gone; so is the remote
// name cache.
func dataSnapshot(t *testing.T, c *testutil.Ctx) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(c.DataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(c.DataDir, p)
		// cas/remote caches what a remote name resolved to, kept by design
		// (it only saves a round trip and is checked against the store).
		if rel == filepath.Join("cas", "locks") || rel == filepath.Join("cas", "remote") {
			return fs.SkipDir
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// diffLists returns what is only in a and only in b.
func diffLists(a, b []string) (onlyA, onlyB []string) {
	for _, x := range a {
		if !slices.Contains(b, x) {
			onlyA = append(onlyA, x)
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			onlyB = append(onlyB, x)
		}
	}
	return onlyA, onlyB
}

// checkNoCgroupLeft fails the test if a cgroup of one of the pods is left.
func checkNoCgroupLeft(t *testing.T, uuids []string) {
	t.Helper()
	for _, u := range uuids {
		for _, pattern := range []string{"/sys/fs/cgroup/rkt-", "/sys/fs/cgroup/*/rkt-", "/sys/fs/cgroup/*/*/rkt-", "/sys/fs/cgroup/*/*/*/rkt-", "/sys/fs/cgroup/*/*/*/*/rkt-"} {
			m, _ := filepath.Glob(pattern + u + "*")
			for _, d := range m {
				t.Errorf("cgroup left: %s", d)
			}
		}
	}
}

// checkNoMountUnder fails the test if anything is mounted under dir.
func checkNoMountUnder(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			t.Errorf("mount left: %s", f[4])
		}
	}
}

// TestCrashAtEachStage SIGKILLs rkt at each named stage of its work, reached
// through a pause point (internal/pausepoint) rather than a sleep, then runs
// `rkt gc --grace-period=0s --expire-prepared=0s` and `rkt image gc
// --grace-period=24h` and checks that the data dir holds exactly what it
// held before (files, mounts), that no netns, link, lease, iptables rule or
// cgroup of the killed pod is left, and that the same work then succeeds.
// docs/reliability.md lists the cases.
func TestCrashAtEachStage(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "ip")
	testutil.RequireCommand(t, "iptables")
	// checkNoNetLeft looks for the killed pods' own rules; a whole-table
	// comparison would also see the pods of other tests on the host.
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/crash")
	fresh := inspectACI(t, "rkt-ng.test/crash-fetch", testutil.WithFile("/fresh", "fresh", 0o644))
	reg := testutil.NewRegistry(t)
	reg.Push(t, "test/crash:1", ociImg(t, v1.Config{Entrypoint: []string{"/inspect"}}, inspectLayer(t),
		ociLayer(t, false, tarEnt{name: "oci-crash", body: "x"})))
	ociRef := reg.Ref("test/crash:1")

	c.MustRun(t, "--insecure-options=image", "fetch", aci)
	// The OCI image's ID, for `image rm`; it is not part of the baseline.
	ociID := fetchOCI(t, c, ociRef)
	c.MustRun(t, "image", "rm", ociID)
	wantExit(t, runInsecure(t, c, "--net=default", aci, "--", "--print-msg=baseline"), 0)
	c.MustRun(t, "gc", "--grace-period=0s")
	base := dataSnapshot(t, c)

	run := []string{"--insecure-options=image", "run", "--net=default", aci, "--", "--print-msg=RUNNING", "--sleep=1h"}
	for _, tc := range []struct {
		name  string
		point string   // pause point; "" means "once the app printed RUNNING"
		args  []string // the rkt command to kill
		// before runs first (a pod for gc to collect); after checks the
		// same work succeeds and undoes it, so the next case starts from base.
		before, after func(t *testing.T)
		// reach, when set, drives the started command to the pause point
		// (for `rkt stop`, which a pause point in the pod's stage1 waits for).
		reach func(t *testing.T, p *testutil.Process)
	}{
		{name: "fetch: download written", point: "aci-downloaded", args: []string{"--insecure-options=image", "fetch", fresh},
			after: func(t *testing.T) { refetchAndRemove(t, c, fresh, "--read-file=/fresh") }},
		{name: "fetch: blob stored, no row", point: "aci-blob-stored", args: []string{"--insecure-options=image", "fetch", fresh},
			after: func(t *testing.T) { refetchAndRemove(t, c, fresh, "--read-file=/fresh") }},
		{name: "fetch OCI: layers stored, no row", point: "oci-layers-stored", args: []string{"--insecure-options=image", "fetch", ociRef},
			after: func(t *testing.T) { refetchAndRemove(t, c, ociRef, "--read-file=/oci-crash") }},
		{name: "run: images fetched and held, no pod yet", point: "images-resolved", args: run},
		{name: "render: tree written, not renamed", point: "tree-rendering", args: run},
		{name: "prepare: pod filled, overlays mounted", point: "pod-filled", args: run},
		{name: "run: before stage1 exec", point: "stage1-exec", args: run},
		{name: "stage1: netns created, no network", point: "stage1-netns", args: run},
		{name: "stage1: CNI ADD done", point: "stage1-net-added", args: run},
		{name: "stage1: cgroups created", point: "stage1-cgroups", args: run},
		{name: "stage1: pod mounts made", point: "stage1-mounted", args: run},
		{name: "run: app running", args: run},
		{name: "stop: pod exited, cleanup half done", point: "stage1-cleanup", args: run,
			reach: func(t *testing.T, p *testutil.Process) {
				p.WaitOutput(t, "RUNNING", 60*time.Second)
				pods := podDirs(t, c)
				if len(pods) != 1 {
					t.Fatalf("pods: %v", pods)
				}
				c.MustRun(t, "stop", filepath.Base(pods[0]))
			}},
		{name: "gc: sweeping a pod", point: "pod-sweep", args: []string{"gc", "--grace-period=0s"},
			before: func(t *testing.T) {
				wantExit(t, runInsecure(t, c, "--net=default", aci, "--", "--print-msg=to collect"), 0)
			}},
		{name: "image gc: trees listed", point: "tree-gc-candidates", args: []string{"image", "gc", "--grace-period=24h"},
			before: func(t *testing.T) {
				c.MustRun(t, "image", "render", "--rootfs-only", "rkt-ng.test/crash", filepath.Join(t.TempDir(), "r"))
			}},
		{name: "image rm: layers listed", point: "layer-gc-candidates", args: []string{"image", "rm", ociID},
			before: func(t *testing.T) { fetchOCI(t, c, ociRef) },
			after:  func(t *testing.T) { refetchAndRemove(t, c, ociRef, "--read-file=/oci-crash") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before(t)
			}
			var p *testutil.Process
			if tc.point == "" {
				p = c.Start(t, tc.args...)
				p.WaitOutput(t, "RUNNING", 60*time.Second)
			} else {
				pc, pause := c.PausePoint(t, tc.point)
				p = pc.Start(t, tc.args...)
				if tc.reach != nil {
					tc.reach(t, p)
				}
				pause.Wait(t, 2*time.Minute)
			}
			if err := p.Signal(os.Kill); err != nil {
				t.Fatal(err)
			}
			p.Wait(t, 30*time.Second)
			uuids, hostIfs := podNetRecords(t, c)

			c.MustRun(t, "gc", "--grace-period=0s", "--expire-prepared=0s")
			c.MustRun(t, "image", "gc", "--grace-period=24h")
			if left := podDirs(t, c); len(left) != 0 {
				t.Errorf("gc left pods %v", left)
			}
			checkNoMountUnder(t, c.DataDir)
			checkNoNetLeft(t, c, uuids, hostIfs)
			checkNoCgroupLeft(t, uuids)
			if extra, missing := diffLists(dataSnapshot(t, c), base); len(extra) > 0 || len(missing) > 0 {
				t.Errorf("data dir after the crash and gc differs from before:\nextra: %v\nmissing: %v", extra, missing)
			}

			// The same work succeeds afterwards.
			if tc.after != nil {
				tc.after(t)
			} else {
				r := runInsecure(t, c, "--net=default", aci, "--", "--print-msg=again")
				wantExit(t, r, 0)
				if !strings.Contains(r.Stdout, "again") {
					t.Errorf("run after the crash: %s", r)
				}
			}
			c.MustRun(t, "gc", "--grace-period=0s")
			if extra, missing := diffLists(dataSnapshot(t, c), base); len(extra) > 0 || len(missing) > 0 {
				t.Errorf("data dir after the rerun and gc differs from before:\nextra: %v\nmissing: %v", extra, missing)
			}
		})
	}
}

// refetchAndRemove fetches ref, runs it with inspect's args, and removes
// it from the store again.
func refetchAndRemove(t *testing.T, c *testutil.Ctx, ref string, args ...string) {
	t.Helper()
	id := strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", ref).Stdout)
	wantExit(t, runInsecure(t, c, append([]string{"--net=default", id, "--"}, args...)...), 0)
	c.MustRun(t, "gc", "--grace-period=0s")
	c.MustRun(t, "image", "rm", id)
}
