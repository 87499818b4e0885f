package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// TestGCBesideConcurrentRuns runs `rkt gc --grace-period=0s` in a loop while
// two pods are prepared, run and exit: gc must never break a live pod, both
// pods must report their own exit code, and once they are done gc collects
// everything: pods, mounts (the Ctx cleanup checks) and tree store entries.
func TestGCBesideConcurrentRuns(t *testing.T) {
	testutil.RequireRoot(t)
	if testing.Short() {
		t.Skip("slow: runs gc in a loop beside two pods; run without -short")
	}
	c := testutil.NewCtx(t)
	a := inspectACI(t, "rkt-ng.test/conc-a")
	b := inspectACI(t, "rkt-ng.test/conc-b")

	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	// gcErrs and gcRuns are guarded by mu.
	var mu sync.Mutex
	var gcErrs []string
	gcRuns := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			cmd := c.Cmd("gc", "--grace-period=0s", "--expire-prepared=0s")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			mu.Lock()
			gcRuns++
			if err != nil {
				gcErrs = append(gcErrs, fmt.Sprintf("%v: %s", err, stderr.String()))
			}
			mu.Unlock()
		}
	}()
	for round := range 3 {
		pa := c.Start(t, "--insecure-options=image", "run", "--net=host", a, "--", "--sleep=1500ms", "--exit-code=3")
		pb := c.Start(t, "--insecure-options=image", "run", "--net=host", b, "--", "--sleep=1s", "--print-msg=b done", "--exit-code=4")
		ra := pa.Wait(t, 2*time.Minute)
		rb := pb.Wait(t, 2*time.Minute)
		if ra.ExitCode != 3 || rb.ExitCode != 4 {
			t.Errorf("round %d: exit codes %d and %d, want 3 and 4\n--- a: %s\n--- b: %s", round, ra.ExitCode, rb.ExitCode, ra, rb)
		}
		if !strings.Contains(rb.Stdout, "b done") {
			t.Errorf("round %d: pod b's output is missing:\n%s", round, rb)
		}
	}
	stop()
	wg.Wait()
	if len(gcErrs) > 0 {
		t.Errorf("%d of %d gc runs failed; first: %s", len(gcErrs), gcRuns, gcErrs[0])
	}
	t.Logf("%d gc runs beside the pods", gcRuns)
	c.MustRun(t, "gc", "--grace-period=0s")
	if pods := podDirs(t, c); len(pods) != 0 {
		t.Errorf("gc left pods: %v", pods)
	}
	if trees := globAll(t, c, "cas/tree/*"); len(trees) != 0 {
		t.Errorf("gc left tree store entries: %v", trees)
	}
}

