package stage2

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/rkt-ng/rkt/internal/reexec"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/atomicfile"
	"github.com/rkt-ng/rkt/internal/eintr"
	"github.com/rkt-ng/rkt/pods/layout"
)

// Fds of the init: its Config, and an optional pipe on which it writes
// "ready\n" once every app has started (stage1 turns that into sd_notify).
const (
	initConfigFd = 3
	initReadyFd  = 4
)

// ExitLaunchFailed is recorded for an app that could not be started (bad
// working directory, missing executable, confinement failure): it is rkt's own
// error code, so `rkt run` exits with it.
const ExitLaunchFailed = 254

type procKind int

const (
	kindMain procKind = iota
	kindHandler
	kindEnter
)

type proc struct {
	app  *App
	kind procKind
	conn int // kindEnter: the client connection to reply on
	// id (kindEnter) names the request for its client watcher (watchEnter).
	id uint64
}

// supervisor is the pod's PID 1.
type supervisor struct {
	cfg *Config
	log *slog.Logger

	procs     map[int]proc            // live processes we started, by pid
	exited    map[int]unix.WaitStatus // reaped while waiting for someone else
	mains     map[string]int          // app name -> main pid while running
	codes     map[string]int          // app name -> exit code once exited
	order     []string                // app names in start order
	killed    map[int]bool            // pids we sent the stop signal to
	sigs      chan os.Signal          // every signal we handle
	enterCh   chan *enterReq          // rkt enter requests from the socket goroutine
	readyCh   chan string             // apps that sent READY=1 on their notify socket
	waiting   map[string]bool         // notify apps that have not said READY=1 yet
	readyDone bool                    // the pod was declared ready
	logWaits  []func()                // wait for the log copiers to drain
	ready     *os.File                // readiness pipe to stage1, or nil
	first     *failure                // the first app failure, nil while none
	// stopping is set once the pod was asked to stop (SIGTERM, SIGINT): a
	// mutable pod ends when its apps are gone.
	stopping bool
	// stops are the pending app stops of a mutable pod (OpStop), by app.
	stops map[string]*appStop
	// mount and unmount add and remove apps' mounts (WithAppMounts).
	mount       Mounter
	unmount     Unmounter
	notifyStops []func() // notify sockets of added apps
	// criLogs are the CRI logs of added apps that have one, by app.
	criLogs map[string]*criLog
	// Enter client watchers (watchEnter): they report on enterGone the id
	// of an enter whose client went away, until watchQuit is closed, and
	// watchers waits for them.
	enterIDs  uint64
	enterGone chan uint64
	watchQuit chan struct{}
	watchers  sync.WaitGroup
	// Attach (attach_linux.go): the output fanouts of attachable apps and
	// the stdin pipes of App.Stdin apps, by app; the pending attach
	// requests, by id; attachers waits for their stdin copiers.
	fanouts   map[string]*fanout
	stdins    map[string]*appStdin
	attaches  map[uint64]*attachReq
	attachers sync.WaitGroup
	// ttys are the terminals of apps started with AppStart.TTY, by app.
	ttys map[string]*appTTY
}

// Init is the body of the stage2 binary as the pod's PID 1. It returns the
// pod's exit code.
func Init(log *slog.Logger, opts ...Option) int {
	cfgFile := os.NewFile(initConfigFd, "config")
	if cfgFile == nil {
		log.Error("stage2 started without its config fd")
		return ExitLaunchFailed
	}
	cfg, err := ReadConfig(cfgFile)
	cfgFile.Close()
	if err != nil {
		log.Error("stage2 config", "err", err)
		return ExitLaunchFailed
	}
	s := &supervisor{
		cfg:       cfg,
		log:       log,
		procs:     map[int]proc{},
		exited:    map[int]unix.WaitStatus{},
		mains:     map[string]int{},
		codes:     map[string]int{},
		killed:    map[int]bool{},
		sigs:      make(chan os.Signal, 32),
		enterCh:   make(chan *enterReq),
		readyCh:   make(chan string),
		waiting:   map[string]bool{},
		stops:     map[string]*appStop{},
		criLogs:   map[string]*criLog{},
		fanouts:   map[string]*fanout{},
		stdins:    map[string]*appStdin{},
		attaches:  map[uint64]*attachReq{},
		ttys:      map[string]*appTTY{},
		enterGone: make(chan uint64),
		watchQuit: make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	if f := os.NewFile(initReadyFd, "ready"); f != nil {
		if _, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0); err == nil {
			s.ready = f
		}
	}
	signal.Notify(s.sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH)
	return s.run()
}

