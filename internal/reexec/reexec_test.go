package reexec

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

const childEnv = "REEXEC_TEST_CHILD"

// TestMain is the child: "echo" copies the JSON of fd 3 to fd 4, "hang"
// waits for ever.
func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "echo":
		var v map[string]string
		if err := json.NewDecoder(os.NewFile(3, "in")).Decode(&v); err != nil {
			os.Exit(3)
		}
		json.NewEncoder(os.NewFile(4, "out")).Encode(v)
		os.Exit(0)
	case "hang":
		select {}
	}
	os.Exit(m.Run())
}

func start(t *testing.T, c *Child, mode string) error {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c.AddFile(os.Stdin, os.Stdout, os.Stderr)
	return c.Start(exe, []string{exe}, &os.ProcAttr{Env: append(os.Environ(), childEnv+"="+mode)})
}

func TestEcho(t *testing.T) {
	var c Child
	run := func() (got map[string]string, retErr error) {
		defer c.Finish(&retErr)
		c.AddFile(os.Stdin, os.Stdout, os.Stderr)
		w, wfd, err := c.PipeTo()
		if err != nil {
			return nil, err
		}
		r, rfd, err := c.PipeFrom()
		if err != nil {
			return nil, err
		}
		defer r.Close()
		if wfd != 3 || rfd != 4 {
			t.Errorf("fds = %d, %d; want 3, 4", wfd, rfd)
		}
		exe, _ := os.Executable()
		if err := c.Start(exe, []string{exe}, &os.ProcAttr{Env: append(os.Environ(), childEnv+"=echo")}); err != nil {
			return nil, err
		}
		if err := c.SendJSON(w, map[string]string{"a": "b"}); err != nil {
			return nil, err
		}
		// Our copy of the child's write end is closed: EOF once it exits.
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		return got, json.Unmarshal(b, &got)
	}
	got, err := run()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"a": "b"}, got); diff != "" {
		t.Errorf("echo mismatch (-want +got):\n%s", diff)
	}
	st, err := c.Process.Wait()
	if err != nil || !st.Success() {
		t.Errorf("child: %v, %v", st, err)
	}
}

// TestFailureKillsAndReaps: an error after Start kills and reaps the child
// and closes our ends.
func TestFailureKillsAndReaps(t *testing.T) {
	var c Child
	var w *os.File
	errBoom := errors.New("boom")
	err := func() (retErr error) {
		defer c.Finish(&retErr)
		var err error
		if w, _, err = c.PipeTo(); err != nil {
			return err
		}
		if err := start(t, &c, "hang"); err != nil {
			return err
		}
		return errBoom
	}()
	if !errors.Is(err, errBoom) {
		t.Fatalf("err = %v", err)
	}
	if err := unix.Kill(c.Process.Pid, 0); !errors.Is(err, unix.ESRCH) {
		t.Errorf("child %d still exists (kill 0: %v)", c.Process.Pid, err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("our end: write = %v, want os.ErrClosed", err)
	}
}

func TestReapHook(t *testing.T) {
	var reaped int
	c := Child{Reap: func(p *os.Process) {
		reaped = p.Pid
		p.Kill()
		p.Wait()
	}}
	func() (retErr error) {
		defer c.Finish(&retErr)
		if err := start(t, &c, "hang"); err != nil {
			t.Fatal(err)
		}
		return errors.New("fail")
	}()
	if reaped == 0 || reaped != c.Process.Pid {
		t.Errorf("Reap called with %d, want %d", reaped, c.Process.Pid)
	}
}

// TestStartFails: a failed start leaves no child and closes every pipe end.
func TestStartFails(t *testing.T) {
	var c Child
	var r *os.File
	err := func() (retErr error) {
		defer c.Finish(&retErr)
		var err error
		if r, _, err = c.PipeFrom(); err != nil {
			return err
		}
		return c.Start("/nonexistent/reexec-test", []string{"x"}, &os.ProcAttr{})
	}()
	if err == nil || c.Process != nil {
		t.Fatalf("Start = %v, Process = %v; want an error and no process", err, c.Process)
	}
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, os.ErrClosed) {
		t.Errorf("our end: read = %v, want os.ErrClosed", err)
	}
}
