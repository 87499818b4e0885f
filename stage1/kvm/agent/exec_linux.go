package agent

import (
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/pods/layout"
	"github.com/rkt-ng/rkt/stage1/kvm/channel"
)

// execs are the agent's exec sessions: rkt enter and rkt kill, run with
// the namespace stage1's own enter and stop entrypoints in the guest's pod
// directory, so that the guest's stage2 confines an entered command like
// its app.
type execs struct {
	c *conn
	// mu guards stdin.
	mu    sync.Mutex
	stdin map[uint32]chan []byte
	// wg counts the sessions' goroutines.
	wg sync.WaitGroup
}

// stdinQueue bounds the stdin chunks queued for one session.
const stdinQueue = 256

// start starts a session; its end is reported with an ExecExit frame.
func (e *execs) start(req channel.ExecRequest) {
	exe := filepath.Join(layout.Dir(PodDir).Stage1Rootfs(), NSRun)
	var argv []string
	if req.Signal != 0 {
		argv = []string{"stop", "--signal=" + strconv.Itoa(req.Signal), "--app=" + req.App}
	} else {
		argv = append([]string{"enter", "--appname=" + req.App, "--"}, req.Args...)
	}
	out := func(stream byte) io.Writer {
		return frameWriter{c: e.c, t: channel.ExecOut, prefix: append(channel.WithID(req.ID, nil), stream)}
	}
	cmd := &exec.Cmd{Path: exe, Args: argv, Dir: PodDir, Env: []string{"PATH=" + guestPath},
		Stdout: out(channel.StreamStdout), Stderr: out(channel.StreamStderr)}
	in, err := cmd.StdinPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		e.c.writeJSON(channel.ExecExit, channel.ExecExitMsg{ID: req.ID, Code: exitFailed, Error: err.Error()})
		return
	}
	q := make(chan []byte, stdinQueue)
	e.mu.Lock()
	e.stdin[req.ID] = q
	e.mu.Unlock()
	e.wg.Add(2)
	go func() {
		defer e.wg.Done()
		for b := range q {
			if len(b) == 0 {
				break
			}
			if _, err := in.Write(b); err != nil {
				break
			}
		}
		in.Close()
	}()
	go func() {
		defer e.wg.Done()
		err := cmd.Wait()
		e.mu.Lock()
		if q, ok := e.stdin[req.ID]; ok {
			close(q)
			delete(e.stdin, req.ID)
		}
		e.mu.Unlock()
		m := channel.ExecExitMsg{ID: req.ID}
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			m.Code = ee.ExitCode()
			if ws, ok := ee.Sys().(unix.WaitStatus); ok && ws.Signaled() {
				m.Code = 128 + int(ws.Signal())
			}
		case err != nil:
			m.Code, m.Error = exitFailed, err.Error()
		}
		e.c.writeJSON(channel.ExecExit, m)
	}()
}

// input queues stdin bytes for a session (none: its end).
func (e *execs) input(p []byte) error {
	id, data, err := channel.SplitID(p)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	q, ok := e.stdin[id]
	if !ok {
		return nil
	}
	select {
	case q <- data:
	default:
		return fmt.Errorf("exec session %d: stdin queue full", id)
	}
	if len(data) == 0 {
		// The writer stops at the empty chunk; the wait goroutine must
		// not close the queue again.
		delete(e.stdin, id)
		close(q)
	}
	return nil
}
