// Package stage1test is the stage1 conformance suite: black-box checks that
// a stage1 image honours rkt's stage1 ABI as bin/rkt drives it (exit codes,
// status files and logs, stop, kill, enter, the appc executor environment,
// volumes, garbage collection), in the way of containerd's shared snapshotter
// test suite. Every flavor runs the same Run; optional features a flavor
// lacks are declared in Options and their subtests skip with the reason.
//
// The suite needs root, the built bin/rkt (env RKT, see testutil.RktBinary)
// and go (to build tests/inspect). Pods use --net=host except where
// networking is the point. Subtests run in parallel, each with its own data
// directory.
package stage1test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// Options says which optional features the stage1 under test supports.
type Options struct {
	// Enter: the stage1 has an enter entrypoint (`rkt enter`).
	Enter bool
	// Networking: the stage1 gives a pod its own network namespace for any
	// --net but host (the suite asks for --net=none). A stage1 without it
	// must refuse such a pod (exit 254), not run it in the host's network.
	Networking bool
	// MutablePods: the stage1 has the app entrypoints (app/add, app/start,
	// app/stop, app/rm) of `rkt app`. Without them `rkt app sandbox` must
	// fail with one line before any pod exists.
	MutablePods bool
	// StartTimeout bounds how long a pod may take to start (0: 60s). A
	// virtual machine emulated without KVM needs more.
	StartTimeout time.Duration
	// VM: the apps run in a virtual machine, where the host cannot see
	// their processes; the leak checks look for the host processes that
	// name the pod's UUID (the stage1's, qemu) instead.
	VM bool
}

// Run runs the conformance suite against stage1Image, an ACI path.
func Run(t *testing.T, stage1Image string, o Options) {
	testutil.RequireRoot(t)
	if _, err := os.Stat(stage1Image); err != nil {
		t.Fatalf("stage1 image: %v", err)
	}
	s := &suite{stage1: stage1Image, o: o}
	s.images(t)
	for _, tc := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"ExitCode", s.testExitCode},
		{"ExitCodeMultiApp", s.testExitCodeMultiApp},
		{"ExitCodeRktError", s.testExitCodeRktError},
		{"StatusLogsList", s.testStatusLogsList},
		{"StopGraceful", s.testStopGraceful},
		{"StopForce", s.testStopForce},
		{"KillSignal", s.testKillSignal},
		{"Enter", s.testEnter},
		{"Environment", s.testEnvironment},
		{"ImagePath", s.testImagePath},
		{"UserGroupWorkingDir", s.testUserGroupWorkingDir},
		{"Rendering", s.testRendering},
		{"HostVolume", s.testHostVolume},
		{"EmptyVolume", s.testEmptyVolume},
		{"GC", s.testGC},
		{"Networking", s.testNetworking},
		{"MutablePods", s.testMutablePods},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t)
		})
	}
}

type suite struct {
	stage1 string
	o      Options
	// Images, built once per Run.
	inspect, user, path string
}

// renderedFile is a file of the inspect image whose content an app must see.
const (
	renderedFile    = "/etc/stage1test"
	renderedContent = "rendered from the image\n"
)

func (s *suite) images(t *testing.T) {
	s.inspect = testutil.NewACI(t, "rkt-ng.test/stage1test", testutil.WithInspect(),
		testutil.WithFile(renderedFile, renderedContent, 0o644),
		testutil.WithMountPoint("data", "/data", false))
	s.user = testutil.NewACI(t, "rkt-ng.test/stage1test-user", testutil.WithInspect(),
		testutil.WithPasswd("root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n"),
		testutil.WithGroup("root:x:0:\nalice:x:1000:\nstaff:x:50:\n"),
		testutil.WithDir("/work", 0o755, 1000, 50),
		testutil.WithUser("alice", "staff"), testutil.WithWorkingDir("/work"))
	s.path = testutil.NewACI(t, "rkt-ng.test/stage1test-path", testutil.WithInspect(), testutil.WithEnv("PATH", "/custom/bin"))
}

// rkt is one subtest's rkt with its own data directory.
type rkt struct {
	*testutil.Ctx
	s *suite
}

func (s *suite) ctx(t *testing.T) rkt { return rkt{testutil.NewCtx(t), s} }