func TestGCStatesAndFlags(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/gcflags")
	// A running pod, an exited pod and a prepared pod.
	p := c.Start(t, "--insecure-options=image", "run", "--net=host", "--pod-name=alive", aci, "--", "--print-msg=up", "--silent-sigterm", "--sleep=1h")
	p.WaitOutput(t, "up", 30*time.Second)
	// By UUID: a pod marked as garbage is no longer found by its name.
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	wantExit(t, runInsecure(t, c, "--net=host", "--uuid-file-save="+uuidFile, aci), 0)
	b, err := os.ReadFile(uuidFile)
	if err != nil {
		t.Fatal(err)
	}
	done := string(b)
	prepared := strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "prepare", "--quiet", aci).Stdout)
	state := func(ref string) string {
		t.Helper()
		st := c.MustRun(t, "status", ref)
		for _, l := range strings.Split(st.Stdout, "\n") {
			if s, ok := strings.CutPrefix(l, "state="); ok {
				return s
			}
		}
		t.Fatalf("status %s has no state line:\n%s", ref, st)
		return ""
	}

	// --mark-only marks the exited pod and removes nothing.
	r := c.MustRun(t, "gc", "--mark-only")
	if r.Stdout != "" {
		t.Errorf("gc --mark-only printed %q", r.Stdout)
	}
	if s := state(done); s != "exited garbage" {
		t.Errorf("exited pod after gc --mark-only: %q, want exited garbage", s)
	}
	// Within the grace period a marked pod stays.
	c.MustRun(t, "gc", "--grace-period=1h")
	if s := state(done); s != "exited garbage" {
		t.Errorf("exited pod after gc --grace-period=1h: %q", s)
	}
	// Past it, it goes; the prepared pod stays until --expire-prepared.
	r = c.MustRun(t, "gc", "--grace-period=0s")
	if !strings.Contains(r.Stdout, "Garbage collecting pod") {
		t.Errorf("gc output: %q", r.Stdout)
	}
	wantExit(t, c.Run(t, "status", done), 254)
	if s := state(prepared); s != "prepared" {
		t.Errorf("prepared pod after gc: %q", s)
	}
	if s := state("alive"); s != "running" {
		t.Errorf("running pod after gc: %q", s)
	}
	c.MustRun(t, "gc", "--grace-period=0s", "--expire-prepared=0s")
	wantExit(t, c.Run(t, "status", prepared), 254)
	// The running pod is untouched and still works.
	if s := state("alive"); s != "running" {
		t.Errorf("running pod after gc --expire-prepared=0s: %q", s)
	}
	if r := c.Run(t, "enter", "alive", "/inspect", "--print-msg=inside"); r.ExitCode != 0 || !strings.Contains(r.Stdout, "inside") {
		t.Errorf("enter into the running pod after gc: %s", r)
	}
	c.MustRun(t, "stop", "alive")
	wantExit(t, p.Wait(t, 20*time.Second), 0)
	// gc is idempotent: the first run collects, the next has nothing to do.
	c.MustRun(t, "gc", "--grace-period=0s")
	if r := c.MustRun(t, "gc", "--grace-period=0s"); r.Stdout != "" {
		t.Errorf("a second gc printed %q", r.Stdout)
	}
	if pods := podDirs(t, c); len(pods) != 0 {
		t.Errorf("gc left pods: %v", pods)
	}
	if trees := globAll(t, c, "cas/tree/*"); len(trees) != 0 {
		t.Errorf("gc left tree store entries: %v", trees)
	}
}

// TestGCAfterKilledPrepare kills `rkt prepare` and `rkt run` at several
// moments of their work and checks that gc cleans up completely.
func TestGCAfterKilledPrepare(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/killed")
	c.MustRun(t, "--insecure-options=image", "fetch", aci)
	for _, delay := range []time.Duration{5 * time.Millisecond, 20 * time.Millisecond, 60 * time.Millisecond, 150 * time.Millisecond} {
		cmd := exec.Command(c.Rkt, c.Args("--insecure-options=image", "run", "--net=host", aci, "--", "--sleep=1h")...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		cmd.Process.Kill()
		cmd.Wait()
	}
	// An embryo or aborted prepare is collected; a pod killed while it ran
	// is exited and collected too.
	deadline := time.Now().Add(75 * time.Second) // an orphaned embryo waits a minute
	for {
		c.MustRun(t, "gc", "--grace-period=0s", "--expire-prepared=0s")
		pods := podDirs(t, c)
		if len(pods) == 0 {
			break
		}
		if time.Now().After(deadline) {
			var states []string
			for _, p := range pods {
				states = append(states, filepath.Base(filepath.Dir(p))+"/"+filepath.Base(p))
			}
			t.Fatalf("gc did not collect %v", states)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if trees := globAll(t, c, "cas/tree/*"); len(trees) != 0 {
		t.Errorf("gc left tree store entries: %v", trees)
	}
	if _, err := os.Stat(filepath.Join(c.DataDir, "pods")); errors.Is(err, os.ErrNotExist) {
		t.Errorf("the pods directory is gone")
	}
}
