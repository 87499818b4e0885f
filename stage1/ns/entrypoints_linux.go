package ns

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// GC is the gc entrypoint: it releases what a pod held on the host (network,
// cgroups, mounts) using only the records in the pod directory (the cwd), so
// it works after the run entrypoint was killed. It is idempotent.
func GC(args []string) error {
	fs := flag.NewFlagSet("gc", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Bool("debug", false, "")
	fs.String("local-config", "", "")
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
	p := &pod{dir: dir}
	return p.cleanup()
}

// Stop is the stop entrypoint: SIGTERM to the pod's init asks every app to
// stop gracefully; --force sends SIGKILL, which ends the PID namespace.
func Stop(args []string) error {
	fs := flag.NewFlagSet("stop", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	force := fs.Bool("force", false, "")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	b, err := os.ReadFile("pid")
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
