package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rkt-ng/rkt/tests/testutil"
)

func TestRunExitCode(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/inspect")
	for _, code := range []int{0, 7, 42} {
		r := runInsecure(t, c, aci, "--exec=/inspect", "--", "--exit-code="+strconv.Itoa(code))
		wantExit(t, r, code)
	}
}

func TestRunEnvironment(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/env", testutil.WithEnv("FROM_IMAGE", "yes"))
	r := runInsecure(t, c, aci, "--", "--print-env=PATH", "--print-env=AC_APP_NAME", "--print-env=container", "--print-env=FROM_IMAGE", "--print-user", "--print-cwd", "--print-hostname")
	wantExit(t, r, 0)
	for _, want := range []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"AC_APP_NAME=env",
		"container=rkt",
		"FROM_IMAGE=yes",
	} {
		if !strings.Contains(r.Stdout, want+"\n") {
			t.Errorf("output lacks %q\n%s", want, r)
		}
	}
	if !strings.Contains(r.Stdout, "Hostname=rkt-") && !strings.Contains(r.Stdout, "HOSTNAME=rkt-") {
		t.Errorf("hostname is not rkt-<uuid>\n%s", r)
	}
}

func TestRunImagePath(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/path", testutil.WithEnv("PATH", "/custom/bin"))
	r := runInsecure(t, c, aci, "--", "--print-env=PATH")
	wantExit(t, r, 0)
	if !strings.Contains(r.Stdout, "PATH=/custom/bin\n") {
		t.Errorf("image PATH not kept\n%s", r)
	}
}

func TestRunUserAndWorkingDir(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/user",
		testutil.WithPasswd("root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n"),
		testutil.WithGroup("root:x:0:\nalice:x:1000:\nstaff:x:50:\n"),
		testutil.WithDir("/work", 0o755, 1000, 1000),
		testutil.WithUser("alice", "staff"), testutil.WithWorkingDir("/work"))
	r := runInsecure(t, c, aci, "--", "--print-user", "--print-cwd", "--print-env=HOME", "--print-env=USER")
	wantExit(t, r, 0)
	for _, want := range []string{"1000", "50", "/work", "HOME=/home/alice", "USER=alice"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("output lacks %q\n%s", want, r)
		}
	}
	// A working directory that does not exist fails the app as rkt's error.
	r = runInsecure(t, c, aci, "--working-dir=/nonexistent", "--", "--exit-code=0")
	wantExit(t, r, 254)
	if !strings.Contains(r.Stderr, "/nonexistent") {
		t.Errorf("error does not name the working directory\n%s", r)
	}
}

func TestRunUnsignedRefused(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/unsigned")
	r := c.Run(t, "run", aci)
	wantExit(t, r, 254)
	oneLineError(t, r, "rkt-ng.test/unsigned", "signature")
	storeEmpty(t, c)
	if pods := podDirs(t, c); len(pods) != 0 {
		t.Errorf("pods left behind: %v", pods)
	}
}

func TestRunStdio(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := testutil.NewACI(t, "rkt-ng.test/cat", testutil.WithBusybox(), testutil.WithExec("/bin/cat"))
	// --interactive without a terminal: the app reads rkt's stdin as it is.
	cmd := c.Cmd("--insecure-options=image", "run", "--interactive", aci)
	cmd.Stdin = strings.NewReader("through the pod\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if string(out) != "through the pod\n" {
		t.Errorf("stdout = %q, want the stdin passed through", out)
	}
	// Without --interactive the app's stdin is /dev/null, as in rkt.
	cmd = c.Cmd("--insecure-options=image", "run", aci)
	cmd.Stdin = strings.NewReader("not for the pod\n")
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if len(out) != 0 {
		t.Errorf("stdout = %q, want nothing: stdin must be /dev/null without --interactive", out)
	}
}

