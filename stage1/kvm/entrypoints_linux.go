package kvm

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/untrusted"
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
	fs := flag.NewFlagSet("gc", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Bool("debug", false, "")
	local := fs.String("local-config", "", "")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	if fs.NArg() != 1 {
		return errors.New("gc: want exactly one pod UUID")
	}
	dir, err := os.Getwd()
	if err != nil {
		return err
	}
	opts, err := stage1.ReadOptions(layout.Dir(dir).Options())
	if err != nil {
		return err
	}
	return cleanup(ctx, dir, *local, opts)
}

// Stop is the stop entrypoint: SIGTERM to the run entrypoint, which
// forwards it to the guest, where the apps stop gracefully; --force sends
// SIGKILL, and qemu dies with the run entrypoint.
func Stop(args []string) error {
	fs := flag.NewFlagSet("stop", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	force := fs.Bool("force", false, "")
	// rkt-ng extension for `rkt kill`: a signal for the apps' main
	// processes, which the guest's stage2 sends.
	sigNum := fs.Int("signal", 0, "")
	app := fs.String("app", "", "")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	if *sigNum != 0 {
		code, err := callExec(channel.ExecRequest{App: *app, Signal: *sigNum}, nil)
		if err == nil && code != 0 {
			err = fmt.Errorf("stop: signal %d: exit code %d in the guest", *sigNum, code)
		}
		return err
	}
	b, err := untrusted.ReadFile(layout.Dir(".").PID(), 64)
	if err != nil {
		return fmt.Errorf("stop: pod has no pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return fmt.Errorf("stop: invalid pid %q", b)
	}
	sig := unix.SIGTERM
	if *force {
		sig = unix.SIGKILL
	}
	if err := unix.Kill(pid, sig); err != nil && err != unix.ESRCH {
		return os.NewSyscallError("kill", err)
	}
	return nil
}

// Enter is the enter entrypoint: `enter --pid=N --appname=A -- CMD ARGS`.
// The run entrypoint relays the command to the guest, where the namespace
// stage1's enter starts it inside the app with the app's own confinement;
// this process relays its stdin, stdout and stderr (as streams: there is
// no terminal in the guest) and returns its exit code.
func Enter(args []string) (int, error) {
	fs := flag.NewFlagSet("enter", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Int("pid", 0, "")
	app := fs.String("appname", "", "")
	if err := fs.Parse(args); err != nil {
		return 0, fmt.Errorf("enter: %w", err)
	}
	if fs.NArg() == 0 {
		return 0, errors.New("enter: no command given")
	}
	return callExec(channel.ExecRequest{App: *app, Args: fs.Args()}, os.Stdin)
}