func (s *supervisor) run() int {
	if err := os.MkdirAll(StatusDir, 0o755); err != nil {
		s.log.Error("create status dir", "err", err)
		return ExitLaunchFailed
	}
	for _, f := range s.cfg.InitCgroupProcs {
		// The main goroutine is locked to the thread that starts every app.
		if err := os.WriteFile(f, []byte("0"), 0); err != nil {
			fmt.Fprintf(os.Stderr, "rkt: pod init: join cgroup %s: %v\n", filepath.Dir(f), err)
			return ExitLaunchFailed
		}
	}
	stopping := false
	var stops []func()
	defer func() {
		for _, stop := range append(stops, s.notifyStops...) {
			stop()
		}
	}()
	for i := range s.cfg.Apps {
		app := &s.cfg.Apps[i]
		s.order = append(s.order, app.Name)
		if app.NotifySocket != "" {
			stop, err := s.listenNotify(app.Name, app.NotifySocket)
			if err != nil {
				fmt.Fprintf(os.Stderr, "rkt: app %s: notify socket: %v\n", app.Name, err)
				s.fail(app.Name, ExitLaunchFailed)
				stopping = true
				break
			}
			stops = append(stops, stop)
			s.waiting[app.Name] = true
		}
		if err := s.startApp(app); err != nil {
			fmt.Fprintf(os.Stderr, "rkt: app %s: %v\n", app.Name, err)
			s.fail(app.Name, ExitLaunchFailed)
			stopping = true
			break
		}
	}
	if stopping {
		s.stopAll()
	} else {
		s.maybeReady()
	}
	stopEnter, err := s.listenEnter(EnterSocket)
	if err != nil {
		s.log.Warn("rkt enter will not work for this pod", "err", err)
		stopEnter = func() {}
	}
	s.loop(stopping)
	stopEnter()
	close(s.watchQuit)
	for _, name := range s.order {
		if app := s.app(name); app != nil && len(app.PostStop) > 0 {
			if _, started := s.codes[name]; started {
				s.runHandler(app, app.PostStop, "post-stop")
			}
		}
	}
	// PID 1 of the pod's PID namespace: kill(-1) reaches every process left in
	// it, so nothing an app forked outlives the pod.
	unix.Kill(-1, unix.SIGKILL)
	s.reapAll(true)
	s.endAttaches()
	// Every enter and attach was replied to, which ends its watcher.
	s.watchers.Wait()
	// Every writer is dead now, so the copiers see EOF and finish.
	for _, wait := range s.logWaits {
		wait()
	}
	if s.first != nil && !s.cfg.Mutable {
		return s.first.code
	}
	return 0
}

// running reports whether the supervisor loop goes on: while an app runs,
// and for a mutable pod until it is asked to stop.
func (s *supervisor) running() bool {
	return len(s.mains) > 0 || (s.cfg.Mutable && !s.stopping)
}

// maybeReady declares the pod ready once every app started and every
// notify app said READY=1: the supervisor-status symlink for `rkt status
// --wait-ready`, and the readiness pipe stage1 turns into sd_notify.
func (s *supervisor) maybeReady() {
	if len(s.waiting) > 0 || s.readyDone {
		return
	}
	s.readyDone = true
	if err := os.Symlink(layout.SupervisorReady, SupervisorStatus); err != nil && !errors.Is(err, os.ErrExist) {
		s.log.Warn("write supervisor status", "err", err)
	}
	if s.ready != nil {
		s.ready.Write([]byte("ready\n"))
		s.ready.Close()
		s.ready = nil
	}
}

func (s *supervisor) app(name string) *App {
	for i := range s.cfg.Apps {
		if s.cfg.Apps[i].Name == name {
			return &s.cfg.Apps[i]
		}
	}
	return nil
}

