package agent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/pty"
	"github.com/rkt-ng/rkt/pods/layout"
	"github.com/rkt-ng/rkt/stage1/kvm/channel"
)

// execs are the agent's exec sessions: rkt enter and rkt kill, run with
// the namespace stage1's own enter and stop entrypoints in the guest's pod
// directory, so that the guest's stage2 confines an entered command like
// its app.
type execs struct {
	c *conn
	// mu guards stdin and terms.
	mu    sync.Mutex
	stdin map[uint32]chan []byte
	// terms are the pseudo-terminal masters of terminal sessions.
	terms map[uint32]*os.File
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
	var in io.WriteCloser
	var master *os.File
	// outDone is closed when a terminal session's output is relayed.
	var outDone chan struct{}
	var err error
	if req.Terminal && req.Signal == 0 {
		master, err = e.terminal(cmd, req)
		in = master
	} else {
		in, err = cmd.StdinPipe()
		if err == nil {
			err = cmd.Start()
		}
	}
	if err != nil {
		e.c.writeJSON(channel.ExecExit, channel.ExecExitMsg{ID: req.ID, Code: exitFailed, Error: err.Error()})
		return
	}
	if master != nil {
		outDone = make(chan struct{})
		// Ends when every holder of the slave closed it (EIO): the
		// namespace stage1's enter, which relays the app's own terminal.
		// Not counted in wg: a process that kept the slave open would
		// keep it running, as with the namespace flavor's relay.
		go func() {
			defer close(outDone)
			io.Copy(out(channel.StreamStdout), master)
		}()
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
		if master == nil {
			in.Close()
		}
	}()
	go func() {
		defer e.wg.Done()
		err := cmd.Wait()
		if master != nil {
			// The output before the exit, bounded as in the namespace
			// flavor's enter.
			select {
			case <-outDone:
			case <-time.After(2 * time.Second):
			}
			master.Close()
		}
		e.mu.Lock()
		if q, ok := e.stdin[req.ID]; ok {
			close(q)
			delete(e.stdin, req.ID)
		}
		delete(e.terms, req.ID)
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

// terminal starts cmd, the namespace stage1's enter, on a new
// pseudo-terminal of req's size as its controlling terminal, and returns
// the master. That enter sees a terminal and gives the command in the app
// a pseudo-terminal of its own, whose size follows this one's (SIGWINCH).
func (e *execs) terminal(cmd *exec.Cmd, req channel.ExecRequest) (*os.File, error) {
	master, slave, err := pty.Open()
	if err != nil {
		return nil, err
	}
	defer slave.Close()
	if req.Rows > 0 && req.Cols > 0 {
		unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: req.Rows, Col: req.Cols})
	}
	if validTerm(req.Term) {
		cmd.Env = append(cmd.Env, "TERM="+req.Term)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		master.Close()
		return nil, err
	}
	e.mu.Lock()
	e.terms[req.ID] = master
	e.mu.Unlock()
	return master, nil
}

// validTerm accepts a $TERM of letters, digits and "-+._", at most 64 bytes.
func validTerm(t string) bool {
	if t == "" || len(t) > 64 {
		return false
	}
	for _, c := range []byte(t) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// resize sets a terminal session's window size; the kernel sends SIGWINCH
// to its foreground process group.
func (e *execs) resize(m channel.ResizeMsg) {
	e.mu.Lock()
	master := e.terms[m.ID]
	e.mu.Unlock()
	if master != nil && m.Rows > 0 && m.Cols > 0 {
		unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: m.Rows, Col: m.Cols})
	}
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
