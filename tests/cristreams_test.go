package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/rkt-ng/rkt/stage0"
	"github.com/rkt-ng/rkt/stage0/cri/streams"
	"github.com/rkt-ng/rkt/tests/testutil"
)

// wsDial opens a websocket to a streaming URL with a channel subprotocol.
func wsDial(t *testing.T, rawURL, protocol string) *websocket.Conn {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Scheme = "ws"
	cfg, err := websocket.NewConfig(u.String(), "http://"+u.Host)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Protocol = []string{protocol}
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatalf("websocket %s: %v", u, err)
	}
	ws.SetDeadline(time.Now().Add(60 * time.Second))
	return ws
}

// wsRead reads channel messages until the connection ends, or until stop
// says so, and returns the data of each channel.
func wsRead(t *testing.T, ws *websocket.Conn, stop func(map[byte][]byte) bool) map[byte][]byte {
	t.Helper()
	got := map[byte][]byte{}
	for stop == nil || !stop(got) {
		var msg []byte
		if err := websocket.Message.Receive(ws, &msg); err != nil {
			break
		}
		if len(msg) > 0 {
			got[msg[0]] = append(got[msg[0]], msg[1:]...)
		}
	}
	return got
}

// TestCRIStreams runs the CRI streaming server (stage0/cri/streams) against
// a sandbox on the default network with one running app: ExecSync's
// output, exit code and timeout (the timed-out command does not linger in
// the pod), Exec with stdin and with a terminal (its size set by a resize),
// an Exec's exit code, PortForward to a server listening on the pod's own
// loopback, and the gRPC codes of bad requests.
func TestCRIStreams(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := testutil.NewACI(t, "rkt-ng.test/cri-streams", testutil.WithInspect(), testutil.WithBusybox())
	p, uuid := startSandbox(t, c, "--net=default")
	defer func() {
		c.Run(t, "stop", uuid)
		p.Wait(t, 30*time.Second)
	}()
	c.MustRun(t, "--insecure-options=image", "app", "add", uuid, aci, "--name=web", "--", "--serve-http=127.0.0.1:8080")
	c.MustRun(t, "app", "start", "--app=web", uuid)
	waitState(t, c, uuid, "web", "running")

	// An app with its stdin kept open for attach (closed after the first
	// client's stdin ends).
	c.MustRun(t, "--insecure-options=image", "app", "add", "--stdin", "--stdin-once", uuid, aci, "--name=shell", "--exec=/bin/sh")
	c.MustRun(t, "app", "start", "--app=shell", uuid)
	waitState(t, c, uuid, "shell", "running")
	// An app on a terminal of its own.
	c.MustRun(t, "--insecure-options=image", "app", "add", "--stdin", "--tty", uuid, aci, "--name=term", "--exec=/bin/sh")
	c.MustRun(t, "app", "start", "--app=term", uuid)
	waitState(t, c, uuid, "term", "running")

	const cid = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	const shellID = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	const termID = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	resolve := func(id string) (string, string, error) {
		switch id {
		case cid:
			return uuid, "web", nil
		case shellID:
			return uuid, "shell", nil
		case termID:
			return uuid, "term", nil
		}
		return "", "", status.Errorf(codes.NotFound, "no container %q", id)
	}
	cfg := &stage0.Config{Dir: c.DataDir, LocalConfig: c.LocalConfig, SystemConfig: c.SystemConfig, UserConfig: c.UserConfig}
	s, err := streams.New(cfg, "127.0.0.1:0", resolve)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// ExecSync: output and exit code.
	r, err := s.ExecSync(ctx, &runtime.ExecSyncRequest{ContainerId: cid, Cmd: []string{"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}})
	if err != nil {
		t.Fatalf("ExecSync: %v", err)
	}
	if string(r.Stdout) != "out\n" || string(r.Stderr) != "err\n" || r.ExitCode != 3 {
		t.Errorf("ExecSync = stdout %q stderr %q exit %d, want out, err, 3", r.Stdout, r.Stderr, r.ExitCode)
	}
	// Confined like the app: the command sees the app's root, not the host's.
	r, err = s.ExecSync(ctx, &runtime.ExecSyncRequest{ContainerId: cid, Cmd: []string{"/bin/ls", "/"}})
	if err != nil || !strings.Contains(string(r.Stdout), "inspect") {
		t.Errorf("ExecSync ls /: %v %q", err, r.GetStdout())
	}
	// Timeout: DeadlineExceeded, and the command is killed in the pod.
	start := time.Now()
	_, err = s.ExecSync(ctx, &runtime.ExecSyncRequest{ContainerId: cid, Cmd: []string{"/bin/sleep", "417"}, Timeout: 1})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("ExecSync past its timeout: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("ExecSync with a 1s timeout took %v", d)
	}
	// Gone when ExecSync answers, not some time later (critest looks at
	// once).
	r, err = s.ExecSync(ctx, &runtime.ExecSyncRequest{ContainerId: cid, Cmd: []string{"/bin/ps"}})
	if err != nil {
		t.Fatalf("ExecSync ps: %v", err)
	}
	if strings.Contains(string(r.Stdout), "sleep 417") {
		t.Fatalf("the timed-out command still runs in the pod after ExecSync answered:\n%s", r.Stdout)
	}
	// Bad requests.
	for _, tc := range []struct {
		req  *runtime.ExecSyncRequest
		want codes.Code
	}{
		{&runtime.ExecSyncRequest{ContainerId: "nope", Cmd: []string{"true"}}, codes.NotFound},
		{&runtime.ExecSyncRequest{ContainerId: cid}, codes.InvalidArgument},
		{&runtime.ExecSyncRequest{ContainerId: "", Cmd: []string{"true"}}, codes.InvalidArgument},
		{&runtime.ExecSyncRequest{ContainerId: cid, Cmd: []string{"true"}, Timeout: -1}, codes.InvalidArgument},
	} {
		if _, err := s.ExecSync(ctx, tc.req); status.Code(err) != tc.want {
			t.Errorf("ExecSync(%v) = %v, want %v", tc.req, err, tc.want)
		}
	}
	if _, err := s.Exec(ctx, &runtime.ExecRequest{ContainerId: "nope", Cmd: []string{"true"}, Stdout: true}); status.Code(err) != codes.NotFound {
		t.Errorf("Exec of an unknown container: %v, want NotFound", err)
	}
	if _, err := s.Exec(ctx, &runtime.ExecRequest{ContainerId: cid, Cmd: []string{"true"}, Tty: true, Stderr: true}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Exec with tty and stderr: %v, want InvalidArgument", err)
	}
	if _, err := s.PortForward(ctx, &runtime.PortForwardRequest{PodSandboxId: "00000000-0000-0000-0000-000000000000"}); status.Code(err) != codes.NotFound {
		t.Errorf("PortForward of an unknown sandbox: %v, want NotFound", err)
	}

	// Exec with stdin (v4 websocket: channel 0 in, 1 out, 3 status).
	er, err := s.Exec(ctx, &runtime.ExecRequest{ContainerId: cid, Cmd: []string{"/bin/sh", "-c", "read line; echo got:$line"}, Stdin: true, Stdout: true})
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	ws := wsDial(t, er.Url, "v4.channel.k8s.io")
	websocket.Message.Send(ws, append([]byte{0}, "hello through stdin\n"...))
	got := wsRead(t, ws, nil)
	ws.Close()
	if string(got[1]) != "got:hello through stdin\n" {
		t.Errorf("Exec read: stdout %q, want the stdin sent", got[1])
	}
	if !strings.Contains(string(got[3]), "Success") {
		t.Errorf("Exec read: status %q, want Success", got[3])
	}

	// An Exec's exit code comes in its status.
	er, err = s.Exec(ctx, &runtime.ExecRequest{ContainerId: cid, Cmd: []string{"/bin/sh", "-c", "exit 7"}, Stdout: true})
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	ws = wsDial(t, er.Url, "v4.channel.k8s.io")
	got = wsRead(t, ws, nil)
	ws.Close()
	var st struct {
		Reason  string
		Details struct {
			Causes []struct{ Type, Message string }
		}
	}
	json.Unmarshal(got[3], &st)
	if st.Reason != "NonZeroExitCode" || len(st.Details.Causes) == 0 || st.Details.Causes[0].Message != "7" {
		t.Errorf("Exec exit 7: status %s", got[3])
	}

	// Exec on a terminal, sized by a resize message (channel 4).
	er, err = s.Exec(ctx, &runtime.ExecRequest{ContainerId: cid, Cmd: []string{"/bin/sh", "-c", "i=0; while [ $i -lt 100 ] && ! /inspect --print-tty | grep -q 45x123; do i=$((i+1)); sleep 0.1; done; /inspect --print-tty"}, Stdin: true, Stdout: true, Tty: true})
	if err != nil {
		t.Fatalf("Exec tty: %v", err)
	}
	ws = wsDial(t, er.Url, "v4.channel.k8s.io")
	websocket.Message.Send(ws, append([]byte{4}, `{"Width":123,"Height":45}`...))
	got = wsRead(t, ws, nil)
	ws.Close()
	if out := string(got[1]); !strings.Contains(out, "TTY=yes") || !strings.Contains(out, "TTY_SIZE=45x123") {
		t.Errorf("Exec on a terminal printed %q, want TTY=yes and TTY_SIZE=45x123", out)
	}

	// Attach: the client's stdin goes to the app's, its output comes back;
	// when the client's stdin ends the app's does (stdin_once) and the
	// shell exits. An app added without stdin or CRI log cannot be
	// attached to.
	ar, err := s.Attach(ctx, &runtime.AttachRequest{ContainerId: shellID, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	ws = wsDial(t, ar.Url, "v4.channel.k8s.io")
	websocket.Message.Send(ws, append([]byte{0}, "echo hello from attach; echo to stderr >&2\n"...))
	got = wsRead(t, ws, func(got map[byte][]byte) bool {
		return strings.Contains(string(got[1]), "hello from attach") && strings.Contains(string(got[2]), "to stderr")
	})
	if !strings.Contains(string(got[1]), "hello from attach\n") || !strings.Contains(string(got[2]), "to stderr\n") {
		t.Errorf("Attach: stdout %q stderr %q", got[1], got[2])
	}
	ws.Close()
	if st := waitState(t, c, uuid, "shell", "exited"); st["exit_code"] != float64(0) {
		t.Errorf("the attached shell after its stdin ended: %v", st)
	}
	if _, err := s.Attach(ctx, &runtime.AttachRequest{ContainerId: shellID, Stdout: true, Tty: true}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Attach with a terminal to an app without one: %v, want FailedPrecondition", err)
	}
	// Attach to the app on a terminal: its size follows the client's.
	ar, err = s.Attach(ctx, &runtime.AttachRequest{ContainerId: termID, Stdin: true, Stdout: true, Tty: true})
	if err != nil {
		t.Fatalf("Attach with a terminal: %v", err)
	}
	ws = wsDial(t, ar.Url, "v4.channel.k8s.io")
	websocket.Message.Send(ws, append([]byte{4}, `{"Width":101,"Height":31}`...))
	// Ask until the answer has the size (the resize may land after the
	// first question).
	asked := make(chan struct{})
	stopAsking := make(chan struct{})
	go func() {
		defer close(asked)
		for {
			websocket.Message.Send(ws, append([]byte{0}, "/inspect --print-tty\n"...))
			select {
			case <-stopAsking:
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	got = wsRead(t, ws, func(got map[byte][]byte) bool { return strings.Contains(string(got[1]), "TTY_SIZE=31x101") })
	close(stopAsking)
	<-asked
	if out := string(got[1]); !strings.Contains(out, "TTY=yes") || !strings.Contains(out, "TTY_SIZE=31x101") {
		t.Errorf("Attach with a terminal: %q, want TTY=yes and TTY_SIZE=31x101", out)
	}
	websocket.Message.Send(ws, append([]byte{0}, "exit 4\n"...))
	wsRead(t, ws, nil)
	ws.Close()
	if st := waitState(t, c, uuid, "term", "exited"); st["exit_code"] != float64(4) {
		t.Errorf("the shell on its terminal after exit 4: %v", st)
	}
	waitLog(t, c, uuid, "term", "TTY_SIZE=31x101") // its terminal's output is logged too
	if _, err := s.Attach(ctx, &runtime.AttachRequest{ContainerId: cid, Stdin: true, Stdout: true}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Attach to an app added without stdin or CRI log: %v, want FailedPrecondition", err)
	}

	// PortForward to 127.0.0.1:8080 inside the pod's network namespace
	// (v4 websocket: the port as 2 bytes first, then channel 0 data).
	pr, err := s.PortForward(ctx, &runtime.PortForwardRequest{PodSandboxId: uuid, Port: []int32{8080}})
	if err != nil {
		t.Fatalf("PortForward: %v", err)
	}
	ws = wsDial(t, pr.Url+"?port=8080", "v4.channel.k8s.io")
	websocket.Message.Send(ws, append([]byte{0}, "GET / HTTP/1.0\r\nHost: pod\r\n\r\n"...))
	got = wsRead(t, ws, func(got map[byte][]byte) bool { return bytes.Contains(got[0], []byte("hello from")) })
	ws.Close()
	if !bytes.Contains(got[0], []byte("hello from")) {
		t.Errorf("PortForward: got %q, want the pod's server's answer", got[0])
	}
}
