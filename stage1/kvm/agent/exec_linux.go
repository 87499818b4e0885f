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
// its app. The pod's own stdin and terminal (rkt run --interactive) are
// session channel.PodSession.
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

func newExecs(c *conn) *execs {
	return &execs{c: c, stdin: map[uint32]chan []byte{}, terms: map[uint32]*os.File{}}
}

// stdinQueue bounds the stdin chunks queued for one session.
const stdinQueue = 256

// terminalDrain bounds the wait for a terminal's last output once its
// process exited, as the namespace flavor's enter does.
const terminalDrain = 2 * time.Second

// start starts a session; its end is reported with an ExecExit frame.
func (e *execs) start(req channel.ExecRequest) {
	if req.ID == channel.PodSession {
		e.c.writeJSON(channel.ExecExit, channel.ExecExitMsg{ID: req.ID, Code: exitFailed, Error: "exec session ID 0 is the pod's"})
		return
	}
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
	var wait func() error
	var err error
	if req.Terminal && req.Signal == 0 {
		wait, err = e.startTerminal(req.ID, cmd, req.Rows, req.Cols, req.Term, out(channel.StreamStdout))
	} else {
		wait, err = e.startPipe(req.ID, cmd)
	}
	if err != nil {
		e.c.writeJSON(channel.ExecExit, channel.ExecExitMsg{ID: req.ID, Code: exitFailed, Error: err.Error()})
		return
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		err := wait()
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

// startPipe starts cmd with session id's stdin on a pipe and returns the
// function that waits for cmd and ends the session.
func (e *execs) startPipe(id uint32, cmd *exec.Cmd) (func() error, error) {
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	e.feed(id, in, true)
	return func() error {
		err := cmd.Wait()
		e.drop(id)
		return err
	}, nil
}

// startTerminal starts cmd (a namespace stage1 entrypoint) on a new
// pseudo-terminal of rows x cols as its controlling terminal, with $TERM
// term; session id's stdin is what is typed, the terminal's output goes to
// out. That entrypoint sees a terminal and gives the app (or the entered
// command) a pseudo-terminal of its own, whose size follows this one's
// (SIGWINCH). It returns the function that waits for cmd and for the
// terminal's last output, and ends the session.
func (e *execs) startTerminal(id uint32, cmd *exec.Cmd, rows, cols uint16, term string, out io.Writer) (func() error, error) {
	master, slave, err := pty.Open()
	if err != nil {
		return nil, err
	}
	defer slave.Close()
	if rows > 0 && cols > 0 {
		unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	}
	if validTerm(term) {
		cmd.Env = append(cmd.Env, "TERM="+term)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		master.Close()
		return nil, err
	}
	e.mu.Lock()
	e.terms[id] = master
	e.mu.Unlock()
	e.feed(id, master, false)
	outDone := make(chan struct{})
	// Ends when every holder of the slave closed it (EIO). Not counted in
	// wg: a process that kept the slave open would keep it running, as
	// with the namespace flavor's relay.
	go func() {
		defer close(outDone)
		io.Copy(out, master)
	}()
	return func() error {
		err := cmd.Wait()
		select {
		case <-outDone:
		case <-time.After(terminalDrain):
		}
		e.drop(id)
		master.Close()
		return err
	}, nil
}

// feed registers session id's stdin queue and writes it to in until its
// end (closing in if closeAtEnd) or until drop.
func (e *execs) feed(id uint32, in io.WriteCloser, closeAtEnd bool) {
	q := make(chan []byte, stdinQueue)
	e.mu.Lock()
	e.stdin[id] = q
	e.mu.Unlock()
	e.wg.Add(1)
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
		if closeAtEnd {
			in.Close()
		}
	}()
}

// drop ends session id's stdin queue and forgets its terminal.
func (e *execs) drop(id uint32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if q, ok := e.stdin[id]; ok {
		close(q)
		delete(e.stdin, id)
	}
	delete(e.terms, id)
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
		// The writer stops at the empty chunk; drop must not close the
		// queue again.
		delete(e.stdin, id)
		close(q)
	}
	return nil
}
