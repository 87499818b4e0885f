package tests

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// TestEnvTERM reproduces rkt 1.30's TERM rules (tests/rkt_env_test.go,
// stage1/enterexec/enterexec.c): an app gets TERM only from its image,
// --set-env or --inherit-env, never from rkt run's own environment, and
// `rkt enter` passes the caller's TERM to the command (vt100 when the caller
// has none), over whatever TERM the app has.
func TestEnvTERM(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/term")
	withTERM := func(term string, args ...string) testutil.Result {
		t.Helper()
		cmd := c.CmdContext(t.Context(), args...)
		cmd.Env = os.Environ()
		for i, kv := range cmd.Env {
			if strings.HasPrefix(kv, "TERM=") {
				cmd.Env = append(cmd.Env[:i:i], cmd.Env[i+1:]...)
				break
			}
		}
		if term != "" {
			cmd.Env = append(cmd.Env, "TERM="+term)
		}
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		t.Logf("run: TERM=%q rkt %s", term, strings.Join(args, " "))
		err := cmd.Run()
		if err != nil && cmd.ProcessState == nil {
			t.Fatalf("rkt %s: %v", strings.Join(args, " "), err)
		}
		return testutil.Result{Stdout: out.String(), Stderr: errb.String(), ExitCode: cmd.ProcessState.ExitCode()}
	}

	t.Run("set-env", func(t *testing.T) {
		r := withTERM("xterm", "--insecure-options=image", "run", "--net=none", "--set-env=TERM=dumb", aci, "--", "--print-env=TERM")
		wantExit(t, r, 0)
		if !strings.Contains(r.Stdout, "TERM=dumb\n") {
			t.Errorf("--set-env=TERM=dumb: the app has\n%s", r)
		}
	})
	t.Run("not from rkt run", func(t *testing.T) {
		r := withTERM("xterm", "--insecure-options=image", "run", "--net=none", aci, "--", "--print-env=TERM")
		wantExit(t, r, 0)
		if strings.Contains(r.Stdout, "TERM=xterm") {
			t.Errorf("the app got rkt run's TERM without --inherit-env\n%s", r)
		}
	})
	t.Run("enter", func(t *testing.T) {
		p := c.Start(t, "--insecure-options=image", "run", "--net=none", "--pod-name=term", "--set-env=TERM=xterm", aci,
			"--", "--print-msg=up", "--sleep=1h")
		p.WaitOutput(t, "up", 30*time.Second)
		for _, tc := range []struct{ caller, want string }{
			{"dumb", "TERM=dumb\n"},
			{"screen-256color", "TERM=screen-256color\n"},
			{"", "TERM=vt100\n"},
		} {
			r := withTERM(tc.caller, "enter", "term", "/inspect", "--print-env=TERM", "--print-env=AC_APP_NAME")
			wantExit(t, r, 0)
			if !strings.Contains(r.Stdout, tc.want) || !strings.Contains(r.Stdout, "AC_APP_NAME=term") {
				t.Errorf("rkt enter with TERM=%q: want %q and the app's environment\n%s", tc.caller, tc.want, r)
			}
		}
		p.Signal(syscall.SIGTERM)
		p.Wait(t, 20*time.Second)
	})
}

// TestRktErrorTexts checks the words of rkt 1.30's errors for pod flags:
// `--interactive` with two images ("interactive option only supports one
// image", rkt/run.go, before anything is fetched or prepared) and an unknown
// `--ipc` ("unknown value for --ipc parameter", stage1/init/init.go), both
// exit 254.
func TestRktErrorTexts(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/texts")
	r := runInsecure(t, c, "--net=none", "--interactive", aci, "---", aci, "--name=second")
	wantExit(t, r, 254)
	oneLineError(t, r, "interactive option only supports one image")
	if l := c.MustRun(t, "list", "--no-legend"); strings.TrimSpace(l.Stdout) != "" {
		t.Errorf("a pod was made for a refused --interactive:\n%s", l)
	}
	r = runInsecure(t, c, "--net=none", "--ipc=bogus", aci)
	wantExit(t, r, 254)
	oneLineError(t, r, "--ipc=bogus", "unknown value for --ipc parameter")
}
