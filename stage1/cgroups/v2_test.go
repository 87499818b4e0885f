package cgroups

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// mountV2 mounts the cgroup2 hierarchy at a fresh directory. On a hybrid host
// it is the (controller-less) hierarchy also seen at /sys/fs/cgroup/unified;
// controllers that are bound to v1 cannot be used on it.
func mountV2(t *testing.T) string {
	t.Helper()
	requireRoot(t)
	dir := t.TempDir()
	// The options of a cgroup2 mount made in the initial cgroup namespace
	// apply to the whole hierarchy (kernel/cgroup/cgroup.c,
	// apply_cgroup_root_flags): mounting without the host's options would
	// turn off its nsdelegate or memory_recursiveprot.
	if err := unix.Mount("cgroup2", dir, "cgroup2", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, hostV2Options(t)); err != nil {
		t.Skipf("requires a kernel with cgroup2: mount: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	// NewPod below the root enables controllers there; undo that after
	// the test's pods are gone (cleanups run last-in first-out).
	sc := filepath.Join(dir, "cgroup.subtree_control")
	before, err := readFields(sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		now, _ := readFields(sc)
		for _, c := range now {
			if !slices.Contains(before, c) {
				if err := writeFile(sc, "-"+c); err != nil {
					t.Errorf("restore cgroup2 root subtree_control: %v", err)
				}
			}
		}
	})
	return dir
}

// hostV2Options returns the superblock options of the cgroup2 hierarchy
// already mounted, if any, without "rw"/"ro".
func hostV2Options(t *testing.T) string {
	t.Helper()
	mounts, err := readMountinfo("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		if m.fstype != "cgroup2" {
			continue
		}
		var opts []string
		for o := range strings.SplitSeq(m.superOpts, ",") {
			if o != "rw" && o != "ro" && o != "" {
				opts = append(opts, o)
			}
		}
		return strings.Join(opts, ",")
	}
	return ""
}