// startApp runs the pre-start handler to completion, then starts the app.
func (s *supervisor) startApp(app *App) error {
	if len(app.PreStart) > 0 {
		code, err := s.runHandler(app, app.PreStart, "pre-start")
		if err != nil {
			return fmt.Errorf("pre-start: %w", err)
		}
		if code != 0 {
			return fmt.Errorf("pre-start handler %q exited with status %d", app.PreStart[0], code)
		}
	}
	stdin := os.Stdin
	if s.attachable(app) && !app.Terminal {
		s.fanouts[app.Name] = newFanout()
	}
	if t := s.ttys[app.Name]; t != nil && !app.Terminal {
		return s.startOnTTY(app, t)
	}
	if app.Stdin && !app.Terminal {
		r, err := s.appStdinPipe(app)
		if err != nil {
			return fmt.Errorf("stdin: %w", err)
		}
		defer r.Close() // the app holds its own copy once launched
		stdin = r
	}
	stdout, stderr, closeOut, err := s.capture(app)
	if err != nil {
		return err
	}
	appProc := app.Proc
	extra := make([]*os.File, 0, len(app.ListenFds))
	for _, fd := range app.ListenFds {
		extra = append(extra, os.NewFile(uintptr(fd), "listener"))
	}
	appProc.ListenFds, appProc.ListenNames = len(extra), app.ListenNames
	pid, err := s.launchWith(appProc, []*os.File{stdin, stdout, stderr}, app.Terminal, extra...)
	// The app holds its own copies of the write ends now.
	closeOut()
	if err != nil {
		return err
	}
	s.log.Debug("app started", "app", app.Name, "pid", pid)
	s.procs[pid] = proc{app: app, kind: kindMain}
	s.mains[app.Name] = pid
	atomicfile.Replace(layout.AppStarted(app.Name), nil, 0o644)
	return nil
}

// handlerProc is the app's process description turned into an event
// handler's: same root, environment and confinement, but run as root.
func handlerProc(app *App, args []string) Proc {
	p := app.Proc
	p.Args = args
	p.UID, p.GID, p.Groups = 0, 0, nil
	return p
}

func (s *supervisor) runHandler(app *App, args []string, what string) (int, error) {
	pid, err := s.launch(handlerProc(app, args))
	if err != nil {
		fmt.Fprintf(os.Stderr, "rkt: app %s: %s handler: %v\n", app.Name, what, err)
		return ExitLaunchFailed, err
	}
	s.procs[pid] = proc{app: app, kind: kindHandler}
	ws := s.waitFor(pid)
	return exitCode(ws), nil
}

// launch starts `stage2 exec-app` for p with the pod's stdio and waits until
// it has exec'd the command or failed.
func (s *supervisor) launch(p Proc) (int, error) {
	return s.launchWith(p, []*os.File{os.Stdin, os.Stdout, os.Stderr}, false)
}

// launchWith is launch with the given stdin, stdout and stderr, and extra
// files placed after the launcher's own fds (socket-activated listeners).
//
// The launcher starts in a mount namespace of its own (it pivots into the
// app's root) and in a session of its own: no process of the pod shares the
// caller's session or has the caller's terminal as its controlling terminal
// (TIOCSTI). With ctty, stdio[0] becomes its controlling terminal.
func (s *supervisor) launchWith(p Proc, stdio []*os.File, ctty bool, extra ...*os.File) (pid int, retErr error) {
	// A launcher that reported an error exits by itself; reap it here, as
	// this init reaps every child.
	c := reexec.Child{Reap: func(proc *os.Process) {
		s.procs[proc.Pid] = failedLauncher
		s.waitFor(proc.Pid)
	}}
	defer c.Finish(&retErr)
	c.AddFile(stdio...)
	cfgW, _, err := c.PipeTo()
	if err != nil {
		return 0, err
	}
	errR, _, err := c.PipeFrom()
	if err != nil {
		return 0, err
	}
	defer errR.Close()
	c.AddFile(extra...)
	// The config is far below the pipe buffer, so the write cannot block
	// before the launcher runs.
	if err := c.SendJSON(cfgW, p); err != nil {
		return 0, err
	}
	// /proc/self/exe, not os.Executable: the path this binary was started
	// from lies outside the pod's root since pod setup pivoted.
	err = c.Start("/proc/self/exe", []string{"stage2", LaunchCommand}, &os.ProcAttr{
		Env: []string{},
		Sys: &syscall.SysProcAttr{Setsid: true, Setctty: ctty, Ctty: 0, Cloneflags: unix.CLONE_NEWNS},
	})
	if err != nil {
		return 0, fmt.Errorf("start launcher: %w", err)
	}
	msg, _ := io.ReadAll(io.LimitReader(errR, 4096))
	if len(msg) > 0 {
		return 0, errors.New(string(msg))
	}
	return c.Process.Pid, nil
}

// failedLauncher stands for a launcher that reported an error and exits.
var failedLauncher = proc{kind: kindHandler}

// waitFor blocks until pid exits, reaping (and remembering) others meanwhile.
func (s *supervisor) waitFor(pid int) unix.WaitStatus {
	for {
		if ws, ok := s.exited[pid]; ok {
			delete(s.exited, pid)
			return ws
		}
		var ws unix.WaitStatus
		got, err := eintr.Retry2(func() (int, error) { return unix.Wait4(-1, &ws, 0, nil) })
		if err != nil {
			return ws
		}
		if got == pid {
			delete(s.procs, pid)
			return ws
		}
		s.exited[got] = ws
	}
}