// runArgs is `--insecure-options=image run --stage1-path=IMAGE` plus
// --net=host unless args choose a network.
func (r rkt) runArgs(args ...string) []string {
	out := []string{"--insecure-options=image", "run", "--stage1-path=" + r.s.stage1}
	net := false
	for _, a := range args {
		if a == "--" || a == "---" {
			break
		}
		net = net || strings.HasPrefix(a, "--net=")
	}
	if !net {
		out = append(out, "--net=host")
	}
	return append(out, args...)
}

func (r rkt) run(t *testing.T, args ...string) testutil.Result {
	t.Helper()
	return r.Run(t, r.runArgs(args...)...)
}

// start runs a pod in the background, saving its UUID, and waits until its
// app printed msg (give the app --print-msg=msg before its --sleep).
func (r rkt) start(t *testing.T, msg string, args ...string) (*testutil.Process, string) {
	t.Helper()
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	p := r.Start(t, r.runArgs(append([]string{"--uuid-file-save=" + uuidFile}, args...)...)...)
	timeout := r.s.o.StartTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	p.WaitOutput(t, msg, timeout)
	b, err := os.ReadFile(uuidFile)
	if err != nil {
		t.Fatalf("pod UUID: %v", err)
	}
	return p, strings.TrimSpace(string(b))
}

// runUUID runs a pod to its end and returns its result and UUID.
func (r rkt) runUUID(t *testing.T, args ...string) (testutil.Result, string) {
	t.Helper()
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	res := r.run(t, append([]string{"--uuid-file-save=" + uuidFile}, args...)...)
	b, err := os.ReadFile(uuidFile)
	if err != nil {
		t.Fatalf("pod UUID: %v\n%s", err, res)
	}
	return res, strings.TrimSpace(string(b))
}

func wantExit(t *testing.T, r testutil.Result, code int) {
	t.Helper()
	if r.ExitCode != code {
		t.Fatalf("exit code %d, want %d\n%s", r.ExitCode, code, r)
	}
}

func wantLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains("\n"+out, "\n"+l+"\n") {
			t.Errorf("output lacks the line %q:\n%s", l, out)
		}
	}
}

func (s *suite) testExitCode(t *testing.T) {
	r := s.ctx(t)
	for _, code := range []int{0, 7, 42} {
		wantExit(t, r.run(t, s.inspect, "--", "--exit-code="+strconv.Itoa(code)), code)
	}
}

// testExitCodeMultiApp: the first app that fails decides the pod's exit
// code, and the others are stopped instead of running for an hour.
func (s *suite) testExitCodeMultiApp(t *testing.T) {
	r := s.ctx(t)
	start := time.Now()
	res, uuid := r.runUUID(t, "--stop-timeout=2s",
		s.inspect, "--name=sleeper", "--", "--sleep=1h", "---",
		s.inspect, "--name=failer", "--", "--sleep=200ms", "--exit-code=3")
	wantExit(t, res, 3)
	// The pod's start counts too: a slow-starting stage1 (Options.StartTimeout)
	// gets that much more.
	if el, limit := time.Since(start), 30*time.Second+s.o.StartTimeout; el > limit {
		t.Errorf("the pod took %v to stop after an app failed (limit %v)", el, limit)
	}
	st := r.MustRun(t, "status", uuid)
	wantLines(t, st.Stdout, "exited=true", "app-failer=3")
	if !strings.Contains(st.Stdout, "app-sleeper=") {
		t.Errorf("status has no exit code of the stopped app:\n%s", st)
	}
	wantExit(t, r.run(t, s.inspect, "--name=one", "--", "--exit-code=0", "---", s.inspect, "--name=two", "--", "--exit-code=0"), 0)
}

// testExitCodeRktError: an app that cannot be started is rkt's own error.
func (s *suite) testExitCodeRktError(t *testing.T) {
	r := s.ctx(t)
	res := r.run(t, s.inspect, "--working-dir=/nonexistent", "--", "--exit-code=0")
	wantExit(t, res, 254)
	if !strings.Contains(res.Stderr, "/nonexistent") {
		t.Errorf("the error does not name the working directory\n%s", res)
	}
}

