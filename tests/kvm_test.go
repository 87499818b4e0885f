package tests

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/vm"
	"github.com/rkt-ng/rkt/stage1/cgroups"
	"github.com/rkt-ng/rkt/tests/testutil"
)

// requireKVMStage1 skips unless qemu is installed, and returns the KVM
// stage1 image. It does not need /dev/kvm: without it the guest runs under
// TCG, as in CI.
func requireKVMStage1(t *testing.T) string {
	t.Helper()
	testutil.RequireRoot(t)
	if testing.Short() {
		t.Skip("boots a virtual machine; run without -short")
	}
	if _, err := vm.FindQEMU(); err != nil {
		t.Skipf("requires qemu (%v); run: apt-get install --no-install-recommends qemu-system-x86 (or sh scripts/install-deps.sh)", err)
	}
	return testutil.KVMStage1Image(t)
}

// TestKVMRun runs one pod in a virtual machine (one boot): the app's
// stdout reaches rkt run's, its exit code 7 comes back as rkt run's and in
// rkt status, it runs on the image's kernel (not the host's), confined by
// stage2 (no_new_privs, its own PID namespace), and a host volume it writes
// in the guest holds the write on the host; rkt status and rkt list --full
// show the accelerator the guest ran with.
func TestKVMRun(t *testing.T) {
	stage1 := requireKVMStage1(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/kvm-run", testutil.WithMountPoint("data", "/data", false))
	vol := t.TempDir()
	start := time.Now()
	r := runInsecure(t, c, "--stage1-path="+stage1, "--net=none", "--pod-name=kvmrun",
		"--volume=data,kind=host,source="+vol, aci, "--",
		"--print-msg=hello from the guest", "--print-file=/proc/sys/kernel/osrelease",
		"--print-no-new-privs",
		"--write-file=/data/out", "--content=written in the guest", "--exit-code=7")
	t.Logf("rkt run took %s\n%s", time.Since(start).Round(time.Millisecond), r)
	wantExit(t, r, 7)
	if !strings.Contains(r.Stdout, "hello from the guest") {
		t.Errorf("the app's stdout did not reach rkt run's:\n%s", r)
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	hostKernel := unix.ByteSliceToString(uts.Release[:])
	if strings.Contains(r.Stdout, hostKernel+"\n") {
		t.Errorf("the app runs on the host's kernel %s, want the guest's:\n%s", hostKernel, r)
	}
	if !strings.Contains(r.Stdout, "-amd64\n") {
		t.Errorf("no guest kernel release in the output:\n%s", r)
	}
	if got := field(t, r.Stdout, "NoNewPrivs"); got != "1" {
		t.Errorf("NoNewPrivs = %q in the guest, want 1 (stage2's confinement)", got)
	}
	// rkt status reads the app's exit status the guest wrote into the
	// shared stage1 rootfs.
	st := c.MustRun(t, "status", "kvmrun")
	if !strings.Contains(st.Stdout, "app-kvm-run=7\n") || !strings.Contains(st.Stdout, "state=exited\n") {
		t.Errorf("rkt status does not show the app's exit code 7:\n%s", st)
	}
	// Which accelerator ran the guest: the one the run entrypoint warned
	// about (TCG) or KVM, in rkt status and rkt list --full.
	accel := "kvm"
	if strings.Contains(r.Stderr, "under emulation (TCG)") || os.Getenv(vm.AccelEnv) == vm.AccelTCG {
		accel = "tcg"
	}
	if !strings.Contains(st.Stdout, "stage1-accelerator="+accel+"\n") {
		t.Errorf("rkt status does not show stage1-accelerator=%s:\n%s", accel, st)
	}
	if js := c.MustRun(t, "status", "--format=json", "kvmrun"); !strings.Contains(js.Stdout, `"stage1_info":{"accelerator":"`+accel+`"}`) {
		t.Errorf("rkt status --format=json has no stage1_info accelerator %s:\n%s", accel, js)
	}
	if l := c.MustRun(t, "list", "--full", "--no-legend"); !regexp.MustCompile(`(?m)^\S+\s+kvm-run\s.*\saccelerator=` + accel + `$`).MatchString(l.Stdout) {
		t.Errorf("rkt list --full has no STAGE1 column accelerator=%s:\n%s", accel, l)
	}
	b, err := os.ReadFile(filepath.Join(vol, "out"))
	if err != nil || string(b) != "written in the guest" {
		t.Errorf("host volume after the pod: %q, %v; want %q", b, err, "written in the guest")
	}
}

// TestKVMStopEnterKill runs one KVM pod: rkt enter runs a command inside
// the app in the guest, confined like it (same rootfs, no_new_privs), with
// its output and exit code, on a terminal of the caller's size when the
// caller has one; the metadata service answers at
// $AC_METADATA_URL; rkt kill --signal reaches the app; and rkt stop
// stops the pod gracefully: the SIGTERM reaches the app, which exits 0,
// and the pod exits 0.
func TestKVMStopEnterKill(t *testing.T) {
	stage1 := requireKVMStage1(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/kvm-stop", testutil.WithFile("/etc/kvmtest", "in the image\n", 0o644))
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	p := c.Start(t, "--insecure-options=image", "run", "--stage1-path="+stage1, "--net=none", "--pod-name=kvmstop",
		"--uuid-file-save="+uuidFile, "--mds-register", aci, "--", "--print-signals", "--silent-sigterm", "--print-msg=app up", "--sleep=forever")
	p.WaitOutput(t, "app up", kvmBootWait)
	uuid := waitUUID(t, uuidFile)

	r := c.Run(t, "enter", uuid, "/inspect", "--read-file=/etc/kvmtest", "--print-no-new-privs", "--print-env=AC_APP_NAME", "--exit-code=9")
	wantExit(t, r, 9)
	if !strings.Contains(r.Stdout, "in the image\n") || field(t, r.Stdout, "NoNewPrivs") != "1" || field(t, r.Stdout, "AC_APP_NAME") != "kvm-stop" {
		t.Errorf("rkt enter: the command does not run in the app, confined like it:\n%s", r)
	}

	// On a terminal (script(1)'s), the command gets a terminal in the
	// guest, of the caller's size, with the caller's TERM.
	if _, err := exec.LookPath("script"); err != nil {
		t.Logf("rkt enter on a terminal not checked: needs script (util-linux): %v", err)
	} else {
		line := "stty rows 33 cols 99; TERM=xterm-kvmtest " + c.Rkt
		for _, a := range c.Args("enter", uuid, "/inspect", "--print-tty", "--print-env=TERM", "--exit-code=5") {
			line += " '" + a + "'"
		}
		line += "; echo RKT_EXIT=$?"
		cmd := exec.CommandContext(t.Context(), "script", "-qec", line, "/dev/null")
		cmd.WaitDelay = 10 * time.Second
		out, err := cmd.CombinedOutput()
		text := strings.ReplaceAll(string(out), "\r", "")
		t.Logf("rkt enter on a terminal:\n%s", text)
		if err != nil || !strings.Contains(text, "RKT_EXIT=5\n") {
			t.Errorf("rkt enter on a terminal: %v, want exit code 5", err)
		}
		for _, want := range []string{"TTY=yes\n", "TTY_SIZE=33x99\n", "TERM=xterm-kvmtest\n"} {
			if !strings.Contains(text, want) {
				t.Errorf("rkt enter on a terminal: no %q in the output", want)
			}
		}
	}
	if r := c.Run(t, "enter", uuid, "/inspect", "--print-tty"); !strings.Contains(r.Stdout, "TTY=no\n") {
		t.Errorf("rkt enter without a terminal gave the command one:\n%s", r)
	}

	// The metadata service answers in the guest, at $AC_METADATA_URL.
	r = c.MustRun(t, "enter", uuid, "/inspect", "--print-env=AC_METADATA_URL")
	mdsURL := field(t, r.Stdout, "AC_METADATA_URL")
	r = c.Run(t, "enter", uuid, "/inspect", "--get-http="+mdsURL+"/acMetadata/v1/pod/uuid")
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, uuid) {
		t.Errorf("the metadata service in the guest did not give the pod's UUID:\n%s", r)
	}

	c.MustRun(t, "kill", "--signal=HUP", uuid)
	p.WaitOutput(t, "SIGNAL=SIGHUP", time.Minute)

	c.MustRun(t, "stop", "kvmstop")
	r = p.Wait(t, 2*time.Minute)
	wantExit(t, r, 0)
	if !strings.Contains(r.Stdout, "got SIGTERM") {
		t.Errorf("the app in the guest did not get its SIGTERM:\n%s", r)
	}
	st := c.MustRun(t, "status", "kvmstop")
	if !strings.Contains(st.Stdout, "state=exited\n") || !strings.Contains(st.Stdout, "app-kvm-stop=0\n") {
		t.Errorf("status after rkt stop:\n%s", st)
	}
	// An exited pod cannot be entered.
	wantExit(t, c.Run(t, "enter", uuid, "/inspect"), 254)
}

// TestKVMInteractive runs a one-app KVM pod with --interactive on a
// terminal (script(1)'s): the app gets a terminal in the guest, of the
// caller's size, and its exit code is rkt run's (its environment is the
// image's, as in the namespace flavor: no TERM from the caller); without a
// terminal it reads rkt run's stdin to its end. Two boots.
func TestKVMInteractive(t *testing.T) {
	stage1 := requireKVMStage1(t)
	if _, err := exec.LookPath("script"); err != nil {
		t.Skipf("needs script (util-linux): %v", err)
	}
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/kvm-interactive")
	line := "stty rows 21 cols 77; " + c.Rkt
	for _, a := range c.Args("--insecure-options=image", "run", "--stage1-path="+stage1, "--net=none", "--interactive",
		aci, "--", "--print-tty", "--exit-code=3") {
		line += " '" + a + "'"
	}
	line += "; echo RKT_EXIT=$?"
	cmd := exec.CommandContext(t.Context(), "script", "-qec", line, "/dev/null")
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	text := strings.ReplaceAll(string(out), "\r", "")
	t.Logf("rkt run --interactive on a terminal:\n%s", text)
	if err != nil || !strings.Contains(text, "RKT_EXIT=3\n") {
		t.Errorf("rkt run --interactive: %v, want exit code 3", err)
	}
	for _, want := range []string{"TTY=yes\n", "TTY_SIZE=21x77\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("rkt run --interactive: no %q in the output", want)
		}
	}

	// Without a terminal (second boot), the app reads rkt run's stdin to
	// its end, as a stream.
	pipe := c.CmdContext(t.Context(), "--insecure-options=image", "run", "--stage1-path="+stage1, "--net=none", "--interactive",
		aci, "--", "--print-tty", "--read-file=/dev/stdin", "--exit-code=4")
	pipe.Stdin = strings.NewReader("line one from stdin\nline two\n")
	b, err := pipe.Output()
	t.Logf("rkt run --interactive, stdin a pipe: %v\n%s", err, b)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 4 {
		t.Errorf("rkt run --interactive with a pipe: %v, want exit code 4", err)
	}
	if !strings.Contains(string(b), "TTY=no\nline one from stdin\nline two\n") {
		t.Errorf("rkt run --interactive with a pipe: the app did not read stdin to its end:\n%s", b)
	}
}

// kvmBootWait bounds a TCG boot up to the app's first output on a loaded
// 2-CPU host.
const kvmBootWait = 3 * time.Minute

// TestKVMKillAndGC kills rkt run with SIGKILL while the app runs: qemu dies
// with it, and rkt gc then leaves no pod directory, cgroup or mount (the
// Ctx's cleanup checks the mounts).
func TestKVMKillAndGC(t *testing.T) {
	stage1 := requireKVMStage1(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/kvm-kill")
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	p := c.Start(t, "--insecure-options=image", "run", "--stage1-path="+stage1, "--net=none",
		"--uuid-file-save="+uuidFile, aci, "--", "--print-msg=app up", "--sleep=forever")
	p.WaitOutput(t, "app up", kvmBootWait)
	uuid := waitUUID(t, uuidFile)
	qemu := qemuOf(t, c.DataDir)
	if len(qemu) != 1 {
		t.Fatalf("qemu processes of the pod: %v, want one", qemu)
	}
	// qemu runs in the pod's cgroup on the host.
	cgs := cgroupsNamed(t, "rkt-"+uuid)
	if len(cgs) == 0 {
		t.Fatalf("no pod cgroup rkt-%s on the host", uuid)
	}
	inPod := false
	for _, cg := range cgs {
		b, _ := os.ReadFile(filepath.Join(cg, cgroups.InitLeaf, "cgroup.procs"))
		inPod = inPod || slices.Contains(strings.Fields(string(b)), strconv.Itoa(qemu[0]))
	}
	if !inPod {
		t.Errorf("qemu %d is not in the pod's cgroups %v", qemu[0], cgs)
	}
	if err := p.Signal(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.Wait(t, time.Minute)
	deadline := time.Now().Add(30 * time.Second)
	for len(qemuOf(t, c.DataDir)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("qemu %v still runs 30s after rkt run was killed", qemu)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.MustRun(t, "gc", "--grace-period=0s")
	if r := c.Run(t, "status", uuid); r.ExitCode == 0 {
		t.Errorf("the pod survived gc:\n%s", r)
	}
	if cgs := cgroupsNamed(t, "rkt-"+uuid); len(cgs) > 0 {
		t.Errorf("pod cgroups left after gc: %v", cgs)
	}
}

// qemuOf returns the PIDs of the qemu processes whose command line names a
// path in dataDir.
func qemuOf(t *testing.T, dataDir string) []int {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, f := range procs {
		b, err := os.ReadFile(f)
		if err != nil || !strings.Contains(string(b), "qemu-system") || !strings.Contains(string(b), dataDir+"/") {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		out = append(out, pid)
	}
	return out
}

// cgroupsNamed returns the cgroup directories named name, in every
// hierarchy below /sys/fs/cgroup, at most four levels down.
func cgroupsNamed(t *testing.T, name string) []string {
	t.Helper()
	var out []string
	for _, pat := range []string{"*", "*/*", "*/*/*", "*/*/*/*"} {
		m, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", pat, name))
		out = append(out, m...)
	}
	return out
}

// TestKVMBadInput checks the KVM stage1's refusals: each is one line and
// exit 254, with nothing left behind (the Ctx's cleanup checks mounts), and
// no virtual machine booted.
func TestKVMBadInput(t *testing.T) {
	stage1 := requireKVMStage1(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/kvm-bad")
	run := func(env []string, args ...string) testutil.Result {
		t.Helper()
		cmd := c.Cmd(append([]string{"--insecure-options=image", "run", "--stage1-path=" + stage1}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.Run()
		code := -1
		if cmd.ProcessState != nil {
			code = cmd.ProcessState.ExitCode()
		}
		return testutil.Result{Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: code}
	}
	t.Run("no qemu", func(t *testing.T) {
		r := run([]string{vm.QEMUEnv + "=/nonexistent/qemu-system-x86_64"}, "--net=none", aci)
		wantExit(t, r, 254)
		oneLineError(t, r, vm.QEMUPackage)
		t.Logf("%s", r.Stderr)
	})
	t.Run("network", func(t *testing.T) {
		r := run(nil, "--net=nosuchnet", aci)
		wantExit(t, r, 254)
		oneLineError(t, r, "nosuchnet")
	})
	t.Run("accelerator", func(t *testing.T) {
		r := run([]string{vm.AccelEnv + "=hvf"}, "--net=none", aci)
		wantExit(t, r, 254)
		oneLineError(t, r, vm.AccelEnv)
	})
	t.Run("memory", func(t *testing.T) {
		r := run(nil, "--net=none", aci, "--memory=64Ti")
		wantExit(t, r, 254)
		oneLineError(t, r, "MiB")
	})
	// A boot that cannot finish in time: qemu is stopped and the last
	// lines of the console are printed.
	t.Run("boot timeout", func(t *testing.T) {
		r := run([]string{"RKT_STAGE1_KVM_BOOT_TIMEOUT=1ms"}, "--net=none", aci)
		wantExit(t, r, 254)
		if !strings.Contains(r.Stderr, "did not boot within 1ms") || !strings.Contains(r.Stderr, "last lines of its console") {
			t.Errorf("boot timeout:\n%s", r)
		}
		if q := qemuOf(t, c.DataDir); len(q) > 0 {
			t.Errorf("qemu %v still runs after the boot timeout", q)
		}
	})
}

// TestKVMNetwork runs a KVM pod on the default network (one boot) beside a
// namespace pod: the KVM pod's app reaches the namespace pod's server, and
// the host reaches the KVM pod's server at its pod IP and through --port
// on 127.0.0.1; rkt status shows the KVM pod's address.
func TestKVMNetwork(t *testing.T) {
	stage1 := requireKVMStage1(t)
	iptablesRestoredAfter(t)
	c := testutil.NewCtx(t)
	web := inspectACI(t, "rkt-ng.test/kvmweb", testutil.WithPort("http", "tcp", 8080))
	client := inspectACI(t, "rkt-ng.test/kvmclient")
	nsPod, nsUUID := servingPod(t, c, "--net=default", "--hostname=nsweb", web, "--", "--serve-http=:8080")
	nsIP := netIP(t, statusNetworks(t, c, nsUUID), "default", "ip4")

	port := freePort(t)
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	p := c.Start(t, "--insecure-options=image", "run", "--stage1-path="+stage1, "--uuid-file-save="+uuidFile,
		"--net=default", "--hostname=kvmweb", fmt.Sprintf("--port=http:%d", port),
		web, "--", "--serve-http=:8080", "---",
		client, "--", "--get-http=http://"+nsIP.String()+":8080/", "--sleep=1h")
	p.WaitOutput(t, "SERVING=", kvmBootWait)
	uuid := waitUUID(t, uuidFile)
	t.Cleanup(func() {
		if !p.Exited() {
			exec.Command(c.Rkt, c.Args("stop", "--force", uuid)...).Run()
		}
	})
	ip := netIP(t, statusNetworks(t, c, uuid), "default", "ip4")
	t.Run("guest to namespace pod", func(t *testing.T) {
		p.WaitOutput(t, "hello from nsweb", time.Minute)
	})
	t.Run("host to pod IP", func(t *testing.T) {
		u := "http://" + ip.String() + ":8080/"
		body, err := httpGet(t, u)
		if err != nil || body != "hello from kvmweb" {
			t.Errorf("GET %s from the host: %q, %v", u, body, err)
		}
	})
	t.Run("port", func(t *testing.T) {
		u := fmt.Sprintf("http://127.0.0.1:%d/", port)
		body, err := httpGet(t, u)
		if err != nil || body != "hello from kvmweb" {
			t.Errorf("GET %s from the host: %q, %v", u, body, err)
		}
	})
	c.MustRun(t, "stop", uuid)
	p.Wait(t, 2*time.Minute)
	c.MustRun(t, "stop", nsUUID)
	nsPod.Wait(t, 30*time.Second)
}

// TestACEValidatorKVM runs the appc executor conformance suite (main and
// sidekick in one pod, with the metadata service) in one KVM pod. With KVM
// every check must pass. Under TCG one cannot: the validator's metadata
// client gives up after 100 ms (a constant in appc's ace/validator.go),
// which its first request from an emulated guest misses (measured in
// docs/kvm.md; TestKVMStopEnterKill checks the metadata service under TCG
// with a patient client). There the test still runs the whole suite and
// requires every other check to pass: prestart, sidekick and poststop OK,
// and main OK or failing on nothing but metadata requests timing out.
func TestACEValidatorKVM(t *testing.T) {
	stage1 := requireKVMStage1(t)
	accel, _, err := vm.ChooseAccel(&vm.Kernel{})
	if err != nil {
		t.Fatal(err)
	}
	main, sidekick := testutil.ACEImages(t)
	c := testutil.NewCtx(t)
	r := c.Run(t, "--insecure-options=image", "run", "--stage1-path="+stage1, "--net=none", "--mds-register",
		"--volume", "database,kind=empty", main, sidekick)
	wantOK, wantCode := []string{"prestart OK", "main OK", "sidekick OK", "poststop OK"}, 0
	if accel != vm.AccelKVM && strings.Contains(r.Stdout, "main FAIL") {
		wantOK, wantCode = []string{"prestart OK", "sidekick OK", "poststop OK"}, 1
		var fails []string
		for line := range strings.Lines(r.Stderr) {
			if f, ok := strings.CutPrefix(strings.TrimSpace(line), "==> "); ok {
				fails = append(fails, f)
			}
		}
		if len(fails) == 0 {
			t.Errorf("main failed and said nothing\n%s", r)
		}
		for _, f := range fails {
			if !strings.Contains(f, "/acMetadata/v1/") || !strings.Contains(f, "Client.Timeout exceeded") {
				t.Errorf("under %s main may fail only on metadata requests timing out; it failed on: %s", accel, f)
			}
		}
	}
	for _, want := range wantOK {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("%q missing\n%s", want, r)
		}
	}
	wantExit(t, r, wantCode)
}
