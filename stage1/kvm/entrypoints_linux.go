package kvm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/pty"
	"github.com/rkt-ng/rkt/pods/layout"
	"github.com/rkt-ng/rkt/stage1"
	"github.com/rkt-ng/rkt/stage1/kvm/channel"
)

// GC is the gc entrypoint: it releases what a pod held on the host (its
// cgroup, with qemu if it is still there, its networks with the taps,
// and the mounts) using only the
// records in the pod directory (the cwd), so it works after the run
// entrypoint was killed. It is idempotent.
func GC(ctx context.Context, args []string) error {
	a, err := stage1.ParseGCArgs(args)
	if err != nil {
		return err
	}
	dir, err := os.Getwd()
	if err != nil {
		return err
	}
	opts, err := stage1.ReadOptions(layout.Dir(dir).Options())
	if err != nil {
		return err
	}
	return cleanup(ctx, dir, a.LocalConfig, opts)
}

// Stop is the stop entrypoint: SIGTERM to the run entrypoint, which
// forwards it to the guest, where the apps stop gracefully; --force sends
// SIGKILL, and qemu dies with the run entrypoint.
func Stop(args []string) error {
	a, err := stage1.ParseStopArgs(args)
	if err != nil {
		return err
	}
	// rkt kill: the guest's stage2 signals the apps' main processes.
	if a.Signal != 0 {
		code, err := callExec(channel.ExecRequest{App: a.App, Signal: a.Signal}, nil, nil)
		if err == nil && code != 0 {
			err = fmt.Errorf("stop: signal %d: exit code %d in the guest", a.Signal, code)
		}
		return err
	}
	return stage1.SignalPod(a.Force)
}

// Enter is the enter entrypoint: `enter --pid=N --appname=A -- CMD ARGS`.
// The run entrypoint relays the command to the guest, where the namespace
// stage1's enter starts it inside the app with the app's own confinement;
// this process relays its stdin, stdout and stderr and returns its exit
// code. When its stdin is a terminal, the command gets a pseudo-terminal
// in the guest instead: this process puts its terminal in raw mode,
// relays what is typed and what the command writes, and passes on its
// window size and changes of it (SIGWINCH). The caller's terminal itself
// never leaves the host.
func Enter(args []string) (int, error) {
	a, err := stage1.ParseEnterArgs(args)
	if err != nil {
		return 0, err
	}
	if len(a.Cmd) == 0 {
		return 0, errors.New("enter: no command given")
	}
	req := channel.ExecRequest{App: a.App, Args: a.Cmd}
	if !pty.IsTerminal(0) {
		return callExec(req, os.Stdin, nil)
	}
	// rkt's enter (stage1/enterexec) kept the caller's TERM, or set vt100.
	req.Terminal, req.Term = true, os.Getenv("TERM")
	if req.Term == "" {
		req.Term = "vt100"
	}
	if ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ); err == nil {
		req.Rows, req.Cols = ws.Row, ws.Col
	}
	restore, err := pty.MakeRaw(0)
	if err != nil {
		return 0, fmt.Errorf("enter: %w", err)
	}
	defer restore()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGWINCH)
	resize := make(chan channel.ResizeMsg, 1)
	done := make(chan struct{})
	go func() {
		defer close(resize)
		for {
			select {
			case <-sigs:
			case <-done:
				return
			}
			if ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ); err == nil {
				select {
				case resize <- channel.ResizeMsg{Rows: ws.Row, Cols: ws.Col}:
				case <-done:
					return
				}
			}
		}
	}()
	code, err := callExec(req, os.Stdin, resize)
	signal.Stop(sigs)
	close(done)
	return code, err
}