func (s *suite) testStatusLogsList(t *testing.T) {
	r := s.ctx(t)
	res, uuid := r.runUUID(t, s.inspect, "--name=talker", "--", "--print-msg=hello from the log", "--exit-code=4")
	wantExit(t, res, 4)
	st := r.MustRun(t, "status", uuid)
	wantLines(t, st.Stdout, "state=exited", "exited=true", "app-talker=4")
	logs := r.MustRun(t, "logs", uuid)
	if !strings.Contains(logs.Stdout, "hello from the log") {
		t.Errorf("rkt logs lacks the app's output:\n%s", logs)
	}
	l := r.MustRun(t, "list", "--no-legend")
	if !strings.Contains(l.Stdout, uuid[:8]) || !strings.Contains(l.Stdout, "talker") {
		t.Errorf("rkt list --no-legend does not show the pod %s:\n%s", uuid, l.Stdout)
	}
}

func (s *suite) testStopGraceful(t *testing.T) {
	r := s.ctx(t)
	p, uuid := r.start(t, "up", s.inspect, "--", "--silent-sigterm", "--print-msg=up", "--sleep=1h")
	st := r.MustRun(t, "status", uuid)
	wantLines(t, st.Stdout, "state=running", "exited=false")
	r.MustRun(t, "stop", uuid)
	res := p.Wait(t, 30*time.Second)
	if res.ExitCode != 0 {
		t.Errorf("a pod stopped gracefully exited %d\n%s", res.ExitCode, res)
	}
	if !strings.Contains(res.Stdout, "got SIGTERM") {
		t.Errorf("the app did not get SIGTERM\n%s", res)
	}
	st = r.MustRun(t, "status", "--wait=10s", uuid)
	wantLines(t, st.Stdout, "exited=true", "app-stage1test=0")
}

func (s *suite) testStopForce(t *testing.T) {
	r := s.ctx(t)
	p, uuid := r.start(t, "up", s.inspect, "--", "--silent-sigterm", "--print-msg=up", "--sleep=1h")
	r.MustRun(t, "stop", "--force", uuid)
	res := p.Wait(t, 30*time.Second)
	if strings.Contains(res.Stdout, "got SIGTERM") {
		t.Errorf("stop --force asked the app to stop instead of killing it\n%s", res)
	}
	st := r.MustRun(t, "status", "--wait=10s", uuid)
	wantLines(t, st.Stdout, "exited=true")
}

func (s *suite) testKillSignal(t *testing.T) {
	r := s.ctx(t)
	p, uuid := r.start(t, "up", s.inspect, "--", "--print-signals", "--silent-sigterm", "--print-msg=up", "--sleep=1h")
	r.MustRun(t, "kill", "--signal=HUP", uuid)
	p.WaitOutput(t, "SIGNAL=SIGHUP", 20*time.Second)
	if p.Exited() {
		t.Errorf("SIGHUP ended the pod\n%s", p.Stdout())
	}
	r.MustRun(t, "stop", uuid)
	p.Wait(t, 30*time.Second)
}

func (s *suite) testEnter(t *testing.T) {
	if !s.o.Enter {
		t.Skip("the stage1 declares no enter entrypoint (Options.Enter)")
	}
	r := s.ctx(t)
	p, uuid := r.start(t, "up", s.inspect, "--", "--silent-sigterm", "--print-msg=up", "--sleep=1h")
	res := r.Run(t, "enter", uuid, "/inspect", "--read-file="+renderedFile, "--print-env=AC_APP_NAME", "--exit-code=9")
	wantExit(t, res, 9)
	if !strings.Contains(res.Stdout, renderedContent) {
		t.Errorf("the entered command does not see the app's rootfs\n%s", res)
	}
	r.MustRun(t, "stop", uuid)
	p.Wait(t, 30*time.Second)
	// An exited pod cannot be entered.
	wantExit(t, r.Run(t, "enter", uuid, "/inspect"), 254)
}

// testEnvironment: appc's executor environment (ace.md).
func (s *suite) testEnvironment(t *testing.T) {
	r := s.ctx(t)
	res := r.run(t, s.inspect, "--name=envapp", "--", "--print-env=AC_APP_NAME", "--print-env=PATH", "--print-env=container", "--print-cwd", "--print-user")
	wantExit(t, res, 0)
	wantLines(t, res.Stdout,
		"AC_APP_NAME=envapp",
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"container=rkt",
		"CWD=/",
		"UID=0", "GID=0")
}

