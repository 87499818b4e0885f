package stage2

import (
	"io"
	"os"
	"testing"
	"time"
)

// attachPipes is an attach client made of two pipes: the fanout writes to
// their write ends (pollable, as attach makes them), the test reads.
func attachPipes(t *testing.T) (*attachClient, *os.File, *os.File) {
	t.Helper()
	var ends [2]*os.File
	var c attachClient
	for i := range ends {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		pw, err := pollableDup(int(w.Fd()))
		w.Close()
		if err != nil {
			t.Fatal(err)
		}
		ends[i] = r
		if i == 0 {
			c.out = pw
		} else {
			c.err = pw
		}
	}
	return &c, ends[0], ends[1]
}

func TestFanout(t *testing.T) {
	f := newFanout()
	c1, out1, err1 := attachPipes(t)
	c2, out2, _ := attachPipes(t)
	f.add(1, c1)
	f.add(2, c2)
	f.writer("stdout").Write([]byte("to both\n"))
	f.writer("stderr").Write([]byte("err\n"))
	f.remove(2) // client 2 detached: EOF for it, not for client 1
	f.writer("stdout").Write([]byte("to one\n"))
	f.close()
	f.writer("stdout").Write([]byte("after the end\n")) // nobody
	if b, _ := io.ReadAll(out1); string(b) != "to both\nto one\n" {
		t.Errorf("client 1 stdout %q", b)
	}
	if b, _ := io.ReadAll(err1); string(b) != "err\n" {
		t.Errorf("client 1 stderr %q", b)
	}
	if b, _ := io.ReadAll(out2); string(b) != "to both\n" {
		t.Errorf("client 2 stdout %q", b)
	}
	// A client added after the output ended gets EOF at once.
	c3, out3, _ := attachPipes(t)
	f.add(3, c3)
	if b, _ := io.ReadAll(out3); len(b) != 0 {
		t.Errorf("late client got %q", b)
	}
}

// TestFanoutDropsGoneClient: a client whose read end is closed is dropped
// (EPIPE) and the others still get the output.
func TestFanoutDropsGoneClient(t *testing.T) {
	f := newFanout()
	gone, goneOut, _ := attachPipes(t)
	ok, okOut, _ := attachPipes(t)
	f.add(1, gone)
	f.add(2, ok)
	goneOut.Close()
	f.writer("stdout").Write([]byte("x\n"))
	if len(f.clients) != 1 || f.clients[2] == nil {
		t.Errorf("clients after a write to a gone one: %v", f.clients)
	}
	f.close()
	if b, _ := io.ReadAll(okOut); string(b) != "x\n" {
		t.Errorf("remaining client got %q", b)
	}
}

func TestAppStdin(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st := &appStdin{f: w}
	if _, err := st.Write([]byte("line\n")); err != nil {
		t.Fatal(err)
	}
	st.close()
	st.close() // idempotent
	if _, err := st.Write([]byte("late")); err == nil {
		t.Error("write after close succeeded")
	}
	if b, _ := io.ReadAll(r); string(b) != "line\n" {
		t.Errorf("app read %q", b)
	}
}

func TestPollableDup(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	f, err := pollableDup(int(w.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.SetWriteDeadline(time.Now().Add(time.Second)); err != nil {
		t.Errorf("the dup is not pollable: %v", err)
	}
	if _, err := f.Write([]byte("ok")); err != nil {
		t.Errorf("write through the dup: %v", err)
	}
	if _, err := pollableDup(-1); err == nil {
		t.Error("pollableDup(-1) succeeded")
	}
}
