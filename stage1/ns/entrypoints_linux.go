package ns

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/pty"
	"github.com/rkt-ng/rkt/pods/layout"
	"github.com/rkt-ng/rkt/stage1"
	"github.com/rkt-ng/rkt/stage2"
)

// GC is the gc entrypoint: it releases what a pod held on the host (network,
// cgroups, mounts) using only the records in the pod directory (the cwd), so
// it works after the run entrypoint was killed. It is idempotent.
func GC(args []string) error {
	a, err := stage1.ParseGCArgs(args)
	if err != nil {
		return err
	}
	dir, err := os.Getwd()
	if err != nil {
		return err
	}
	p := &pod{dir: dir, log: slog.New(slog.DiscardHandler)}
	p.args.UUID, p.args.LocalConfig = a.UUID, a.LocalConfig
	if p.opts, err = stage1.ReadOptions(layout.Dir(dir).Options()); err != nil {
		return err
	}
	return p.cleanup()
}

// Stop is the stop entrypoint: SIGTERM to the pod's init asks every app to
// stop gracefully; --force sends SIGKILL, which ends the PID namespace.
func Stop(args []string) error {
	a, err := stage1.ParseStopArgs(args)
	if err != nil {
		return err
	}
	// rkt kill: stage2 signals the apps' main processes.
	if a.Signal != 0 {
		_, err := callStage2(stage2.EnterRequest{App: a.App, Signal: a.Signal}, nil)
		return err
	}
	return stage1.SignalPod(a.Force)
}

// Enter is the enter entrypoint: `enter --pid=N --appname=A -- CMD ARGS`. It
// asks the pod's stage2 to start the command inside the app with the app's
// own confinement, handing over this process's stdin, stdout and stderr, and
// returns the command's exit code.
func Enter(args []string) (int, error) {
	a, err := stage1.ParseEnterArgs(args)
	if err != nil {
		return 0, err
	}
	cmd, app := a.Cmd, a.App
	if len(cmd) == 0 {
		return 0, errors.New("enter: no command given")
	}
	// rkt's enter (stage1/enterexec) kept the caller's TERM, or set vt100.
	term := os.Getenv("TERM")
	if term == "" {
		term = "vt100"
	}
	if !pty.IsTerminal(0) {
		return callStage2(stage2.EnterRequest{App: app, Args: cmd, Term: term}, unix.UnixRights(0, 1, 2))
	}
	// On a terminal, the command gets a pseudo-terminal of its own that this
	// process relays: the caller's terminal never enters the pod.
	master, slave, err := pty.Open()
	if err != nil {
		return 0, fmt.Errorf("enter: %w", err)
	}
	defer master.Close()
	pty.CopySize(0, int(slave.Fd()))
	restore, err := pty.MakeRaw(0)
	if err != nil {
		slave.Close()
		return 0, fmt.Errorf("enter: %w", err)
	}
	defer restore()
	relay := pty.StartRelay(master, os.Stdin, os.Stdout)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGWINCH)
	defer signal.Stop(sigs)
	go func() {
		for range sigs {
			pty.CopySize(0, int(master.Fd()))
		}
	}()
	sfd := int(slave.Fd())
	code, err := callStage2(stage2.EnterRequest{App: app, Args: cmd, Terminal: true, Term: term}, unix.UnixRights(sfd, sfd, sfd))
	slave.Close()
	select {
	case <-relay.Done():
	case <-time.After(2 * time.Second):
	}
	return code, err
}

// callStage2 sends one request to the pod's stage2 (with oob, the caller's
// fds) and returns the code of its reply.
func callStage2(r stage2.EnterRequest, oob []byte) (int, error) {
	req, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	sock := layout.Dir(".").InStage1(layout.EnterSocket)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: sock}); err != nil {
		return 0, fmt.Errorf("connect to the pod's init: %w", &os.PathError{Op: "connect", Path: sock, Err: err})
	}
	if err := unix.Sendmsg(fd, req, oob, nil, 0); err != nil {
		return 0, os.NewSyscallError("sendmsg", err)
	}
	// Told to stop (SIGTERM: a CRI ExecSync past its timeout, a caller giving
	// up), the client says so by shutting down its side; stage2 then kills
	// the command's session and replies once its leader exited. So when this
	// process exits, the command is gone, not about to be.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	defer signal.Stop(sigs)
	replied := make(chan struct{})
	defer close(replied)
	go func() {
		select {
		case <-sigs:
			unix.Shutdown(fd, unix.SHUT_WR)
		case <-replied:
		}
	}()
	buf := make([]byte, 64<<10)
	n, err := unix.Read(fd, buf)
	if err != nil {
		return 0, os.NewSyscallError("read", err)
	}
	if n == 0 {
		return 0, errors.New("the pod's init closed the connection (pod exited?)")
	}
	var rep stage2.EnterReply
	if err := json.Unmarshal(buf[:n], &rep); err != nil {
		return 0, err
	}
	if rep.Error != "" {
		return 0, errors.New(rep.Error)
	}
	return rep.Code, nil
}