// testImagePath: an image's own PATH is kept.
func (s *suite) testImagePath(t *testing.T) {
	r := s.ctx(t)
	res := r.run(t, s.path, "--", "--print-env=PATH")
	wantExit(t, res, 0)
	wantLines(t, res.Stdout, "PATH=/custom/bin")
}

func (s *suite) testUserGroupWorkingDir(t *testing.T) {
	r := s.ctx(t)
	// Names resolve in the image's /etc/passwd and /etc/group.
	res := r.run(t, s.user, "--", "--print-user", "--print-cwd")
	wantExit(t, res, 0)
	wantLines(t, res.Stdout, "UID=1000", "EUID=1000", "GID=50", "EGID=50", "CWD=/work")
	// Numbers need no entry; --working-dir overrides the image's.
	res = r.run(t, s.user, "--user=1234", "--group=4321", "--working-dir=/etc", "--", "--print-user", "--print-cwd")
	wantExit(t, res, 0)
	wantLines(t, res.Stdout, "UID=1234", "GID=4321", "CWD=/etc")
}

// testRendering: the app's rootfs is its image.
func (s *suite) testRendering(t *testing.T) {
	r := s.ctx(t)
	res := r.run(t, s.inspect, "--", "--read-file="+renderedFile)
	wantExit(t, res, 0)
	if !strings.Contains(res.Stdout, renderedContent) {
		t.Errorf("the image's %s is not in the app's rootfs\n%s", renderedFile, res)
	}
}

func (s *suite) testHostVolume(t *testing.T) {
	r := s.ctx(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "in.txt"), []byte("from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := r.run(t, "--volume=data,kind=host,source="+host, s.inspect,
		"--", "--read-file=/data/in.txt", "--write-file=/data/out.txt", "--content=from the pod")
	wantExit(t, res, 0)
	if !strings.Contains(res.Stdout, "from the host") {
		t.Errorf("the host volume's file is not visible\n%s", res)
	}
	if b, err := os.ReadFile(filepath.Join(host, "out.txt")); string(b) != "from the pod" {
		t.Errorf("write through the host volume: got %q (%v)", b, err)
	}
}

func (s *suite) testEmptyVolume(t *testing.T) {
	r := s.ctx(t)
	res := r.run(t, "--volume=scratch,kind=empty,mode=0700", s.inspect, "--mount=volume=scratch,target=/scratch",
		"--", "--write-file=/scratch/f", "--content=x", "--stat-file=/scratch", "--read-file=/scratch/f")
	wantExit(t, res, 0)
	if !strings.Contains(res.Stdout, "STAT=/scratch type=dir mode=0700 uid=0 gid=0") {
		t.Errorf("empty volume: want a directory of mode 0700 owned by root\n%s", res)
	}
}

