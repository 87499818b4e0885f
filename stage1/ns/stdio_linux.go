package ns

import (
	"io"
	"os"
	"time"

	"github.com/rkt-ng/rkt/internal/pty"
)

// podStdio is the pod's stdin, stdout and stderr. No process of the pod
// ever holds the caller's terminal (docs/security.md): a process with it can
// type into the caller's shell (TIOCSTI) or read its keystrokes.
//
//   - stdin is /dev/null, as in rkt, unless --interactive;
//   - with --interactive on a terminal the pod gets the slave of a new
//     pseudo-terminal, which stage2 makes the app's controlling terminal,
//     and this process relays the caller's stdin and stdout through the
//     master (podTerminal says when);
//   - with --interactive and no terminal on stdin, the app reads the
//     caller's stdin as it is (a pipe or a file);
//   - otherwise stdout and stderr are the caller's, except a terminal,
//     which the pod sees through a pipe that this process copies on.
type podStdio struct {
	child [3]*os.File // the init's fds 0, 1, 2
	// ours are the child's ends of pipes and the pty slave, closed once the
	// child started.
	ours    []*os.File
	master  *os.File
	relay   *pty.Relay
	restore func() error
	copies  []<-chan struct{} // closed when a terminal copier saw EOF
}

// podTerminal says whether the pod gets a pseudo-terminal of its own.
func podTerminal(interactive bool) bool { return interactive && pty.IsTerminal(0) }

func newPodStdio(interactive bool) (*podStdio, error) {
	s := &podStdio{}
	if podTerminal(interactive) {
		master, slave, err := pty.Open()
		if err != nil {
			return nil, err
		}
		s.master = master
		s.child = [3]*os.File{slave, slave, slave}
		s.ours = append(s.ours, slave)
		if pty.IsTerminal(0) {
			pty.CopySize(0, int(slave.Fd()))
			if s.restore, err = pty.MakeRaw(0); err != nil {
				s.close()
				return nil, err
			}
		}
		s.relay = pty.StartRelay(master, os.Stdin, os.Stdout)
		return s, nil
	}
	s.child[0] = os.Stdin
	if !interactive {
		null, err := os.Open(os.DevNull)
		if err != nil {
			return nil, err
		}
		s.child[0] = null
		s.ours = append(s.ours, null)
	}
	for i, out := range []*os.File{os.Stdout, os.Stderr} {
		if !pty.IsTerminal(int(out.Fd())) {
			s.child[1+i] = out
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			s.close()
			return nil, err
		}
		s.child[1+i] = w
		s.ours = append(s.ours, w)
		done := make(chan struct{})
		s.copies = append(s.copies, done)
		go func() {
			defer close(done)
			defer r.Close()
			io.Copy(out, r)
		}()
	}
	return s, nil
}

// started drops this process's copies of the child's ends, so that the
// copiers see EOF when the pod is gone.
func (s *podStdio) started() {
	for _, f := range s.ours {
		f.Close()
	}
	s.ours = nil
}

// resize passes the caller's new window size on to the pod's terminal; it
// reports whether the pod has one.
func (s *podStdio) resize() bool {
	if s.master == nil {
		return false
	}
	pty.CopySize(0, int(s.master.Fd()))
	return true
}

// finish waits a little for the pod's last output and gives the caller's
// terminal back its mode.
func (s *podStdio) finish() {
	s.started()
	deadline := time.NewTimer(2 * time.Second)
	defer deadline.Stop()
	waits := s.copies
	if s.relay != nil {
		waits = append(waits, s.relay.Done())
	}
	for _, c := range waits {
		select {
		case <-c:
		case <-deadline.C:
			s.close()
			return
		}
	}
	s.close()
}

func (s *podStdio) close() {
	s.started()
	if s.restore != nil {
		s.restore()
		s.restore = nil
	}
	if s.master != nil {
		s.master.Close()
	}
}