// TestPodDiesWithRkt kills `rkt run` with SIGKILL and checks that no process
// of the pod survives it, then that gc removes what the pod left.
func TestPodDiesWithRkt(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/sleeper")
	p := c.Start(t, "--insecure-options=image", "run", aci, "--", "--print-msg=started", "--sleep=1h")
	p.WaitOutput(t, "started", 30*time.Second)
	pid := p.Pid()
	kids := descendants(pid)
	if len(kids) == 0 {
		t.Fatalf("rkt run (pid %d) has no children", pid)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	p.Wait(t, 10*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		alive := 0
		for _, k := range kids {
			if syscall.Kill(k, 0) == nil && !isZombie(k) {
				alive++
			}
		}
		if alive == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pod processes outlived rkt run", alive)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.MustRun(t, "gc", "--grace-period=0s")
	if pods := podDirs(t, c); len(pods) != 0 {
		t.Errorf("gc left pods: %v", pods)
	}
}

func descendants(pid int) []int {
	var out []int
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(pid) + "/children")
	if err != nil {
		return nil
	}
	for _, f := range strings.Fields(string(b)) {
		k, _ := strconv.Atoi(f)
		out = append(out, k)
		out = append(out, descendants(k)...)
	}
	return out
}

func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] == "Z"
}

func TestUnknownFlagIsUsageError(t *testing.T) {
	c := testutil.NewCtx(t)
	r := c.Run(t, "run", "--no-such-flag", "x")
	wantExit(t, r, 2)
	r = c.Run(t, "fetch", "--bogus")
	wantExit(t, r, 2)
}

func TestMissingStage1(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/nostage1")
	r := runInsecure(t, c, "--stage1-path="+filepath.Join(t.TempDir(), "missing.aci"), aci)
	wantExit(t, r, 254)
	oneLineError(t, r, "missing.aci")
	if pods := podDirs(t, c); len(pods) != 0 {
		t.Errorf("pods left behind: %v", pods)
	}
}

func TestThirdPartyStage1(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	stub := testutil.StubStage1(t)
	aci := inspectACI(t, "rkt-ng.test/forstub", testutil.WithExec("/inspect", "--exit-code=5"))
	// The stub has no networking and refuses any network but the host's.
	r := runInsecure(t, c, "--stage1-path="+stub, "--net=host", aci)
	wantExit(t, r, 5)
	if !strings.Contains(r.Stdout, "stub stage1 ran: ") {
		t.Errorf("the stub stage1 did not run\n%s", r)
	}
	// Interface version 5 does not know --hostname (v2 does) but does know
	// everything up to --dns-conf-mode; --ipc (v6) is dropped with a warning.
	r = runInsecure(t, c, "--stage1-path="+stub, "--net=host", "--ipc=private", aci)
	wantExit(t, r, 5)
	if strings.Contains(r.Stdout, "--ipc") {
		t.Errorf("--ipc reached a version 5 stage1\n%s", r)
	}
	// The stub does not enforce rkt-ng's image privilege policy: stage0
	// refuses an image's privilege-granting isolators for it, unless the
	// user grants them.
	greedy := inspectACI(t, "rkt-ng.test/greedyforstub", testutil.WithExec("/inspect", "--exit-code=5"),
		testutil.WithIsolator("os/linux/capabilities-retain-set", `{"set":["CAP_SYS_ADMIN"]}`))
	r = runInsecure(t, c, "--stage1-path="+stub, "--net=host", greedy)
	wantExit(t, r, 254)
	oneLineError(t, r, "does not enforce", "os/linux/capabilities-retain-set")
	r = runInsecure(t, c, "--stage1-path="+stub, "--net=host", greedy, "--caps-retain=CAP_SYS_ADMIN")
	wantExit(t, r, 5)
}

func TestRunGPGSignedImage(t *testing.T) {
	testutil.RequireRoot(t)
	gpg := testutil.RequireCommand(t, "gpg")
	c := testutil.NewCtx(t)
	home := t.TempDir()
	g := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(gpg, append([]string{"--homedir", home, "--batch", "--quiet", "--passphrase", ""}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gpg %v: %v", args, err)
		}
		return out
	}
	g("--quick-gen-key", "Signer <signer@example.com>", "ed25519", "sign", "never")
	pub := filepath.Join(t.TempDir(), "pub.asc")
	os.WriteFile(pub, g("--armor", "--export"), 0o644)
	aci := inspectACI(t, "example.com/gpg-signed")
	g("--armor", "--detach-sign", aci)
	c.MustRun(t, "trust", "--prefix=example.com/gpg-signed", "--skip-fingerprint-review", pub)
	r := c.Run(t, "run", aci, "--", "--exit-code=3")
	wantExit(t, r, 3)
}