// testGC: gc of an exited pod, twice, leaves no pod directory, no mount under
// the data directory and no process of the pod.
func (s *suite) testGC(t *testing.T) {
	r := s.ctx(t)
	marker := "stage1test-gc-" + randomHex(t)
	p, uuid := r.start(t, "up", s.inspect, "--", "--print-msg=up", "--print-msg="+marker, "--sleep=1h")
	if s.o.VM {
		marker = uuid
	}
	if len(processesWith(t, marker)) == 0 {
		t.Fatalf("no process has %q in its command line: the leak check below would prove nothing", marker)
	}
	r.MustRun(t, "stop", "--force", uuid)
	p.Wait(t, 30*time.Second)
	for i := range 2 {
		res := r.Run(t, "gc", "--grace-period=0s")
		if res.ExitCode != 0 {
			t.Errorf("gc #%d: %s", i+1, res)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(r.DataDir, "pods", "*", uuid)); len(m) != 0 {
		t.Errorf("gc left %v", m)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.Contains(f[4], r.DataDir) {
			t.Errorf("gc left a mount: %s", line)
		}
	}
	if pids := processesWith(t, marker); len(pids) != 0 {
		t.Errorf("processes of the pod outlived gc: %v", pids)
	}
}

// testNetworking: a private network, or a refusal to pretend.
func (s *suite) testNetworking(t *testing.T) {
	r := s.ctx(t)
	res := r.run(t, "--net=none", s.inspect, "--", "--print-netns", "--print-ifaces")
	if !s.o.Networking {
		if res.ExitCode != 254 {
			t.Errorf("a stage1 without networking ran a --net=none pod: exit code %d, want 254\n%s", res.ExitCode, res)
		}
		t.Skip("the stage1 declares no networking (Options.Networking); it refused --net=none as it must")
	}
	wantExit(t, res, 0)
	host, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(res.Stdout, "NETNS="+host+"\n") {
		t.Errorf("--net=none runs in the host's network namespace %s\n%s", host, res)
	}
	for _, l := range strings.Split(res.Stdout, "\n") {
		if strings.HasPrefix(l, "IFACE=") && !strings.HasPrefix(l, "IFACE=lo") {
			t.Errorf("--net=none has an interface besides lo: %s\n%s", l, res)
		}
	}
}

// processesWith lists the PIDs whose command line holds marker.
func processesWith(t *testing.T, marker string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.Contains(string(b), marker) {
			out = append(out, pid)
		}
	}
	return out
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// testMutablePods drives a sandbox through the app entrypoints: an app
// added, started, exiting with its own code (the sandbox stays), another
// stopped and removed, then the sandbox stopped (exit 0). A stage1 without
// the entrypoints is refused by stage0 with one line.
func (s *suite) testMutablePods(t *testing.T) {
	r := s.ctx(t)
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	sandbox := []string{"--insecure-options=image", "app", "sandbox", "--stage1-path=" + s.stage1, "--net=host", "--uuid-file-save=" + uuidFile}
	if !s.o.MutablePods {
		res := r.Run(t, sandbox...)
		wantExit(t, res, 254)
		if lines := strings.Split(strings.TrimSpace(res.Stderr), "\n"); !strings.Contains(lines[len(lines)-1], "coreos.com/rkt/stage1/app/add") {
			t.Errorf("refusal does not name the missing annotation:\n%s", res)
		}
		if _, err := os.Stat(uuidFile); err == nil {
			t.Errorf("a refused sandbox made a pod")
		}
		return
	}
	p := r.Start(t, sandbox...)
	deadline := time.Now().Add(60 * time.Second)
	var uuid string
	for uuid == "" {
		if b, err := os.ReadFile(uuidFile); err == nil {
			uuid = strings.TrimSpace(string(b))
		} else if p.Exited() || time.Now().After(deadline) {
			t.Fatalf("sandbox did not start\n%s", p.Wait(t, 10*time.Second))
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	r.MustRun(t, "status", "--wait-ready=60s", uuid)
	add := func(name string, args ...string) {
		t.Helper()
		r.MustRun(t, append([]string{"--insecure-options=image", "app", "add", uuid, s.inspect, "--name=" + name, "--"}, args...)...)
		r.MustRun(t, "app", "start", "--app="+name, uuid)
	}
	waitStatus := func(name string, lines ...string) {
		t.Helper()
		for end := time.Now().Add(30 * time.Second); ; {
			st := r.MustRun(t, "app", "status", "--app="+name, uuid)
			ok := true
			for _, l := range lines {
				ok = ok && strings.Contains("\n"+st.Stdout, "\n"+l+"\n")
			}
			if ok {
				return
			}
			if time.Now().After(end) {
				t.Fatalf("app %s: status lacks %q:\n%s", name, lines, st.Stdout)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	add("exits", "--exit-code=7")
	waitStatus("exits", "state=exited", "exit_code=7")
	add("sleeps", "--print-msg=up", "--sleep=1h")
	waitStatus("sleeps", "state=running")
	r.MustRun(t, "app", "stop", "--app=sleeps", uuid)
	waitStatus("sleeps", "state=exited", "exit_code=143")
	r.MustRun(t, "app", "rm", "--app=sleeps", uuid)
	if res := r.Run(t, "app", "status", "--app=sleeps", uuid); res.ExitCode != 254 {
		t.Errorf("status of a removed app: exit %d, want 254\n%s", res.ExitCode, res)
	}
	if p.Exited() {
		t.Fatalf("the sandbox ended with its apps\n%s", p.Wait(t, time.Second))
	}
	r.MustRun(t, "stop", uuid)
	if res := p.Wait(t, 30*time.Second); res.ExitCode != 0 {
		t.Errorf("sandbox stopped: exit %d, want 0\n%s", res.ExitCode, res)
	}
}
