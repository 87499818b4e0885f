package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// startSandbox starts `rkt app sandbox` and waits until it is ready; it
// returns the process and the pod UUID.
func startSandbox(t *testing.T, c *testutil.Ctx, args ...string) (*testutil.Process, string) {
	t.Helper()
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	p := c.Start(t, append([]string{"app", "sandbox", "--uuid-file-save=" + uuidFile}, args...)...)
	deadline := time.Now().Add(60 * time.Second)
	var uuid string
	for {
		if b, err := os.ReadFile(uuidFile); err == nil && len(b) > 0 {
			uuid = string(b)
			break
		}
		if p.Exited() || time.Now().After(deadline) {
			t.Fatalf("sandbox did not start\n%s", p.Wait(t, 10*time.Second))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := c.Run(t, "status", "--wait-ready=60s", uuid); r.ExitCode != 0 {
		t.Fatalf("sandbox not ready\n%s\nsandbox:\n%s", r, p.Stderr())
	}
	return p, uuid
}

// TestAppSandbox: a sandbox runs with no apps until it is stopped (rkt stop
// or SIGTERM, exit 0); app list and app status work on it and refuse other
// pods and bad names with one line.
func TestAppSandbox(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	p, uuid := startSandbox(t, c, "--net=host")
	st := c.MustRun(t, "status", uuid)
	if !strings.Contains(st.Stdout, "state=running") {
		t.Errorf("status of a sandbox:\n%s", st)
	}
	if r := c.MustRun(t, "app", "list", "--no-legend", uuid); strings.TrimSpace(r.Stdout) != "" {
		t.Errorf("app list of an empty sandbox:\n%s", r)
	}
	r := c.MustRun(t, "app", "list", "--format=json", uuid)
	var apps []json.RawMessage
	if err := json.Unmarshal([]byte(r.Stdout), &apps); err != nil || len(apps) != 0 {
		t.Errorf("app list --format=json of an empty sandbox: %v\n%s", err, r)
	}
	r = c.Run(t, "app", "status", "--app=web", uuid)
	wantExit(t, r, 254)
	oneLineError(t, r, "web", "no such app")
	r = c.Run(t, "app", "status", "--app=Bad/Name", uuid)
	wantExit(t, r, 254)
	oneLineError(t, r, "invalid app name")
	// An app's exit does not matter, nothing does: it stays.
	time.Sleep(time.Second)
	if p.Exited() {
		t.Fatalf("sandbox exited by itself\n%s", p.Wait(t, time.Second))
	}
	c.MustRun(t, "stop", uuid)
	if r := p.Wait(t, 30*time.Second); r.ExitCode != 0 {
		t.Errorf("rkt stop of a sandbox: exit %d, want 0\n%s", r.ExitCode, r)
	}

	// SIGTERM to the sandbox process ends it too.
	p, uuid = startSandbox(t, c, "--net=none")
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if r := p.Wait(t, 30*time.Second); r.ExitCode != 0 {
		t.Errorf("SIGTERM to a sandbox: exit %d, want 0\n%s", r.ExitCode, r)
	}
	st = c.MustRun(t, "status", "--wait=10s", uuid)
	if !strings.Contains(st.Stdout, "exited=true") {
		t.Errorf("status after SIGTERM:\n%s", st)
	}

	// A pod of rkt run is not a sandbox.
	aci := inspectACI(t, "rkt-ng.test/plain")
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	wantExit(t, runInsecure(t, c, "--net=none", "--uuid-file-save="+uuidFile, aci), 0)
	b, _ := os.ReadFile(uuidFile)
	r = c.Run(t, "app", "list", string(b))
	wantExit(t, r, 254)
	oneLineError(t, r, "not a sandbox")
}
