package stage2

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/atomicfile"
	"github.com/rkt-ng/rkt/pods/layout"
)

// attachWriteTimeout is how long an attach client may stall the app's
// output before it is dropped (the app's output must keep flowing to its
// logs).
const attachWriteTimeout = 10 * time.Second

// fanout gives an attachable app's output (OpAttach) to its attach
// clients, besides its logs.
type fanout struct {
	// mu guards clients and closed.
	mu      sync.Mutex
	clients map[uint64]*attachClient
	closed  bool // the app's output ended
}

// attachClient is the stdout and stderr of one attach client (pollable
// files, so that writes can time out).
type attachClient struct{ out, err *os.File }

func (c *attachClient) close() {
	c.out.Close()
	c.err.Close()
}

func newFanout() *fanout { return &fanout{clients: map[uint64]*attachClient{}} }

// writer is the fanout's io.Writer for one stream.
func (f *fanout) writer(stream string) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		f.write(stream, p)
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }

func (f *fanout) write(stream string, p []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, c := range f.clients {
		w := c.out
		if stream == "stderr" {
			w = c.err
		}
		w.SetWriteDeadline(time.Now().Add(attachWriteTimeout))
		if _, err := w.Write(p); err != nil {
			c.close()
			delete(f.clients, id)
		}
	}
}

// add adds a client; after the output ended it only closes it (EOF).
func (f *fanout) add(id uint64, c *attachClient) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		c.close()
		return
	}
	f.clients[id] = c
}

func (f *fanout) remove(id uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.clients[id]; c != nil {
		c.close()
		delete(f.clients, id)
	}
}

// close ends the output: every client gets EOF.
func (f *fanout) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for id, c := range f.clients {
		c.close()
		delete(f.clients, id)
	}
}

// appStdin is the write end of an app's stdin pipe (App.Stdin), shared by
// its attach clients' copiers. *os.File is safe for concurrent use, and
// its Close interrupts a write parked on a full pipe, so closing never
// waits for a copier (the supervisor's loop closes it).
type appStdin struct {
	f    *os.File
	once sync.Once
}

func (s *appStdin) Write(p []byte) (int, error) { return s.f.Write(p) }

func (s *appStdin) close() { s.once.Do(func() { s.f.Close() }) }

// attachReq is a pending OpAttach: the reply comes when the app exits.
type attachReq struct {
	app  string
	conn int
	in   *os.File // the client's stdin, or nil
}

// attachable reports whether app's output goes through user space, where
// attach clients can get it: apps with a stdin pipe or a CRI log.
func (s *supervisor) attachable(app *App) bool {
	return app.Stdin || s.criLogs[app.Name] != nil || s.ttys[app.Name] != nil
}

// appStdinPipe makes the stdin pipe of an App.Stdin app: it returns the
// app's end, and keeps the other for attach clients.
func (s *supervisor) appStdinPipe(app *App) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	if old := s.stdins[app.Name]; old != nil {
		old.close()
	}
	s.stdins[app.Name] = &appStdin{f: w}
	return r, nil
}

// attach serves OpAttach: the request's fds are the client's stdin, stdout
// and stderr. The client gets the app's output from now on, and its stdin
// goes to the app's (AttachStdin, for an App.Stdin app). It is answered
// when the app exits, with its exit status.
func (s *supervisor) attach(r *enterReq) error {
	name := r.req.App
	app := s.app(name)
	switch {
	case app == nil:
		return fmt.Errorf("no app %q in this pod", name)
	case len(r.fds) != 3:
		return fmt.Errorf("attach request carries %d fds, want 3", len(r.fds))
	}
	if _, running := s.mains[name]; !running {
		return fmt.Errorf("app %s is not running", name)
	}
	fo := s.fanouts[name]
	if fo == nil {
		return fmt.Errorf("app %s cannot be attached to: it was started without stdin or a CRI log", name)
	}
	if s.ttys[name] != nil && r.req.AttachStdin {
		// Attach clients write to the terminal: its line discipline is
		// the app's stdin.
	} else if r.req.AttachStdin && s.stdins[name] == nil {
		return fmt.Errorf("app %s has no stdin to attach to", name)
	}
	files := make([]*os.File, 0, 3)
	for i, fd := range r.fds {
		if i == 0 && !r.req.AttachStdin {
			continue
		}
		f, err := pollableDup(fd)
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return err
		}
		files = append(files, f)
	}
	var in *os.File
	if r.req.AttachStdin {
		in, files = files[0], files[1:]
	}
	s.enterIDs++
	id := s.enterIDs
	fo.add(id, &attachClient{out: files[0], err: files[1]})
	s.attaches[id] = &attachReq{app: name, conn: r.conn, in: in}
	if in != nil {
		st, once := s.stdins[name], app.StdinOnce
		if t := s.ttys[name]; t != nil {
			// A terminal is not closed when a client's stdin ends.
			st, once = t.in, false
		}
		s.attachers.Add(1)
		go func() {
			defer s.attachers.Done()
			_, err := io.Copy(st, in)
			if err == nil && once {
				// The client's stdin ended: so does the app's (CRI
				// stdin_once).
				st.close()
			}
		}()
	}
	s.watchEnter(id, r.conn)
	return nil
}

