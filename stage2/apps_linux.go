package stage2

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/pods/layout"
)

// App operations of a mutable pod (EnterRequest.Op), sent by the stage1's
// app entrypoints (docs/stage1-abi.md 5.3).
const (
	// OpStart mounts and starts a new app (EnterRequest.Start); the request
	// carries the app's mount trees as fds (the mounter's business).
	OpStart = "start"
	// OpStop sends the app its stop signal (SIGKILL with Force, or after
	// the stop timeout); the reply comes once the app exited, with its code.
	OpStop = "stop"
	// OpRm unmounts an app that is not running and forgets it; its log stays.
	OpRm = "rm"
	// OpReopenLog replaces the file of a running app's CRI log with the one
	// fd the request carries (the kubelet rotated the old one away).
	OpReopenLog = "reopen-log"
	// OpAttach gives the request's three fds (stdin, stdout, stderr) the
	// running app's output, and its stdin with EnterRequest.AttachStdin;
	// the reply comes when the app exits.
	OpAttach = "attach"
	// OpResize sets the size of a running app's terminal (an app started
	// with AppStart.TTY) to EnterRequest.Rows and Cols.
	OpResize = "resize"
)

// MaxAppFds bounds the fds of an OpStart request (its rootfs and binds):
// more would be cut off by the receiver's control buffer.
const MaxAppFds = 64

// AppStart is the app of an OpStart request.
type AppStart struct {
	App App `json:"app"`
	// Mounts describe the app's mounts for the Mounter, which the init
	// runs in the pod's mount namespace (stage1/podsetup.MountAdded for the
	// ns flavor); stage2 does not read them.
	Mounts json.RawMessage `json:"mounts"`
	// CRILog says the request's last fd is the app's CRI log file, opened
	// on the host for appending: stage2 writes the app's stdout and stderr
	// there in the CRI log format, besides its own log.
	CRILog bool `json:"criLog,omitempty"`
	// TTY says the two fds before the CRI log's (or last) are the master
	// and the slave of the app's terminal: the app gets the slave as its
	// stdin, stdout, stderr and controlling terminal, stage2 keeps the
	// master (its output is the app's stdout; attach clients write to it).
	TTY bool `json:"tty,omitempty"`
}

// Mounter makes the mounts of an added app from the request's fds, and
// Unmounter undoes them, given the app's root (App.Root). They run in the
// pod's init, in the pod's mount namespace.
type (
	Mounter   func(mounts json.RawMessage, fds []int) error
	Unmounter func(root string) error
)

// Option configures Init.
type Option func(*supervisor)

// WithAppMounts lets a mutable pod start and remove apps (OpStart, OpRm):
// without it they are refused.
func WithAppMounts(m Mounter, u Unmounter) Option {
	return func(s *supervisor) { s.mount, s.unmount = m, u }
}

// appStop is a pending OpStop: when to SIGKILL, and who waits for the exit.
type appStop struct {
	deadline time.Time
	conns    []int
}

// appOp runs an app operation of a mutable pod. It replies on r.conn now,
// or (OpStop) once the app exited.
func (s *supervisor) appOp(r *enterReq) {
	defer closeFds(r.fds)
	fail := func(format string, a ...any) {
		replyEnter(r.conn, EnterReply{Code: ExitLaunchFailed, Error: fmt.Sprintf(format, a...)})
	}
	switch {
	case !s.cfg.Mutable:
		fail("pod is not mutable (rkt app sandbox)")
		return
	case s.stopping:
		fail("pod is stopping")
		return
	}
	switch r.req.Op {
	case OpStart:
		if err := s.addApp(r.req.Start, r.fds); err != nil {
			fail("%v", err)
			return
		}
		replyEnter(r.conn, EnterReply{})
	case OpStop:
		name := r.req.App
		if s.app(name) == nil {
			fail("no app %q in this pod", name)
			return
		}
		pid, running := s.mains[name]
		if !running {
			if code, ok := s.codes[name]; ok {
				replyEnter(r.conn, EnterReply{Code: code}) // exited already
				return
			}
			fail("app %s was never started", name)
			return
		}
		st := s.stops[name]
		if st == nil {
			st = &appStop{deadline: time.Now().Add(s.stopTimeout())}
			s.stops[name] = st
			s.killed[pid] = true
			unix.Kill(pid, stopSignal(s.app(name)))
		}
		if r.req.Force {
			unix.Kill(pid, unix.SIGKILL)
		}
		st.conns = append(st.conns, r.conn)
	case OpRm:
		if err := s.removeApp(r.req.App); err != nil {
			fail("%v", err)
			return
		}
		replyEnter(r.conn, EnterReply{})
	case OpAttach:
		if err := s.attach(r); err != nil {
			fail("%v", err)
		}
	case OpResize:
		if err := s.resize(r.req.App, r.req.Rows, r.req.Cols); err != nil {
			fail("%v", err)
			return
		}
		replyEnter(r.conn, EnterReply{})
	case OpReopenLog:
		if err := s.reopenCRILog(r.req.App, r.fds); err != nil {
			fail("%v", err)
			return
		}
		replyEnter(r.conn, EnterReply{})
	default:
		fail("unknown app operation %q", r.req.Op)
	}
}

