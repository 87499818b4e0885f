package tests

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// crictlIn is crictl with stdin.
func (s *criServer) crictlIn(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	bin := criTool(t, "CRICTL", "make cri-tools")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ep := "unix://" + s.sock
	cmd := exec.CommandContext(ctx, bin, append([]string{"--runtime-endpoint=" + ep, "--image-endpoint=" + ep, "--timeout=1m"}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestCRIStreamsServer drives rkt-cri's streaming calls and its log
// rotation end to end: crictl exec with stdin (SPDY), ExecSync's exit code
// and timeout over gRPC, crictl attach to a stdin_once container (whose
// shell then ends), PortForward to the pod's web server (websocket), and
// ReopenContainerLog after the kubelet's kind of rotation.
func TestCRIStreamsServer(t *testing.T) {
	s := startCRIWithImages(t)
	dir := t.TempDir()
	logDir := filepath.Join(dir, "logs")

	podCfg := criWriteJSON(t, dir, "pod.json", map[string]any{
		"metadata":      map[string]any{"name": "streams", "namespace": "streams-test", "uid": "5e7a1c2d-streams", "attempt": 1},
		"log_directory": logDir,
		"linux":         map[string]any{},
	})
	podID := s.crictl(t, "runp", podCfg)
	webID := s.crictl(t, "create", podID, criWriteJSON(t, dir, "web.json", map[string]any{
		"metadata": map[string]any{"name": "web"},
		"image":    map[string]any{"image": testutil.CRIWebServerImage},
		"linux":    map[string]any{},
	}), podCfg)
	tickerID := s.crictl(t, "create", podID, criWriteJSON(t, dir, "ticker.json", map[string]any{
		"metadata": map[string]any{"name": "ticker"},
		"image":    map[string]any{"image": testutil.CRIDefaultImage},
		"command":  []string{"sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"},
		"log_path": "ticker/0.log",
		"linux":    map[string]any{},
	}), podCfg)
	shellID := s.crictl(t, "create", podID, criWriteJSON(t, dir, "shell.json", map[string]any{
		"metadata":   map[string]any{"name": "shell"},
		"image":      map[string]any{"image": testutil.CRIDefaultImage},
		"command":    []string{"sh"},
		"stdin":      true,
		"stdin_once": true,
		"log_path":   "shell.log",
		"linux":      map[string]any{},
	}), podCfg)
	for _, id := range []string{webID, tickerID, shellID} {
		s.crictl(t, "start", id)
	}

	// crictl exec -i: stdin through the SPDY stream.
	out, err := s.crictlIn(t, "through spdy\n", "exec", "-i", tickerID, "sh", "-c", "read x; echo got:$x")
	if err != nil || !strings.Contains(out, "got:through spdy") {
		t.Errorf("crictl exec -i: %v\n%s", err, out)
	}

	cl, err := dialCRI(s.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := cl.rt.ExecSync(ctx, &runtime.ExecSyncRequest{ContainerId: tickerID[:12], Cmd: []string{"sh", "-c", "echo out; exit 5"}})
	if err != nil || string(r.Stdout) != "out\n" || r.ExitCode != 5 {
		t.Errorf("ExecSync: %v %+v", err, r)
	}
	if _, err := cl.rt.ExecSync(ctx, &runtime.ExecSyncRequest{ContainerId: tickerID, Cmd: []string{"sleep", "60"}, Timeout: 1}); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("ExecSync past its timeout: %v, want DeadlineExceeded", err)
	}

	// crictl attach -i: the shell reads what is sent, and ends with it.
	out, err = s.crictlIn(t, "echo attached-$((6*7))\n", "attach", "-i", shellID)
	if err != nil || !strings.Contains(out, "attached-42") {
		t.Errorf("crictl attach -i: %v\n%s", err, out)
	}
	criWaitFor(t, "the attached shell exits once its stdin ended", time.Minute, func() bool {
		return strings.Contains(s.crictl(t, "inspect", shellID), "CONTAINER_EXITED")
	})
	if lines := criLogLines(t, filepath.Join(logDir, "shell.log")); len(lines) == 0 || lines[0] != "stdout F attached-42" {
		t.Errorf("shell log: %q", lines)
	}

	// PortForward to the web server on the pod's port 80 (websocket).
	pf, err := cl.rt.PortForward(ctx, &runtime.PortForwardRequest{PodSandboxId: podID[:8], Port: []int32{80}})
	if err != nil {
		t.Fatalf("PortForward: %v", err)
	}
	var page []byte
	criWaitFor(t, "the web server answers through the port forward", time.Minute, func() bool {
		ws := wsDial(t, pf.Url+"?port=80", "v4.channel.k8s.io")
		defer ws.Close()
		websocket.Message.Send(ws, append([]byte{0}, "GET / HTTP/1.0\r\n\r\n"...))
		page = wsRead(t, ws, func(got map[byte][]byte) bool { return bytes.Contains(got[0], []byte("It works")) })[0]
		return bytes.Contains(page, []byte("It works"))
	})
	// The URL is one-time: a new stream needs a new PortForward.

	// Rotation: rename the log away, ReopenContainerLog, a new file fills.
	log := filepath.Join(logDir, "ticker", "0.log")
	criWaitFor(t, "the ticker logs", time.Minute, func() bool { b, _ := os.ReadFile(log); return bytes.Contains(b, []byte("tick 3")) })
	if err := os.Rename(log, log+".20261207-155959"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.rt.ReopenContainerLog(ctx, &runtime.ReopenContainerLogRequest{ContainerId: tickerID}); err != nil {
		t.Fatalf("ReopenContainerLog: %v", err)
	}
	criWaitFor(t, "the reopened log fills", time.Minute, func() bool { b, _ := os.ReadFile(log); return bytes.Contains(b, []byte("stdout F tick")) })
	if _, err := cl.rt.ReopenContainerLog(ctx, &runtime.ReopenContainerLogRequest{ContainerId: shellID}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("ReopenContainerLog of an exited container: %v, want FailedPrecondition", err)
	}
	if _, err := cl.rt.ReopenContainerLog(ctx, &runtime.ReopenContainerLogRequest{ContainerId: strings.Repeat("cd", 32)}); status.Code(err) != codes.NotFound {
		t.Errorf("ReopenContainerLog of an unknown container: %v, want NotFound", err)
	}
	s.crictl(t, "stopp", podID)
	s.crictl(t, "rmp", podID)
}
