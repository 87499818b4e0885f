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
	sigNum := fs.Int("signal", 0, "")
	fs.String("app", "", "")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	if *sigNum != 0 {
		return errors.New("stop: signals for one app (rkt kill) are not implemented by the KVM stage1 yet (docs/kvm.md)")
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

// Enter is the enter entrypoint. rkt enter is not implemented by the KVM
// stage1 yet (docs/kvm.md).
func Enter(args []string) (int, error) {
	return 0, errors.New("enter: rkt enter is not implemented by the KVM stage1 yet (docs/kvm.md)")
}
