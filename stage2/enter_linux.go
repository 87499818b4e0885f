package stage2

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/eintr"
)

// EnterRequest asks stage2 to start a command inside a running app with
// exactly that app's confinement (root, user, capabilities, seccomp,
// no_new_privs, cgroup): `rkt enter` never runs more privileged than the app
// (rkt's CVE-2019-10144/10145/10147). The client's stdin, stdout and stderr
// travel with it as SCM_RIGHTS.
//
// A request with Signal set instead asks stage2 to send that signal to the
// main process of App (of every app when App is empty): `rkt kill`. It
// carries no fds.
type EnterRequest struct {
	App    string   `json:"app"`
	Args   []string `json:"args,omitempty"`
	Env    []string `json:"env,omitempty"`
	Signal int      `json:"signal,omitempty"`
	// Term is the TERM the command gets over the app's environment: rkt's
	// enter kept the caller's TERM, vt100 when it had none
	// (stage1/enterexec), since enter is typically interactive. Empty
	// leaves the app's environment as it is.
	Term string `json:"term,omitempty"`
	// Terminal says the stdin sent along is a pseudo-terminal of the enter
	// client's that the command gets as its controlling terminal (never the
	// caller's own terminal).
	Terminal bool `json:"terminal,omitempty"`
	// Op is an app operation of a mutable pod on App (OpStart, OpStop,
	// OpRm); Start is OpStart's app and Force makes OpStop kill at once.
	Op    string    `json:"op,omitempty"`
	Start *AppStart `json:"start,omitempty"`
	Force bool      `json:"force,omitempty"`
	// AttachStdin (OpAttach): the first fd goes to the app's stdin.
	AttachStdin bool `json:"attachStdin,omitempty"`
	// Rows and Cols are OpResize's terminal size.
	Rows uint16 `json:"rows,omitempty"`
	Cols uint16 `json:"cols,omitempty"`
}

// EnterReply is sent back when the command has exited.
type EnterReply struct {
	Code  int    `json:"code"`
	Error string `json:"error,omitempty"`
}

const maxEnterMsg = 64 << 10

// enterReq is a received request with its connection and fds.
type enterReq struct {
	req  EnterRequest
	conn int
	fds  []int
}

// listenEnter opens the enter socket and serves it on a goroutine owned by
// the supervisor; requests arrive on s.enters until the socket is closed.
func (s *supervisor) listenEnter(path string) (func(), error) {
	os.Remove(path)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "bind", Path: path, Err: err}
	}
	os.Chmod(path, 0o600)
	if err := unix.Listen(fd, 16); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("listen", err)
	}
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := eintr.Retry2(func() (int, error) {
				conn, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
				return conn, err
			})
			if err == unix.ECONNABORTED {
				continue
			}
			if err != nil {
				return // the listening socket was closed
			}
			r, err := readEnter(conn)
			if err != nil {
				replyEnter(conn, EnterReply{Code: ExitLaunchFailed, Error: err.Error()})
				continue
			}
			select {
			case s.enterCh <- r:
			case <-quit:
				closeFds(r.fds)
				replyEnter(conn, EnterReply{Code: ExitLaunchFailed, Error: "pod is stopping"})
				return
			}
		}
	}()
	return func() {
		close(quit)
		unix.Shutdown(fd, unix.SHUT_RDWR)
		unix.Close(fd)
		<-done
	}, nil
}

func readEnter(conn int) (*enterReq, error) {
	buf := make([]byte, maxEnterMsg)
	oob := make([]byte, unix.CmsgSpace(MaxAppFds*4))
	n, oobn, _, _, err := unix.Recvmsg(conn, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("recvmsg", err)
	}
	r := &enterReq{conn: conn}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err == nil {
		for _, m := range msgs {
			fds, err := unix.ParseUnixRights(&m)
			if err == nil {
				r.fds = append(r.fds, fds...)
			}
		}
	}
	if err := json.Unmarshal(buf[:n], &r.req); err != nil {
		closeFds(r.fds)
		return nil, fmt.Errorf("decode enter request: %w", err)
	}
	if r.req.Signal != 0 || (r.req.Op != "" && r.req.Op != OpStart && r.req.Op != OpReopenLog && r.req.Op != OpAttach) {
		closeFds(r.fds)
		r.fds = nil
		return r, nil
	}
	if r.req.Op == OpStart || r.req.Op == OpReopenLog || r.req.Op == OpAttach {
		return r, nil // the mounter, the reopen or the attach checks its fds
	}
	if len(r.fds) != 3 {
		closeFds(r.fds)
		return nil, fmt.Errorf("enter request carries %d fds, want 3", len(r.fds))
	}
	if len(r.req.Args) == 0 {
		closeFds(r.fds)
		return nil, errors.New("enter request has no command")
	}
	return r, nil
}