// reapAll collects exited children; with block it waits until none is left.
func (s *supervisor) reapAll(block bool) {
	flags := unix.WNOHANG
	if block {
		flags = 0
	}
	for pid, ws := range s.exited {
		delete(s.exited, pid)
		s.onExit(pid, ws)
	}
	for {
		var ws unix.WaitStatus
		pid, err := eintr.Retry2(func() (int, error) { return unix.Wait4(-1, &ws, flags, nil) })
		if err != nil || pid <= 0 {
			return
		}
		s.onExit(pid, ws)
	}
}

func (s *supervisor) onExit(pid int, ws unix.WaitStatus) {
	p, ok := s.procs[pid]
	if !ok {
		return // an orphan re-parented to us: reaped, nothing to record
	}
	delete(s.procs, pid)
	if p.kind == kindEnter {
		replyEnter(p.conn, EnterReply{Code: exitCode(ws)})
		return
	}
	if p.kind != kindMain {
		return
	}
	name := p.app.Name
	delete(s.mains, name)
	code := exitCode(ws)
	if s.killed[pid] && ws.Signaled() {
		// Its status is the stop's (its stop signal, or SIGKILL after the
		// timeout): `rkt status` says so.
		atomicfile.Replace(layout.AppStopped(name), nil, 0o644)
	}
	s.record(name, code)
	s.stopped(name, code)
	s.appExitedAttached(name, code)
	stoppedByUs := s.killed[pid] && ws.Signaled() && ws.Signal() == stopSignal(p.app)
	if code != 0 && !stoppedByUs && s.first == nil && !s.cfg.Mutable {
		s.first = &failure{name, code}
		s.log.Debug("app failed, stopping the pod", "app", name, "code", code)
		s.stopAll()
	}
}

// failure is the first app failure, which decides the pod's exit code.
type failure struct {
	app  string
	code int
}

// fail records an app that could not be started as the pod's failure.
func (s *supervisor) fail(app string, code int) {
	s.record(app, code)
	if s.first == nil {
		s.first = &failure{app, code}
	}
}

func (s *supervisor) record(app string, code int) {
	s.codes[app] = code
	if err := atomicfile.Replace(layout.AppStatus(app), []byte(strconv.Itoa(code)), 0o644); err != nil {
		s.log.Warn("record exit status", "app", app, "err", err)
	}
}

func stopSignal(app *App) unix.Signal {
	if app.StopSignal > 0 {
		return unix.Signal(app.StopSignal)
	}
	return unix.SIGTERM
}

// stopAll sends every running app its stop signal.
func (s *supervisor) stopAll() {
	for name, pid := range s.mains {
		if s.killed[pid] {
			continue
		}
		s.killed[pid] = true
		unix.Kill(pid, stopSignal(s.app(name)))
	}
}

// loop runs until every app's main process has exited.
func (s *supervisor) loop(stopping bool) {
	var deadline <-chan time.Time
	timeout := s.cfg.StopTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	if stopping {
		s.stopping = true
		deadline = time.After(timeout)
	}
	for s.running() {
		appDeadline := s.nextStopDeadline()
		select {
		case sig := <-s.sigs:
			switch sig {
			case unix.SIGCHLD:
				s.reapAll(false)
			case unix.SIGTERM, unix.SIGINT:
				s.stopping = true
				s.stopAll()
				if deadline == nil {
					deadline = time.After(timeout)
				}
			default:
				// SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH go to the apps' main
				// processes only, not to everything in the pod (rkt #3512).
				for _, pid := range s.mains {
					unix.Kill(pid, sig.(unix.Signal))
				}
			}
		case r := <-s.enterCh:
			s.startEnter(r)
		case id := <-s.enterGone:
			s.enterClientGone(id)
		case app := <-s.readyCh:
			delete(s.waiting, app)
			if s.first == nil && deadline == nil {
				s.maybeReady()
			}
		case <-deadline:
			for _, pid := range s.mains {
				unix.Kill(pid, unix.SIGKILL)
			}
			deadline = nil
		case <-appDeadline:
			s.killOverdue()
		}
		if s.first != nil && deadline == nil && len(s.mains) > 0 {
			deadline = time.After(timeout)
		}
	}
}

// exitCode maps a wait status to a shell-style code.
func exitCode(ws unix.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return ExitLaunchFailed
}
