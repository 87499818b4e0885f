package kvm

import (
	"bufio"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rkt-ng/rkt/stage1/kvm/channel"
)

// TestExecSession runs one rkt enter session through the exec server
// without a guest: the request and the end of stdin reach the guest side,
// and the guest's exit code reaches the client.
func TestExecSession(t *testing.T) {
	t.Chdir(t.TempDir())
	gr, gw := io.Pipe()
	s, err := listenExec(&guestWriter{w: gw})
	if err != nil {
		t.Fatal(err)
	}
	s.serve()
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	resize := make(chan channel.ResizeMsg, 1)
	resize <- channel.ResizeMsg{Rows: 40, Cols: 100}
	defer close(resize)
	sent := channel.ExecRequest{App: "web", Args: []string{"/bin/sh", "-c", "exit 3"}, Terminal: true, Term: "xterm", Rows: 24, Cols: 80}
	go func() {
		code, err := callExec(sent, nil, resize)
		done <- result{code, err}
	}()
	r := bufio.NewReader(gr)
	typ, p, err := channel.Read(r)
	if err != nil || typ != channel.ExecStart {
		t.Fatalf("guest got %v, %v; want exec-start", typ, err)
	}
	var req channel.ExecRequest
	if err := channel.Decode(typ, p, &req); err != nil {
		t.Fatal(err)
	}
	sent.ID = 1
	if diff := cmp.Diff(sent, req); diff != "" {
		t.Errorf("exec request mismatch (-want +got):\n%s", diff)
	}
	typ, p, err = channel.Read(r)
	if err != nil || typ != channel.ExecIn {
		t.Fatalf("guest got %v, %v; want exec-in", typ, err)
	}
	if id, data, err := channel.SplitID(p); err != nil || id != 1 || len(data) != 0 {
		t.Errorf("exec-in %d %q %v, want the end of session 1's stdin", id, data, err)
	}
	// A window size change after the end of the input still reaches the
	// guest, with the session's ID.
	typ, p, err = channel.Read(r)
	if err != nil || typ != channel.ExecResize {
		t.Fatalf("guest got %v, %v; want exec-resize", typ, err)
	}
	var rs channel.ResizeMsg
	if err := channel.Decode(typ, p, &rs); err != nil || rs != (channel.ResizeMsg{ID: 1, Rows: 40, Cols: 100}) {
		t.Errorf("exec-resize %+v, %v; want session 1, 40x100", rs, err)
	}
	if err := s.output(channel.WithID(1, append([]byte{channel.StreamStderr}, "from the guest\n"...))); err != nil {
		t.Fatal(err)
	}
	if err := s.output(channel.WithID(1, nil)); err == nil {
		t.Errorf("exec output without a stream byte accepted")
	}
	s.end(channel.ExecExitMsg{ID: 1, Code: 3})
	if res := <-done; res.err != nil || res.code != 3 {
		t.Errorf("callExec = %d, %v; want 3", res.code, res.err)
	}
	go io.Copy(io.Discard, gr)
	s.close()
	// After close, nothing is listening.
	if _, err := callExec(channel.ExecRequest{App: "web", Signal: 1}, nil, nil); err == nil {
		t.Errorf("callExec after close: no error")
	}
}