func closeFds(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

func replyEnter(conn int, r EnterReply) {
	b, _ := json.Marshal(r)
	unix.Write(conn, b)
	// The reply stays readable for the client; the shutdown ends the
	// request's watcher, which polls a duplicate of conn.
	unix.Shutdown(conn, unix.SHUT_RDWR)
	unix.Close(conn)
}

// watchEnter starts the watcher of a running enter request: when its client
// goes away (the connection closes before the reply: the client was killed,
// or its caller gave up, as a CRI ExecSync at its timeout), the command's
// session is killed, so that nothing it started lingers in the pod.
func (s *supervisor) watchEnter(id uint64, conn int) {
	fd, err := unix.FcntlInt(uintptr(conn), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return
	}
	s.watchers.Add(1)
	go func() {
		defer s.watchers.Done()
		defer unix.Close(fd)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLRDHUP}}
		for {
			n, err := unix.Poll(fds, -1)
			if err == unix.EINTR {
				continue
			}
			if err != nil || n > 0 {
				break
			}
		}
		select {
		case s.enterGone <- id:
		case <-s.watchQuit:
		}
	}()
}

// enterClientGone kills the session of enter id if it still runs, or
// ends attach id: its client went away. A command that already exited was
// replied to; its id is then unknown.
func (s *supervisor) enterClientGone(id uint64) {
	if s.attaches[id] != nil {
		s.detach(id, nil)
		return
	}
	for pid, p := range s.procs {
		if p.kind == kindEnter && p.id == id {
			s.log.Debug("enter client gone, killing its command", "pid", pid)
			unix.Kill(-pid, unix.SIGKILL)
			return
		}
	}
}

// startEnter launches an enter request inside its app.
func (s *supervisor) startEnter(r *enterReq) {
	if r.req.Op != "" {
		s.appOp(r)
		return
	}
	// Evaluated at return: the launch below hands the fds to *os.File
	// values and clears r.fds.
	defer func() { closeFds(r.fds) }()
	if r.req.Signal != 0 {
		s.kill(r)
		return
	}
	app := s.app(r.req.App)
	if app == nil {
		replyEnter(r.conn, EnterReply{Code: ExitLaunchFailed, Error: fmt.Sprintf("no app %q in this pod", r.req.App)})
		return
	}
	if _, running := s.mains[app.Name]; !running {
		replyEnter(r.conn, EnterReply{Code: ExitLaunchFailed, Error: fmt.Sprintf("app %s is not running", app.Name)})
		return
	}
	p := app.Proc
	p.Args = r.req.Args
	if len(r.req.Env) > 0 {
		p.Env = r.req.Env
	}
	if r.req.Term != "" {
		p.Env = withTerm(p.Env, r.req.Term)
	}
	// The files own the fds from here: an *os.File closes its fd when it is
	// collected, so closing the raw fds as well would close, later and at
	// random, whatever reused those numbers (another request's connection).
	files := []*os.File{os.NewFile(uintptr(r.fds[0]), "stdin"), os.NewFile(uintptr(r.fds[1]), "stdout"), os.NewFile(uintptr(r.fds[2]), "stderr")}
	r.fds = nil
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	pid, err := s.launchWith(p, files, r.req.Terminal)
	if err != nil {
		replyEnter(r.conn, EnterReply{Code: ExitLaunchFailed, Error: err.Error()})
		return
	}
	s.enterIDs++
	s.procs[pid] = proc{app: app, kind: kindEnter, conn: r.conn, id: s.enterIDs}
	s.watchEnter(s.enterIDs, r.conn)
}

// kill handles a signal request: only the apps' main processes get it, never
// everything in the pod (rkt #3512).
func (s *supervisor) kill(r *enterReq) {
	sig := unix.Signal(r.req.Signal)
	if r.req.App != "" {
		pid, ok := s.mains[r.req.App]
		if !ok {
			replyEnter(r.conn, EnterReply{Code: ExitLaunchFailed, Error: fmt.Sprintf("app %q is not running in this pod", r.req.App)})
			return
		}
		unix.Kill(pid, sig)
	} else {
		for _, pid := range s.mains {
			unix.Kill(pid, sig)
		}
	}
	replyEnter(r.conn, EnterReply{})
}

// withTerm returns env with TERM set to term, as a new slice: env is the
// app's own, shared with its other processes.
func withTerm(env []string, term string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "TERM=") {
			out = append(out, kv)
		}
	}
	return append(out, "TERM="+term)
}
