package cgroups

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func requireLegacy(t *testing.T) *Layout {
	t.Helper()
	requireRoot(t)
	l, err := Detect()
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	if l.Mode != Legacy {
		t.Skipf("requires a cgroup v1 (or hybrid) host, this one is %s", l.Mode)
	}
	return l
}

func requireV1Controllers(t *testing.T, l *Layout, cs ...string) {
	t.Helper()
	for _, c := range cs {
		if !slices.ContainsFunc(l.Hierarchies, func(h Hierarchy) bool { return h.has(c) }) {
			t.Skipf("requires the v1 %s controller to be mounted", c)
		}
	}
}

func v1Dir(t *testing.T, p *Pod, controller string) string {
	t.Helper()
	d, ok := v1{p}.dir(controller)
	if !ok {
		t.Fatalf("pod has no %s hierarchy", controller)
	}
	return d.dir
}

func TestV1PodLifecycle(t *testing.T) {
	l := requireLegacy(t)
	requireV1Controllers(t, l, "memory", "cpu", "pids")
	name := uniqueName(t)
	p, err := NewPod(name)
	if err != nil {
		t.Fatalf("NewPod: %v", err)
	}
	removeOnCleanup(t, p)

	mem, cpu, shares, pids := int64(64<<20), int64(250), uint64(512), int64(100)
	if err := p.SetLimits(Limits{MemoryBytes: &mem, CPUMilli: &cpu, CPUShares: &shares, PidsMax: &pids}); err != nil {
		t.Fatalf("SetLimits: %v", err)
	}
	got := map[string]string{
		"memory.limit_in_bytes": readTrim(t, filepath.Join(v1Dir(t, p, "memory"), "memory.limit_in_bytes")),
		"cpu.cfs_quota_us":      readTrim(t, filepath.Join(v1Dir(t, p, "cpu"), "cpu.cfs_quota_us")),
		"cpu.cfs_period_us":     readTrim(t, filepath.Join(v1Dir(t, p, "cpu"), "cpu.cfs_period_us")),
		"cpu.shares":            readTrim(t, filepath.Join(v1Dir(t, p, "cpu"), "cpu.shares")),
		"pids.max":              readTrim(t, filepath.Join(v1Dir(t, p, "pids"), "pids.max")),
	}
	want := map[string]string{
		"memory.limit_in_bytes": "67108864",
		"cpu.cfs_quota_us":      "25000",
		"cpu.cfs_period_us":     "100000",
		"cpu.shares":            "512",
		"pids.max":              "100",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pod limit files mismatch (-want +got):\n%s", diff)
	}

	appMem := int64(32 << 20)
	app, err := p.NewApp("web", Limits{MemoryBytes: &appMem})
	if err != nil {
		t.Fatalf("NewApp: %v", err)
	}
	if got := readTrim(t, filepath.Join(v1Dir(t, p, "memory"), "web", "memory.limit_in_bytes")); got != "33554432" {
		t.Errorf("app memory.limit_in_bytes = %s, want 33554432", got)
	}

	sleep := exec.Command("sleep", "1000")
	done := startWaited(t, sleep)
	if err := app.AddProc(sleep.Process.Pid); err != nil {
		t.Fatalf("AddProc: %v", err)
	}
	self, err := readProcCgroups(0)
	if err != nil {
		t.Fatal(err)
	}
	inChild, err := readProcCgroups(sleep.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range l.Hierarchies {
		want := path.Join(self[h.key()], "rkt-"+name, "web")
		if !usedV1(h) {
			want = self[h.key()] // pods make no cgroup in hierarchies they do not use
		}
		if got := inChild[h.key()]; got != want {
			t.Errorf("child cgroup in hierarchy %s = %q, want %q", h.key(), got, want)
		}
	}

	// gc's view: reopen from the recorded path.
	q, err := Open(p.Path())
	if err != nil {
		t.Fatalf("Open(%q): %v", p.Path(), err)
	}
	if diff := cmp.Diff(p.Dirs(), q.Dirs()); diff != "" {
		t.Errorf("Open(Path()) dirs mismatch (-want +got):\n%s", diff)
	}
	if err := q.Remove(t.Context()); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := waitExit(t, done); !killedBy(err, unix.SIGKILL) {
		t.Errorf("sleep ended with %v, want SIGKILL", err)
	}
	for _, d := range p.Dirs() {
		if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after Remove, stat %s: %v, want not exist", d, err)
		}
	}
	if err := p.Remove(t.Context()); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestV1OOM(t *testing.T) {
	l := requireLegacy(t)
	requireV1Controllers(t, l, "memory")
	p, err := NewPod(uniqueName(t))
	if err != nil {
		t.Fatalf("NewPod: %v", err)
	}
	removeOnCleanup(t, p)
	limit := int64(32 << 20)
	hog, err := p.NewApp("hog", Limits{MemoryBytes: &limit})
	if err != nil {
		t.Fatalf("NewApp: %v", err)
	}
	calm, err := p.NewApp("calm", Limits{MemoryBytes: &limit})
	if err != nil {
		t.Fatalf("NewApp: %v", err)
	}
	// tail keeps its whole newline-free input in memory. The shell waits for
	// a line on stdin so that it is in the cgroup before anything forks.
	cmd := exec.Command("sh", "-c", "read x; head -c 200M /dev/zero | tail")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	done := startWaited(t, cmd)
	if err := hog.AddProc(cmd.Process.Pid); err != nil {
		t.Fatalf("AddProc: %v", err)
	}
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	if err := waitExit(t, done); err == nil {
		t.Errorf("memory hog exited 0, want a failure")
	}
	if oom, err := hog.OOMKilled(); err != nil || !oom {
		t.Errorf("hog OOMKilled() = %v, %v; want true, nil", oom, err)
	}
	if oom, err := calm.OOMKilled(); err != nil || oom {
		t.Errorf("calm OOMKilled() = %v, %v; want false, nil", oom, err)
	}
}

func TestV1Mounts(t *testing.T) {
	requireLegacy(t)
	p, err := NewPod(uniqueName(t))
	if err != nil {
		t.Fatalf("NewPod: %v", err)
	}
	removeOnCleanup(t, p)
	root := t.TempDir()
	var checks []helperCheck
	var want []string
	cg := filepath.Join(root, "sys/fs/cgroup")
	checks = append(checks, helperCheck{Op: "mkdir", Path: filepath.Join(cg, "probe")})
	want = append(want, "EROFS")
	for _, d := range p.dirs {
		base := filepath.Join(cg, d.h.dirName())
		checks = append(checks,
			helperCheck{Op: "mkdir", Path: filepath.Join(base, "rkt-probe")},
			helperCheck{Op: "mkdir", Path: filepath.Join(base, d.rel, "probe")},
			helperCheck{Op: "mkdir", Path: filepath.Join(base, d.rel, InitLeaf, "probe")},
			helperCheck{Op: "ls", Path: filepath.Join(base, d.rel)},
		)
		want = append(want, "EROFS", "EROFS", "ok", InitLeaf)
		if d.h.has("memory") {
			checks = append(checks, helperCheck{Op: "write", Path: filepath.Join(base, d.rel, "memory.limit_in_bytes"), Value: "1"})
			want = append(want, "EROFS")
		}
	}
	cmd, _, out := startHelper(t, helperConfig{Mode: "apply", Root: root, Mounts: p.Mounts(), Checks: checks},
		&unix.SysProcAttr{Cloneflags: unix.CLONE_NEWNS})
	got := readResults(t, out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("in-pod cgroup view mismatch (-want +got):\n%s\nchecks: %+v", diff, checks)
	}
}

func TestV1RemoveKillsForks(t *testing.T) {
	requireLegacy(t)
	p, err := NewPod(uniqueName(t))
	if err != nil {
		t.Fatalf("NewPod: %v", err)
	}
	removeOnCleanup(t, p)
	// A shell that keeps forking children in the init leaf.
	cmd := exec.Command("sh", "-c", "read x; while :; do sleep 1000 & sleep 0.01; done")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	done := startWaited(t, cmd)
	if err := p.Init().AddProc(cmd.Process.Pid); err != nil {
		t.Fatalf("AddProc: %v", err)
	}
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	// Let it fork a few.
	for i := 0; ; i++ {
		pids, err := readPids(filepath.Join(p.dirs[0].dir, InitLeaf, "cgroup.procs"))
		if err != nil {
			t.Fatal(err)
		}
		if len(pids) >= 5 {
			break
		}
		if i > 1000 {
			t.Fatalf("only %d processes in the init cgroup", len(pids))
		}
		waitABit()
	}
	if err := p.Remove(t.Context()); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	waitExit(t, done)
	for _, d := range p.Dirs() {
		if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after Remove, stat %s: %v, want not exist", d, err)
		}
	}
}

func TestRemoveRefusesOwnCgroup(t *testing.T) {
	requireRoot(t)
	p, err := NewPod(uniqueName(t))
	if err != nil {
		t.Fatalf("NewPod: %v", err)
	}
	removeOnCleanup(t, p)
	// Pretend our own cgroup is the pod: Remove must not kill the caller.
	self, err := readProcCgroups(0)
	if err != nil {
		t.Fatal(err)
	}
	fake := &Pod{log: p.log, mode: p.mode}
	for _, d := range p.dirs {
		d.rel = self[d.h.key()]
		fake.dirs = append(fake.dirs, d)
	}
	if err := fake.Remove(t.Context()); !errors.Is(err, ErrInsidePod) {
		t.Fatalf("Remove of own cgroup: %v, want ErrInsidePod", err)
	}
}
