package tests

import (
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rkt-ng/rkt/internal/vm"
	"github.com/rkt-ng/rkt/tests/testutil"
	vmtest "github.com/rkt-ng/rkt/tests/vm"
)

// vmTimeout bounds the whole machine with KVM: build of the initramfs
// excluded, boot, every step and power-off included (about 10s). Under
// qemu's emulator (tcg) the same run takes about 25s on an idle 2-CPU host
// and several times that on a loaded one, so it gets tcgTimeout.
const (
	vmTimeout  = 120 * time.Second
	tcgTimeout = 300 * time.Second
)

// TestCgroupV2InVM runs bin/rkt on a pure cgroup v2 host: a Linux kernel
// booted under qemu with KVM, with the v1 controllers disabled
// (cgroup_no_v1=all) and cgroup2 mounted at /sys/fs/cgroup with nsdelegate,
// as systemd does. The host running the tests may be cgroup v1, so this is
// where the v2 paths of stage1/cgroups run for real: memory.max, cpu.max,
// cpu.weight, memory.events OOM accounting, the pod's cgroup namespace,
// controller delegation and removal by rkt and by gc.
func TestCgroupV2InVM(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a virtual machine; run without -short")
	}
	qemu, err := vm.FindQEMU()
	if err != nil {
		t.Skipf("requires qemu (%v); run: apt-get install --no-install-recommends qemu-system-x86 (or sh scripts/install-deps.sh)", err)
	}
	kernel, err := vm.FindKernel()
	if errors.Is(err, vm.ErrNoKernel) {
		t.Skipf("requires a kernel image (%v); run: apt-get install linux-image-cloud-amd64 (or sh scripts/install-deps.sh), or set %s", err, vm.KernelEnv)
	}
	if err != nil {
		t.Fatal(err)
	}
	accel, why, err := vm.ChooseAccel(kernel)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel %s, accelerator %s (%s)", kernel.Image, accel, why)

	dir := t.TempDir()
	initBin := buildStatic(t, dir, "build", "-o", filepath.Join(dir, "init"), "./tests/vm/init")
	aci := inspectACI(t, "rkt-ng.test/vmlimits")
	files := []vm.File{
		{Path: "/init", Src: initBin, Mode: 0o755},
		{Path: "/bin/rkt", Src: testutil.RktBinary(t), Mode: 0o755},
		// Beside rkt: the default stage1, found and trusted as installed.
		{Path: "/bin/stage1-ns.aci", Src: testutil.Stage1Image(t), Mode: 0o644},
		{Path: "/inspect.aci", Src: aci, Mode: 0o644},
		{Path: "/etc/hosts", Data: []byte("127.0.0.1 localhost rktvm\n"), Mode: 0o644},
		{Path: "/etc/resolv.conf", Data: []byte("nameserver 127.0.0.1\n"), Mode: 0o644},
		{Path: "/etc/passwd", Data: []byte("root:x:0:0::/root:/bin/sh\n"), Mode: 0o644},
		{Path: "/etc/group", Data: []byte("root:x:0:\n"), Mode: 0o644},
		// The unit tests of stage1/cgroups, whose v2 cases need a cgroup2
		// root with controllers: this machine. They use sh and sleep.
		{Path: "/bin/cgroups.test", Src: buildStatic(t, dir, "test", "-c", "-o", filepath.Join(dir, "cgroups.test"), "./stage1/cgroups"), Mode: 0o755},
		{Path: "/bin/busybox", Src: staticBusybox(t), Mode: 0o755},
		{Path: "/bin/sh", Symlink: "busybox"},
		{Path: "/bin/sleep", Symlink: "busybox"},
	}
	cfg := vmtest.Config{CgroupOptions: "nsdelegate"}
	// overlayfs is a module in Debian's kernels: load it (and what it needs)
	// from the initramfs.
	if kernel.ConfigValue("CONFIG_OVERLAY_FS") != "y" {
		mods, err := vm.ResolveModule(kernel.ModDir, "overlay")
		switch {
		case errors.Is(err, vm.ErrBuiltin):
		case err != nil:
			t.Fatalf("overlay module of kernel %s: %v", kernel.Version, err)
		}
		for i, m := range mods {
			b, err := vm.ReadModule(m)
			if err != nil {
				t.Fatal(err)
			}
			p := fmt.Sprintf("/lib/modules/%02d-%s.ko", i, strings.SplitN(path.Base(m), ".ko", 2)[0])
			files = append(files, vm.File{Path: p, Data: b, Mode: 0o644})
			cfg.Modules = append(cfg.Modules, p)
		}
	}
	rkt := func(args ...string) []string { return append([]string{"/bin/rkt"}, args...) }
	cfg.Steps = []vmtest.Step{
		{Name: "limits", Argv: rkt("--insecure-options=image", "run", "--net=host",
			"--memory=64Mi", "--cpu=250m", "--cpu-shares=512", "/inspect.aci", "--",
			"--print-memorylimit", "--print-cpuquota", "--print-cpushares", "--print-file=/proc/self/cgroup",
			"--print-file=/sys/fs/cgroup/cgroup.subtree_control")},
		// The pod cgroup is the root of the pod's view and read-only: the
		// app cannot take controllers (and so limits) away from the pod.
		{Name: "readonly", Argv: rkt("--insecure-options=image", "run", "--net=host", "/inspect.aci", "--",
			"--write-file=/sys/fs/cgroup/cgroup.subtree_control", "--content=-memory")},
		{Name: "oom", Argv: rkt("--insecure-options=image", "run", "--net=host",
			"--memory=32Mi", "/inspect.aci", "--", "--alloc=200M")},
		{Name: "devices", Argv: rkt("--insecure-options=image", "run", "--net=host", "/inspect.aci", "--",
			"--check-mknod=b:8:0:/sda", "--print-file=/dev/null")},
		{Name: "devices-standard", Argv: rkt("--insecure-options=image", "run", "--net=host", "/inspect.aci", "--",
			"--check-mknod=c:1:3:/null")},
		{Name: "gc", Argv: rkt("gc", "--grace-period=0s")},
		// Last: it mounts cgroup2 again (with the same options) and makes
		// and removes pods of its own.
		{Name: "unit", Argv: []string{"/bin/cgroups.test", "-test.v", "-test.count=1"}},
	}
	cj, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, vm.File{Path: vmtest.ConfigPath, Data: cj, Mode: 0o644})
	initrd := filepath.Join(dir, "initramfs.cpio.gz")
	if err := vm.WriteInitramfs(initrd, files); err != nil {
		t.Fatalf("write initramfs: %v", err)
	}

	console, err := os.Create(filepath.Join(dir, "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close()
	m := &vm.Machine{Console: console,
		QEMU: qemu, Kernel: kernel.Image, Initrd: initrd, MemoryMB: 1024, CPUs: 2, Accel: accel,
		// loglevel=1 keeps kernel messages (the OOM report among them) off
		// the console lines the init writes results on.
		Cmdline: "console=ttyS0 quiet loglevel=1 panic=-1 rdinit=/init " +
			"systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all",
	}
	timeout := vmTimeout
	if accel == "tcg" {
		timeout = tcgTimeout
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	start := time.Now()
	out, runErr := m.Run(ctx)
	t.Logf("virtual machine ran %s", time.Since(start).Round(time.Millisecond))
	results, perr := vmtest.ParseSerial(out)
	if runErr != nil || perr != nil || len(results) == 0 || results[len(results)-1].Kind != vmtest.KindDone {
		t.Fatalf("virtual machine did not finish its steps (run: %v, parse: %v); console:\n%s", runErr, perr, tail(out, 16<<10))
	}
	steps := map[string]vmtest.Result{}
	var cgroupsLeft []string
	for _, r := range results {
		switch r.Kind {
		case vmtest.KindSetup:
			t.Logf("machine set up %dms after boot", r.BootMillis)
			checkVMSetup(t, r.Info)
		case vmtest.KindStep:
			t.Logf("step %s: exit %d in %dms (at %dms)\n--- stdout:\n%s--- stderr:\n%s", r.Name, r.Exit, r.Millis, r.BootMillis, r.Stdout, r.Stderr)
			steps[r.Name] = r
		case vmtest.KindCgroups:
			cgroupsLeft = r.Cgroups
			if !strings.Contains(r.Info["cgroup_mounts"], "nsdelegate") {
				t.Errorf("nsdelegate lost from the cgroup2 hierarchy after the steps:\n%s", r.Info["cgroup_mounts"])
			}
		case vmtest.KindError:
			t.Fatalf("init failed: %s", r.Error)
		}
	}

	r := steps["limits"]
	if r.Exit != 0 {
		t.Fatalf("limits: rkt run exit %d, want 0 (%s)\nstdout:\n%s\nstderr:\n%s", r.Exit, r.Error, r.Stdout, r.Stderr)
	}
	for key, want := range map[string]string{
		"MEMORY_LIMIT": "67108864", // 64Mi in memory.max
		"CPU_QUOTA":    "250",      // cpu.max "25000 100000"
		// cpu.weight from 512 shares: 1 + (512-2)*9999/(262144-2) = 20
		// (the runc/crun/Kubernetes conversion, cgroups.SharesToWeight).
		"CPU_WEIGHT": "20",
	} {
		if got := field(t, r.Stdout, key); got != want {
			t.Errorf("limits: %s = %s, want %s", key, got, want)
		}
	}
	// /proc/self/cgroup inside the pod: only the v2 line, relative to the
	// cgroup namespace rooted at the pod cgroup (the app's own cgroup).
	cgLines := procCgroupLine.FindAllString(r.Stdout, -1)
	if len(cgLines) != 1 || cgLines[0] != "0::/vmlimits" {
		t.Errorf("limits: /proc/self/cgroup in the app = %q, want [\"0::/vmlimits\"] (cgroup namespace at the pod cgroup)", cgLines)
	}
	// The pod cgroup (the root of the view) delegates the controllers.
	for _, c := range []string{"cpu", "memory", "pids"} {
		if !regexp.MustCompile(`(?m)^(\w+ )*` + c + `( \w+)*$`).MatchString(r.Stdout) {
			t.Errorf("limits: controller %s not in the pod's cgroup.subtree_control as seen by the app\nstdout:\n%s", c, r.Stdout)
		}
	}

	r = steps["readonly"]
	if r.Exit != 1 || !strings.Contains(r.Stderr, "read-only file system") {
		t.Errorf("readonly: writing the pod cgroup's cgroup.subtree_control from the app: exit %d, want 1 with EROFS\nstderr:\n%s", r.Exit, r.Stderr)
	}

	r = steps["devices"]
	if r.Exit != 0 || !strings.Contains(r.Stdout, "MKNOD=EPERM") {
		t.Errorf("devices: mknod of a block device in a v2 pod: exit %d, want MKNOD=EPERM (eBPF device policy)\nstdout:\n%s\nstderr:\n%s", r.Exit, r.Stdout, r.Stderr)
	}

	r = steps["devices-standard"]
	if r.Exit != 0 || !strings.Contains(r.Stdout, "MKNOD_OPEN=OK") {
		t.Errorf("devices: mknod of c 1:3 in a v2 pod: exit %d, want MKNOD_OPEN=OK (the standard nodes may be made)\nstdout:\n%s\nstderr:\n%s", r.Exit, r.Stdout, r.Stderr)
	}

	r = steps["oom"]
	if r.Exit != 137 {
		t.Errorf("oom: rkt run exit %d, want 137 (SIGKILL by the OOM killer)\nstdout:\n%s\nstderr:\n%s", r.Exit, r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "OOM") {
		t.Errorf("oom: rkt did not report the OOM kill (memory.events oom_kill)\nstderr:\n%s", r.Stderr)
	}

	r = steps["gc"]
	if r.Exit != 0 {
		t.Errorf("gc: exit %d\nstdout:\n%s\nstderr:\n%s", r.Exit, r.Stdout, r.Stderr)
	}
	r = steps["unit"]
	if r.Exit != 0 {
		t.Errorf("unit: stage1/cgroups tests exit %d in the machine (%s)\nstdout:\n%s\nstderr:\n%s", r.Exit, r.Error, r.Stdout, r.Stderr)
	}
	// The v2 cases must have run, not skipped, in the machine.
	for _, name := range []string{"TestV2Pod", "TestV2PlanApp", "TestV2DelegationFailure", "TestV2RemoveKillsForks"} {
		if !strings.Contains(r.Stdout, "--- PASS: "+name+" ") {
			t.Errorf("unit: %s did not pass in the machine\n%s", name, r.Stdout)
		}
	}
	if len(cgroupsLeft) == 0 || cgroupsLeft[0] != "." {
		t.Errorf("no cgroup listing after the steps: %q", cgroupsLeft)
	}
	t.Logf("cgroups after gc: %q", cgroupsLeft)
	for _, cg := range cgroupsLeft {
		if strings.HasPrefix(path.Base(cg), "rkt-") {
			t.Errorf("cgroup left behind after gc: /sys/fs/cgroup/%s", cg)
		}
	}
}

// procCgroupLine matches a line of /proc/<pid>/cgroup.
var procCgroupLine = regexp.MustCompile(`(?m)^[0-9]+:[^:=\n]*:/.*$`)

// checkVMSetup checks that the machine is the pure cgroup v2 host the test
// is about.
func checkVMSetup(t *testing.T, info map[string]string) {
	t.Helper()
	t.Logf("machine: kernel %s; cgroup mounts:\n%s\nroot controllers: %s", info["kernel"], info["cgroup_mounts"], info["root_cgroup_controllers"])
	mounts := strings.Split(info["cgroup_mounts"], "\n")
	if len(mounts) != 1 || !strings.Contains(mounts[0], " /sys/fs/cgroup ") || !strings.Contains(mounts[0], " - cgroup2 ") || !strings.Contains(mounts[0], "nsdelegate") {
		t.Fatalf("want exactly one cgroup mount, cgroup2 at /sys/fs/cgroup with nsdelegate; got:\n%s", info["cgroup_mounts"])
	}
	for _, c := range []string{"cpu", "memory", "pids"} {
		if !strings.Contains(" "+info["root_cgroup_controllers"]+" ", " "+c+" ") {
			t.Fatalf("controller %s not offered by the root cgroup: %q", c, info["root_cgroup_controllers"])
		}
	}
	if info["proc_self_cgroup"] != "0::/" {
		t.Fatalf("init's /proc/self/cgroup = %q, want \"0::/\" only (no v1 hierarchy)", info["proc_self_cgroup"])
	}
	if !strings.Contains(info["filesystems"], "overlay") {
		t.Fatalf("no overlay filesystem in the machine:\n%s", info["filesystems"])
	}
}

// buildStatic runs `go <args>` (build or test -c) in the repository with
// CGO_ENABLED=0 and returns the output file, the argument after "-o".
func buildStatic(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out := ""
	for i, a := range args {
		if a == "-o" && i+1 < len(args) {
			out = args[i+1]
		}
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	full := append([]string{args[0], "-trimpath", "-ldflags=-s -w"}, args[1:]...)
	cmd := exec.CommandContext(t.Context(), goCmd, full...)
	cmd.Dir = testutil.RepoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(full, " "), err, b)
	}
	return out
}

// staticBusybox returns the host's busybox, which must be static to run in
// the machine.
func staticBusybox(t *testing.T) string {
	t.Helper()
	p := testutil.RequireCommand(t, "busybox")
	f, err := elf.Open(p)
	if err != nil {
		t.Fatalf("busybox %s: %v", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Skipf("requires a static busybox, %s is dynamic; run: apt-get install busybox-static", p)
		}
	}
	return p
}

// tail returns the last n bytes of b.
func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
