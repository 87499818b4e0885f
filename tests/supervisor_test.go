package tests

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// TestSupervisorContract plays systemd without systemd: it starts `rkt run`
// with a NOTIFY_SOCKET, waits for READY=1 and MAINPID, stops the pod with
// SIGTERM and checks the app saw SIGTERM (not SIGKILL), post-stop ran, rkt
// exited 0 and no process of the pod survived.
func TestSupervisorContract(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	sockPath := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	shared := t.TempDir()
	aci := testutil.NewACI(t, "rkt-ng.test/service", testutil.WithInspect(), testutil.WithBusybox(),
		testutil.WithMountPoint("shared", "/shared", false),
		testutil.WithEventHandler("post-stop", "/bin/sh", "-c", "echo poststop > /shared/poststop"))
	cmd := c.Cmd("--insecure-options=image", "run", "--net=host", "--volume=shared,kind=host,source="+shared,
		aci, "--exec=/inspect", "--", "--silent-sigterm", "--print-msg=up", "--sleep=1h")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sockPath)
	var out lockedBuffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 4096)
	n, _, err := conn.ReadFromUnix(buf)
	if err != nil {
		cmd.Process.Kill()
		<-done
		t.Fatalf("no readiness message: %v\n%s", err, out.String())
	}
	msg := string(buf[:n])
	if !strings.Contains(msg, "READY=1") || !strings.Contains(msg, "MAINPID="+strconv.Itoa(cmd.Process.Pid)) {
		t.Errorf("readiness message %q, want READY=1 and MAINPID=%d", msg, cmd.Process.Pid)
	}
	// Readiness means every app was started; wait until the app itself is
	// up (its SIGTERM handler installed) before stopping it.
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), "up"); {
		if time.Now().After(deadline) {
			t.Fatalf("the app never came up:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	kids := descendants(cmd.Process.Pid)
	cmd.Process.Signal(syscall.SIGTERM)
	start := time.Now()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("rkt run did not exit after SIGTERM\n%s", out.String())
	}
	if err != nil {
		t.Errorf("rkt run after SIGTERM: %v\n%s", err, out.String())
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("graceful stop took %v", el)
	}
	if !strings.Contains(out.String(), "got SIGTERM") {
		t.Errorf("the app did not see SIGTERM:\n%s", out.String())
	}
	if b, _ := os.ReadFile(filepath.Join(shared, "poststop")); string(b) != "poststop\n" {
		t.Errorf("post-stop did not run (file: %q)", b)
	}
	for _, k := range kids {
		if syscall.Kill(k, 0) == nil && !isZombie(k) {
			t.Errorf("pod process %d survived", k)
		}
	}
}

// TestSignalsToMainOnly checks that SIGHUP sent to rkt run, and signals
// sent with rkt kill, reach the apps' main processes and nothing else.
func TestSignalsToMainOnly(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := testutil.NewACI(t, "rkt-ng.test/hup", testutil.WithBusybox())
	script := `trap 'echo main got HUP' HUP; trap 'echo main got USR1' USR1; trap 'exit 0' TERM;
(trap 'echo child got HUP' HUP; trap 'echo child got USR1' USR1; while :; do sleep 0.1; done) &
echo started; while :; do sleep 0.1; done`
	p := c.Start(t, "--insecure-options=image", "run", "--net=host", "--pod-name=hup", aci, "--exec=/bin/sh", "--", "-c", script)
	p.WaitOutput(t, "started", 30*time.Second)
	time.Sleep(300 * time.Millisecond)
	p.Signal(syscall.SIGHUP)
	p.WaitOutput(t, "main got HUP", 10*time.Second)
	c.MustRun(t, "kill", "--signal=USR1", "hup")
	p.WaitOutput(t, "main got USR1", 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	if strings.Contains(p.Stdout(), "child got") {
		t.Errorf("a non-main process of the pod got a forwarded signal:\n%s", p.Stdout())
	}
	wantExit(t, c.Run(t, "kill", "--signal=NOPE", "hup"), 254)
	c.MustRun(t, "stop", "hup")
	p.Wait(t, 30*time.Second)
}

func TestLogs(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := testutil.NewACI(t, "rkt-ng.test/logger", testutil.WithBusybox())
	p := c.Start(t, "--insecure-options=image", "run", "--net=host", "--pod-name=lg", aci, "--exec=/bin/sh", "--", "-c",
		"echo one; echo two >&2; echo ready; sleep 1; echo three; exit 0")
	p.WaitOutput(t, "ready", 30*time.Second)
	// While it runs.
	r := c.MustRun(t, "logs", "lg")
	if !strings.Contains(r.Stdout, "one\n") || !strings.Contains(r.Stdout, "two\n") {
		t.Errorf("logs of a running pod:\n%s", r.Stdout)
	}
	f := c.Run(t, "logs", "--follow", "lg")
	if !strings.Contains(f.Stdout, "three") {
		t.Errorf("logs --follow did not see later output:\n%s", f.Stdout)
	}
	p.Wait(t, 30*time.Second)
	// After exit, with --tail.
	r = c.MustRun(t, "logs", "--tail=1", "lg")
	if strings.TrimSpace(r.Stdout) != "three" {
		t.Errorf("logs --tail=1 after exit = %q, want three", r.Stdout)
	}
	r = c.MustRun(t, "logs", "--since=1h", "lg")
	if !strings.Contains(r.Stdout, "one") {
		t.Errorf("logs --since=1h lost output:\n%s", r.Stdout)
	}
	// The output also went to rkt run's own stdout and stderr.
	if !strings.Contains(p.Stdout(), "one") || !strings.Contains(p.Stderr(), "two") {
		t.Errorf("app output did not reach rkt's stdout/stderr:\n%s\n%s", p.Stdout(), p.Stderr())
	}
}

// lockedBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
