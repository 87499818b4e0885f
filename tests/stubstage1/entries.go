package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// stop is `[--force] UUID` (rkt stop) or `--signal=N [--app=A] UUID` (rkt
// kill).
func stop(args []string) int {
	if s, ok := flagValue(args, "signal"); ok {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 || n > 64 {
			return fail("--signal=%s: want a signal number", s)
		}
		return signalApps(unix.Signal(n), args)
	}
	pod, err := readPodProc()
	if err != nil {
		return fail("stop: %v", err)
	}
	sig := unix.SIGTERM
	if hasFlag(args, "force") {
		// The apps die with it: their parent-death signal is SIGKILL.
		sig = unix.SIGKILL
	}
	if err := unix.Kill(pod.PID, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return fail("stop: %v", os.NewSyscallError("kill", err))
	}
	return 0
}

// signalApps sends sig to the main process of one app (--app) or of all.
func signalApps(sig unix.Signal, args []string) int {
	procs, err := readProcs()
	if err != nil {
		return fail("%v", err)
	}
	app, one := flagValue(args, "app")
	if one {
		p, ok := procs[app]
		if !ok {
			return fail("pod has no running app %q", app)
		}
		procs = map[string]proc{app: p}
	}
	for name, p := range procs {
		if !p.alive() {
			continue
		}
		if err := unix.Kill(p.PID, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			return fail("app %s: %v", name, os.NewSyscallError("kill", err))
		}
	}
	return 0
}

// enter is `--pid=N --appname=A -- CMD ARGS...`: CMD runs as root in the
// app's root (its mount namespace's view, through /proc/PID/root) with the
// app's environment; this process becomes it, so its exit status is rkt's.
func enter(args []string) int {
	app, ok := flagValue(args, "appname")
	if !ok {
		return fail("enter: --appname is required")
	}
	var cmd []string
	for i, a := range args {
		if a == "--" {
			cmd = args[i+1:]
			break
		}
	}
	if len(cmd) == 0 {
		return fail("enter: no command")
	}
	procs, err := readProcs()
	if err != nil {
		return fail("enter: %v", err)
	}
	p, ok := procs[app]
	if !ok || !p.alive() {
		return fail("enter: app %s is not running", app)
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.PID))
	if err != nil {
		return fail("enter: %v", err)
	}
	var env []string
	for _, kv := range bytes.Split(environ, []byte{0}) {
		if len(kv) > 0 {
			env = append(env, string(kv))
		}
	}
	root := fmt.Sprintf("/proc/%d/root", p.PID)
	if err := unix.Chroot(root); err != nil {
		return fail("enter: %v", &os.PathError{Op: "chroot", Path: root, Err: err})
	}
	if err := unix.Chdir("/"); err != nil {
		return fail("enter: %v", err)
	}
	// The app may have ended between the check and the chroot, and its PID
	// been reused: refuse unless it is still the same process.
	if !p.alive() {
		return fail("enter: app %s is not running", app)
	}
	path, err := lookPath(cmd[0], env)
	if err != nil {
		return fail("enter: %v", err)
	}
	err = unix.Exec(path, cmd, env)
	return fail("enter: exec %s: %v", cmd[0], err)
}

// gc is `[--debug] [--local-config=D] UUID`. The stub leaves no mount on the
// host (each app's mounts die with its namespace), so there is only one
// thing to collect: app processes that outlived a run killed by SIGKILL
// before their parent-death signal could matter. Running it again finds
// nothing to do.
func gc(args []string) int {
	procs, err := readProcs()
	if err != nil {
		return fail("gc %s: %v", lastArg(args), err)
	}
	var failed []string
	for name, p := range procs {
		if p.alive() {
			if err := unix.Kill(p.PID, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
				failed = append(failed, fmt.Sprintf("app %s: %v", name, err))
			}
		}
	}
	if len(failed) > 0 {
		return fail("gc %s: %s", lastArg(args), strings.Join(failed, "; "))
	}
	return 0
}