// addApp mounts a new app and starts it.
func (s *supervisor) addApp(st *AppStart, fds []int) error {
	if st == nil {
		return errors.New("start request has no app")
	}
	name := st.App.Name
	if s.mount == nil {
		return errors.New("this stage2 cannot add apps")
	}
	if s.app(name) != nil {
		return fmt.Errorf("app %s was started already", name)
	}
	if st.CRILog {
		if len(fds) < 2 {
			return errors.New("start request with a CRI log carries no log fd")
		}
		if err := s.setCRILog(name, fds[len(fds)-1]); err != nil {
			return err
		}
		fds = fds[:len(fds)-1]
	}
	if st.TTY {
		if len(fds) < 3 {
			return errors.New("start request with a terminal carries no terminal fds")
		}
		if err := s.setTTY(name, fds[len(fds)-2], fds[len(fds)-1]); err != nil {
			return err
		}
		fds = fds[:len(fds)-2]
	}
	if err := s.mount(st.Mounts, fds); err != nil {
		return fmt.Errorf("app %s: mounts: %w", name, err)
	}
	s.cfg.Apps = append(s.cfg.Apps, st.App)
	s.order = append(s.order, name)
	app := s.app(name)
	if app.NotifySocket != "" {
		stop, err := s.listenNotify(name, app.NotifySocket)
		if err != nil {
			s.record(name, ExitLaunchFailed)
			return fmt.Errorf("app %s: notify socket: %w", name, err)
		}
		s.notifyStops = append(s.notifyStops, stop)
	}
	if err := s.startApp(app); err != nil {
		s.record(name, ExitLaunchFailed)
		return fmt.Errorf("app %s: %w", name, err)
	}
	return nil
}

// removeApp unmounts an app that is not running and forgets it.
func (s *supervisor) removeApp(name string) error {
	app := s.app(name)
	if app == nil {
		// Added but never started: nothing of it is in the pod.
		return nil
	}
	if _, running := s.mains[name]; running {
		return fmt.Errorf("app %s is running; stop it first", name)
	}
	if s.unmount == nil {
		return errors.New("this stage2 cannot remove apps")
	}
	if err := s.unmount(app.Root); err != nil {
		return fmt.Errorf("app %s: %w", name, err)
	}
	s.cfg.Apps = slices.DeleteFunc(slices.Clone(s.cfg.Apps), func(a App) bool { return a.Name == name })
	s.order = slices.DeleteFunc(s.order, func(n string) bool { return n == name })
	delete(s.codes, name)
	if l := s.criLogs[name]; l != nil {
		l.Close()
		delete(s.criLogs, name)
	}
	if st := s.stdins[name]; st != nil {
		st.close()
		delete(s.stdins, name)
	}
	delete(s.fanouts, name)
	if t := s.ttys[name]; t != nil {
		t.close()
		delete(s.ttys, name)
	}
	// The app's records go with it (an app of the same name may be added
	// later); its log stays until the pod is gone.
	for _, f := range []string{layout.AppStatus(name), layout.AppStarted(name), layout.AppStopped(name)} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("remove app record", "app", name, "err", err)
		}
	}
	return nil
}

// stopped replies to those waiting for app's OpStop, once it exited.
func (s *supervisor) stopped(name string, code int) {
	st := s.stops[name]
	if st == nil {
		return
	}
	delete(s.stops, name)
	for _, c := range st.conns {
		replyEnter(c, EnterReply{Code: code})
	}
}

// nextStopDeadline is a timer for the earliest pending OpStop, or nil.
func (s *supervisor) nextStopDeadline() <-chan time.Time {
	var first time.Time
	for _, st := range s.stops {
		if first.IsZero() || st.deadline.Before(first) {
			first = st.deadline
		}
	}
	if first.IsZero() {
		return nil
	}
	return time.After(time.Until(first))
}

// killOverdue sends SIGKILL to apps whose stop timeout passed.
func (s *supervisor) killOverdue() {
	now := time.Now()
	for name, st := range s.stops {
		if pid, ok := s.mains[name]; ok && !now.Before(st.deadline) {
			unix.Kill(pid, unix.SIGKILL)
			st.deadline = now.Add(time.Hour) // killed; wait for its exit
		}
	}
}

func (s *supervisor) stopTimeout() time.Duration {
	if s.cfg.StopTimeout > 0 {
		return s.cfg.StopTimeout
	}
	return 10 * time.Second
}

// setCRILog makes fd, received with an app's start request, the app's CRI
// log. It keeps a duplicate of fd: the request's fds are closed after it.
func (s *supervisor) setCRILog(app string, fd int) error {
	f, err := criLogFile(fd)
	if err != nil {
		return fmt.Errorf("app %s: CRI log: %w", app, err)
	}
	if l := s.criLogs[app]; l != nil {
		l.Close()
	}
	s.criLogs[app] = newCRILog(f)
	return nil
}

// reopenCRILog replaces a running app's CRI log file with (a duplicate
// of) the request's one fd.
func (s *supervisor) reopenCRILog(app string, fds []int) error {
	l := s.criLogs[app]
	switch {
	case s.app(app) == nil:
		return fmt.Errorf("no app %q in this pod", app)
	case l == nil:
		return fmt.Errorf("app %s has no CRI log", app)
	case len(fds) != 1:
		return fmt.Errorf("reopen-log request carries %d fds, want 1", len(fds))
	}
	if _, running := s.mains[app]; !running {
		return fmt.Errorf("app %s is not running", app)
	}
	f, err := criLogFile(fds[0])
	if err != nil {
		return fmt.Errorf("app %s: CRI log: %w", app, err)
	}
	l.reopen(f)
	return nil
}

// criLogFile duplicates fd, which must be a regular file open for
// appending, as an *os.File.
func criLogFile(fd int) (*os.File, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, os.NewSyscallError("fstat", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, errors.New("not a regular file")
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	if fl&unix.O_APPEND == 0 || fl&unix.O_ACCMODE == unix.O_RDONLY {
		return nil, errors.New("not open for appending")
	}
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	return os.NewFile(uintptr(nfd), "cri-log"), nil
}