// enableAtRoot enables controller c in the root cgroup's subtree_control,
// reporting whether the root offers it.
func enableAtRoot(t *testing.T, mnt, c string) bool {
	t.Helper()
	avail, err := readFields(filepath.Join(mnt, "cgroup.controllers"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(avail, c) {
		return false
	}
	sc := filepath.Join(mnt, "cgroup.subtree_control")
	enabled, err := readFields(sc)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(enabled, c) {
		return true
	}
	if err := writeFile(sc, "+"+c); err != nil {
		t.Fatalf("enable %s at the cgroup2 root: %v", c, err)
	}
	return true // mountV2 restores the root's subtree_control
}

func TestV2Pod(t *testing.T) {
	mnt := mountV2(t)
	rootAvail, err := readFields(filepath.Join(mnt, "cgroup.controllers"))
	if err != nil {
		t.Fatal(err)
	}
	if s := readTrim(t, "/proc/self/cgroup"); !strings.Contains(s, "\n0::/\n") && !strings.HasSuffix(s, "\n0::/") && s != "0::/" {
		t.Skipf("requires the test to run in the cgroup2 root cgroup (no internal process rule), /proc/self/cgroup:\n%s", s)
	}
	name := uniqueName(t)
	p, err := NewPod(name, WithUnifiedMount(mnt))
	if err != nil {
		t.Fatalf("NewPod: %v", err)
	}
	removeOnCleanup(t, p)
	if p.Mode() != Unified || p.Path() != "/rkt-"+name {
		t.Fatalf("pod mode %s path %q, want v2 /rkt-%s", p.Mode(), p.Path(), name)
	}
	var wantHave []string
	for _, c := range v2Controllers {
		if slices.Contains(rootAvail, c) {
			wantHave = append(wantHave, c)
		}
	}
	have, missing := p.Controllers()
	if diff := cmp.Diff(wantHave, have); diff != "" {
		t.Errorf("Controllers() mismatch (-want +got):\n%s", diff)
	}
	t.Logf("v2 controllers: have %v, missing %v", have, missing)

	// Limits: check the files where the controller exists, the error where
	// it does not (on a hybrid host: memory, cpu and pids are bound to v1).
	mem, cpu, shares, pids := int64(64<<20), int64(250), uint64(512), int64(100)
	limitFiles := []struct {
		controller string
		l          Limits
		file, want string
	}{
		{"memory", Limits{MemoryBytes: &mem}, "memory.max", "67108864"},
		{"cpu", Limits{CPUMilli: &cpu}, "cpu.max", "25000 100000"},
		{"cpu", Limits{CPUShares: &shares}, "cpu.weight", "20"},
		{"pids", Limits{PidsMax: &pids}, "pids.max", "100"},
	}
	for _, lf := range limitFiles {
		err := p.SetLimits(lf.l)
		if slices.Contains(have, lf.controller) {
			if err != nil {
				t.Errorf("SetLimits(%s): %v", lf.file, err)
			} else if got := readTrim(t, filepath.Join(p.Dirs()[0], lf.file)); got != lf.want {
				t.Errorf("%s = %q, want %q", lf.file, got, lf.want)
			}
			continue
		}
		var ce *ControllerError
		if !errors.Is(err, ErrNoController) || !errors.As(err, &ce) || ce.Controller != lf.controller {
			t.Errorf("SetLimits(%s) without controller %s: %v, want a ControllerError", lf.file, lf.controller, err)
		} else if !strings.Contains(err.Error(), "not offered by parent cgroup") {
			t.Errorf("SetLimits(%s) error does not say why: %v", lf.file, err)
		}
	}

	// The documented cgroup namespace sequence: a process in the pod cgroup
	// itself clones the pod's init with CLONE_NEWCGROUP, then the
	// controllers are enabled, which moves it to the init leaf.
	root := t.TempDir()
	cg := filepath.Join(root, "sys/fs/cgroup")
	var wantSubtree []string
	for _, c := range have {
		wantSubtree = append(wantSubtree, c)
	}
	checks := []helperCheck{
		{Op: "read", Path: "/proc/self/cgroup"},
		{Op: "ls", Path: cg},
		{Op: "write", Path: filepath.Join(cg, "cgroup.max.depth"), Value: "5"},
		{Op: "mkdir", Path: filepath.Join(cg, "probe")},
		{Op: "read", Path: filepath.Join(cg, "cgroup.subtree_control")},
		{Op: "mkdir", Path: filepath.Join(cg, "web", "sub")},
		{Op: "write", Path: filepath.Join(cg, "web", "cgroup.max.depth"), Value: "5"},
	}
	want := []string{"0::/" + InitLeaf, InitLeaf + " web", "EROFS", "EROFS", strings.Join(wantSubtree, " "), "ok", "ok"}
	h1, stdin, out := startHelper(t, helperConfig{Mode: "spawn", Root: root, WaitStdin: true, Checks: checks}, nil)
	if err := p.Enter(h1.Process.Pid); err != nil {
		t.Fatalf("Enter: %v", err)
	}
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("helper said %q, %v; want ready", line, err)
	}
	if err := p.EnableControllers(); err != nil {
		t.Fatalf("EnableControllers: %v", err)
	}
	app, err := p.NewApp("web", Limits{})
	if err != nil {
		t.Fatalf("NewApp: %v", err)
	}
	sleep := exec.Command("sleep", "1000")
	done := startWaited(t, sleep)
	if err := app.AddProc(sleep.Process.Pid); err != nil {
		t.Fatalf("AddProc: %v", err)
	}
	plan, err := json.Marshal(p.Mounts())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stdin.Write(append(plan, '\n')); err != nil {
		t.Fatal(err)
	}
	got := readResults(t, out)
	if err := h1.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	if len(got) > 0 {
		// Keep the cgroup2 line; the namespace shows every hierarchy.
		for l := range strings.SplitSeq(got[0], "\n") {
			if strings.HasPrefix(l, "0::") {
				got[0] = l
			}
		}
	}
	if len(got) > 4 {
		// The kernel lists controllers in its own order, not sorted.
		f := strings.Fields(got[4])
		slices.Sort(f)
		got[4] = strings.Join(f, " ")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("in-namespace view mismatch (-want +got):\n%s", diff)
	}
	if got, want := readTrim(t, "/proc/"+strconv.Itoa(sleep.Process.Pid)+"/cgroup"), "/rkt-"+name+"/web"; !strings.HasSuffix(got, "0::"+want) {
		t.Errorf("sleep's /proc/pid/cgroup = %q, want it to end in 0::%s", got, want)
	}
	if slices.Contains(have, "hugetlb") {
		// The delegated controller reaches the app.
		if m, _ := filepath.Glob(filepath.Join(p.Dirs()[0], "web", "hugetlb.*.max")); len(m) == 0 {
			t.Errorf("app cgroup has no hugetlb.*.max although hugetlb is delegated")
		}
	}
	if _, err := app.OOMKilled(); slices.Contains(have, "memory") != (err == nil) {
		t.Errorf("OOMKilled() error %v with memory delegated = %v", err, slices.Contains(have, "memory"))
	}

	q, err := Open(p.Path(), WithUnifiedMount(mnt))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if diff := cmp.Diff(p.Dirs(), q.Dirs()); diff != "" {
		t.Errorf("Open(Path()) dirs mismatch (-want +got):\n%s", diff)
	}
	if !exists(filepath.Join(p.Dirs()[0], "cgroup.kill")) {
		t.Log("no cgroup.kill (Linux < 5.14): Remove falls back to signals")
	}
	if err := q.Remove(t.Context()); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := waitExit(t, done); !killedBy(err, unix.SIGKILL) {
		t.Errorf("sleep ended with %v, want SIGKILL", err)
	}
	if _, err := os.Stat(p.Dirs()[0]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Remove, stat pod cgroup: %v, want not exist", err)
	}
	if err := q.Remove(t.Context()); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

// TestV2PlanApp checks the order the namespace stage1 uses: apps declared
// with PlanApp before a process enters the pod cgroup (which NewApp would
// make impossible: EBUSY once the pod's subtree_control is set), created with
// their limits by EnableControllers.
func TestV2PlanApp(t *testing.T) {
	mnt := mountV2(t)
	if s := readTrim(t, "/proc/self/cgroup"); s != "0::/" {
		t.Skipf("requires the test to run in the cgroup2 root cgroup (no internal process rule), /proc/self/cgroup:\n%s", s)
	}
	p, err := NewPod(uniqueName(t), WithUnifiedMount(mnt))
	if err != nil {
		t.Fatalf("NewPod: %v", err)
	}
	removeOnCleanup(t, p)
	if have, _ := p.Controllers(); !slices.Contains(have, "memory") {
		t.Skipf("requires the memory controller on cgroup2 (have %v); run on a cgroup v2 host or in the VM of tests/vm_cgroupv2_test.go", have)
	}
	mem := int64(64 << 20)
	app, err := p.PlanApp("web", Limits{MemoryBytes: &mem})
	if err != nil {
		t.Fatalf("PlanApp: %v", err)
	}
	if _, err := os.Stat(filepath.Join(p.Dirs()[0], "web")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("PlanApp created the app cgroup before EnableControllers: %v", err)
	}
	var binds []string
	for _, m := range p.Mounts() {
		if m.Flags&unix.MS_BIND != 0 && m.Flags&unix.MS_REMOUNT == 0 {
			binds = append(binds, m.Source)
		}
	}
	if diff := cmp.Diff([]string{"/sys/fs/cgroup/" + InitLeaf, "/sys/fs/cgroup/web"}, binds); diff != "" {
		t.Errorf("Mounts() binds mismatch (-want +got):\n%s", diff)
	}
	sleep := exec.Command("sleep", "1000")
	startWaited(t, sleep)
	if err := p.Enter(sleep.Process.Pid); err != nil {
		t.Fatalf("Enter after PlanApp: %v", err)
	}
	if err := p.EnableControllers(); err != nil {
		t.Fatalf("EnableControllers: %v", err)
	}
	if got := readTrim(t, filepath.Join(p.Dirs()[0], "web", "memory.max")); got != "67108864" {
		t.Errorf("web memory.max = %s, want 67108864", got)
	}
	if got := readTrim(t, "/proc/"+strconv.Itoa(sleep.Process.Pid)+"/cgroup"); got != "0::"+p.Path()+"/"+InitLeaf {
		t.Errorf("entered process in %q, want it moved to %s", got, InitLeaf)
	}
	if err := app.AddProc(sleep.Process.Pid); err != nil {
		t.Errorf("AddProc: %v", err)
	}
	// Once the controllers are enabled PlanApp is NewApp.
	if _, err := p.PlanApp("late", Limits{MemoryBytes: &mem}); err != nil {
		t.Fatalf("PlanApp after EnableControllers: %v", err)
	}
	if got := readTrim(t, filepath.Join(p.Dirs()[0], "late", "memory.max")); got != "67108864" {
		t.Errorf("late memory.max = %s, want 67108864", got)
	}
}

// TestV2DelegationFailure runs NewPod below a non-root cgroup that holds a
// process: the kernel refuses to enable controllers there (EBUSY), and the pod
// reports that.
func TestV2DelegationFailure(t *testing.T) {
	mnt := mountV2(t)
	if !enableAtRoot(t, mnt, "hugetlb") {
		t.Skip("requires a controller on the cgroup2 hierarchy (hugetlb is used); this host offers none")
	}
	parent := filepath.Join(mnt, uniqueName(t))
	if err := os.Mkdir(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rmdirTree(t.Context(), parent); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	sleep := exec.Command("sleep", "1000")
	done := startWaited(t, sleep)
	if err := writeFile(filepath.Join(parent, "cgroup.procs"), strconv.Itoa(sleep.Process.Pid)); err != nil {
		t.Fatal(err)
	}
	p, err := NewPod(uniqueName(t), WithUnifiedMount(mnt), WithParentOf(sleep.Process.Pid))
	if err != nil {
		t.Fatalf("NewPod: %v", err)
	}
	removeOnCleanup(t, p)
	if got, want := filepath.Dir(p.Dirs()[0]), parent; got != want {
		t.Errorf("pod created in %s, want below %s", got, want)
	}
	have, missing := p.Controllers()
	if len(have) != 0 {
		t.Errorf("Controllers() have %v, want none", have)
	}
	if err := missing["hugetlb"]; !errors.Is(err, unix.EBUSY) || !strings.Contains(err.Error(), "holds processes") {
		t.Errorf("missing[hugetlb] = %v, want EBUSY explained", err)
	}
	if err := p.Remove(t.Context()); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	// The parent's process is not the pod's: still alive.
	select {
	case <-done.done:
		t.Errorf("sleep outside the pod died: %v", done.err)
	default:
	}
}

// TestV2RemoveKillsForks checks removal of a pod whose processes keep forking.
func TestV2RemoveKillsForks(t *testing.T) {
	mnt := mountV2(t)
	p, err := NewPod(uniqueName(t), WithUnifiedMount(mnt))
	if err != nil {
		t.Fatalf("NewPod: %v", err)
	}
	removeOnCleanup(t, p)
	app, err := p.NewApp("forker", Limits{})
	if err != nil {
		t.Fatalf("NewApp: %v", err)
	}
	cmd := exec.Command("sh", "-c", "read x; while :; do sleep 1000 & sleep 0.01; done")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	done := startWaited(t, cmd)
	if err := app.AddProc(cmd.Process.Pid); err != nil {
		t.Fatalf("AddProc: %v", err)
	}
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		pids, err := readPids(filepath.Join(p.Dirs()[0], "forker", "cgroup.procs"))
		if err != nil {
			t.Fatal(err)
		}
		if len(pids) >= 5 {
			break
		}
		if i > 1000 {
			t.Fatalf("only %d processes in the app cgroup", len(pids))
		}
		waitABit()
	}
	if err := p.Remove(t.Context()); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := waitExit(t, done); !killedBy(err, unix.SIGKILL) {
		t.Errorf("shell ended with %v, want SIGKILL", err)
	}
	if _, err := os.Stat(p.Dirs()[0]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Remove, stat pod cgroup: %v, want not exist", err)
	}
}