// pollableDup duplicates fd as a non-blocking *os.File, whose reads and
// writes go through the runtime's poller (so Close interrupts them and
// deadlines work).
func pollableDup(fd int) (*os.File, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	return os.NewFile(uintptr(nfd), "attach"), nil
}

// detach ends attach id: its client went away, or its app exited (code).
func (s *supervisor) detach(id uint64, reply *EnterReply) {
	a := s.attaches[id]
	if a == nil {
		return
	}
	delete(s.attaches, id)
	if a.in != nil {
		a.in.Close() // ends its copier
	}
	if reply == nil {
		// The client is gone: so are its output files.
		if fo := s.fanouts[a.app]; fo != nil {
			fo.remove(id)
		}
		unix.Shutdown(a.conn, unix.SHUT_RDWR)
		unix.Close(a.conn)
		return
	}
	// The app exited: its output still drains to the client, whose files
	// close when it ended (fanout.close).
	replyEnter(a.conn, *reply)
}

// appExitedAttached answers the attach requests of an app that exited.
func (s *supervisor) appExitedAttached(name string, code int) {
	for id, a := range s.attaches {
		if a.app == name {
			s.detach(id, &EnterReply{Code: code})
		}
	}
}

// endAttaches ends every attach at the pod's end and waits for the stdin
// copiers.
func (s *supervisor) endAttaches() {
	for id := range s.attaches {
		s.detach(id, &EnterReply{Code: ExitLaunchFailed, Error: "pod is stopping"})
	}
	for _, st := range s.stdins {
		st.close()
	}
	s.attachers.Wait()
}

// appTTY is an app's terminal (AppStart.TTY): stage2 reads the app's
// output from the master and writes attach clients' input to it.
type appTTY struct {
	master, slave *os.File
	in            *appStdin // a dup of the master, for the clients' input
	ctl           int       // a dup of the master, for resizes
}

func (t *appTTY) close() {
	unix.Close(t.ctl)
	t.master.Close()
	if t.slave != nil {
		t.slave.Close()
	}
	t.in.close()
}

// setTTY keeps an app's terminal, received as fds with its start request
// (duplicates: the request's fds are closed after it).
func (s *supervisor) setTTY(app string, master, slave int) error {
	ctl, err := unix.FcntlInt(uintptr(master), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("app %s: terminal: %w", app, os.NewSyscallError("fcntl", err))
	}
	var files [3]*os.File
	for i, fd := range []int{master, slave, master} {
		nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			for _, f := range files[:i] {
				f.Close()
			}
			unix.Close(ctl)
			return fmt.Errorf("app %s: terminal: %w", app, os.NewSyscallError("fcntl", err))
		}
		files[i] = os.NewFile(uintptr(nfd), "tty")
	}
	if old := s.ttys[app]; old != nil {
		old.close()
	}
	s.ttys[app] = &appTTY{master: files[0], slave: files[1], in: &appStdin{f: files[2]}, ctl: ctl}
	return nil
}

// startOnTTY starts an app on its terminal: its output, read from the
// master, goes where a piped app's stdout goes (the pod's stdout, its log,
// its CRI log, attach clients).
func (s *supervisor) startOnTTY(app *App, t *appTTY) error {
	l, err := openAppLog(LogDir, app.Name, DefaultLogCap)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	appProc := app.Proc
	pid, err := s.launchWith(appProc, []*os.File{t.slave, t.slave, t.slave}, true)
	// The app holds the slave now; the master reads EIO once it is gone.
	t.slave.Close()
	t.slave = nil
	if err != nil {
		l.Close()
		return err
	}
	fo := s.fanouts[app.Name]
	done := make(chan struct{})
	master := t.master
	go func() {
		defer close(done)
		var cs *criStream
		if cri := s.criLogs[app.Name]; cri != nil {
			cs = newCRIStream(cri, "stdout")
			defer cs.Close()
		}
		var ws []io.Writer
		if cs != nil {
			ws = append(ws, cs)
		}
		if fo != nil {
			ws = append(ws, fo.writer("stdout"))
			defer fo.close()
		}
		copyLoop(master, os.Stdout, l, io.MultiWriter(ws...))
	}()
	s.logWaits = append(s.logWaits, func() {
		<-done
		l.Close()
	})
	s.log.Debug("app started on its terminal", "app", app.Name, "pid", pid)
	s.procs[pid] = proc{app: app, kind: kindMain}
	s.mains[app.Name] = pid
	atomicfile.Replace(layout.AppStarted(app.Name), nil, 0o644)
	return nil
}

// resize sets the size of an app's terminal.
func (s *supervisor) resize(app string, rows, cols uint16) error {
	t := s.ttys[app]
	if t == nil {
		return fmt.Errorf("app %s has no terminal", app)
	}
	if err := unix.IoctlSetWinsize(t.ctl, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		return fmt.Errorf("app %s: resize: %w", app, os.NewSyscallError("ioctl", err))
	}
	return nil
}
