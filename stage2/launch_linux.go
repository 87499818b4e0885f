package stage2

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/stage2/caps"
	"github.com/rkt-ng/rkt/stage2/seccomp"
)

// LaunchCommand is the hidden argv[1] of the stage2 binary that turns a
// freshly started copy of it into one confined app process.
const LaunchCommand = "exec-app"

// Fds of a launcher: its Proc as JSON, and a close-on-exec pipe that carries a
// setup error back; EOF without data on it means the exec succeeded.
const (
	launchConfigFd = 3
	launchErrorFd  = 4
)

// Launch is the body of `stage2 exec-app`. The caller has locked the main
// goroutine to its thread before any other goroutine started: every
// per-thread step below (capabilities, no_new_privs, seccomp) must happen on
// the thread that calls execve. It returns only on failure, after reporting
// the error on the error pipe.
func Launch() error {
	// The pipe must close when exec succeeds: that EOF is the success signal.
	unix.CloseOnExec(launchErrorFd)
	err := launch()
	unix.Write(errPipeFd, []byte(err.Error()))
	unix.Close(errPipeFd)
	return err
}

// errPipeFd is where setup errors are reported; placeListenFds moves it.
var errPipeFd = launchErrorFd

func launch() error {
	// Until the exec, this process holds the pod's full privileges and sees
	// the stage1 root: nothing of the pod may ptrace it or open its
	// /proc/PID/{root,exe,fd} (exec makes the app dumpable again).
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl(PR_SET_DUMPABLE)", err)
	}
	cfgFile := os.NewFile(launchConfigFd, "config")
	if cfgFile == nil {
		return errors.New("launcher started without its config fd")
	}
	var p Proc
	err := json.NewDecoder(cfgFile).Decode(&p)
	cfgFile.Close()
	if err != nil {
		return fmt.Errorf("decode launch config: %w", err)
	}
	if len(p.Args) == 0 {
		return errors.New("no command to run")
	}
	if p.ListenFds > 0 {
		if err := placeListenFds(&p); err != nil {
			return err
		}
	}
	// "0" is the writer itself; on v1 (tasks files) just this thread, which
	// is the one that execs.
	for _, f := range p.CgroupProcs {
		if err := os.WriteFile(f, []byte("0"), 0); err != nil {
			return fmt.Errorf("join cgroup %s: %w", filepath.Dir(f), err)
		}
	}
	if p.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*p.OOMScoreAdj)), 0); err != nil {
			return fmt.Errorf("set oom_score_adj: %w", err)
		}
	}
	if err := pivotInto(p.Root); err != nil {
		return err
	}
	wd := p.WorkingDir
	if wd == "" {
		wd = "/"
	}
	if err := unix.Chdir(wd); err != nil {
		return fmt.Errorf("working directory %s: %w", wd, err)
	}
	argv0, err := lookPath(p.Args[0], p.Env)
	if err != nil {
		return err
	}
	var capSet caps.Set
	if !p.CapsUnrestricted {
		if capSet, err = caps.Resolve(p.Caps, nil); err != nil {
			return err
		}
	}
	var filter *seccomp.Filter
	if p.Seccomp != nil {
		mode := seccomp.Remove
		if p.Seccomp.Retain {
			mode = seccomp.Retain
		}
		if filter, err = seccomp.Build(mode, p.Seccomp.Syscalls, p.Seccomp.Errno); err != nil {
			return err
		}
	}
	groups := make([]int, len(p.Groups))
	for i, g := range p.Groups {
		groups[i] = int(g)
	}
	if err := unix.Setgroups(groups); err != nil {
		return os.NewSyscallError("setgroups", err)
	}
	if err := unix.Setresgid(int(p.GID), int(p.GID), int(p.GID)); err != nil {
		return os.NewSyscallError("setresgid", err)
	}
	// Order matters: a seccomp filter can only be installed with
	// no_new_privs or CAP_SYS_ADMIN, which the app's capability set usually
	// lacks, so the filter goes in before capabilities are dropped; every
	// call after it (prctl, capset, setresuid, execve) is in seccomp's
	// essential set.
	if p.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return os.NewSyscallError("prctl(PR_SET_NO_NEW_PRIVS)", err)
		}
	}
	if filter != nil {
		if err := filter.Install(); err != nil {
			return err
		}
	}
	if p.CapsUnrestricted {
		if err := unix.Setresuid(int(p.UID), int(p.UID), int(p.UID)); err != nil {
			return os.NewSyscallError("setresuid", err)
		}
	} else {
		granted := capSet
		if p.UID != 0 && !p.CapsRetained {
			granted = 0
		}
		if err := caps.Apply(capSet, granted, int(p.UID)); err != nil {
			return err
		}
	}
	err = unix.Exec(argv0, p.Args, p.Env)
	return fmt.Errorf("exec %s: %w", p.Args[0], err)
}

// pivotInto makes root the root of this process's mount namespace (a new
// one, from the launcher's clone) and detaches everything else: the stage1
// root, the other apps and the pod's own /proc are unreachable from the app
// afterwards, by any path (chroot(2) alone leaves them one chdir("..") away
// for a process with CAP_SYS_CHROOT). root is a mount point (pod setup binds
// every app rootfs onto itself).
func pivotInto(root string) error {
	if err := unix.Chdir(root); err != nil {
		return &os.PathError{Op: "chdir", Path: root, Err: err}
	}
	// pivot_root(".", ".") stacks the old root on top of the new one, and
	// the lazy unmount drops it with every mount below it (pivot_root(2),
	// "NOTES"); the new root keeps its own submounts.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root into %s: %w", root, os.NewSyscallError("pivot_root", err))
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return os.NewSyscallError("umount pod root", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return os.NewSyscallError("chdir /", err)
	}
	return nil
}

// lookPath resolves a command without a slash through the app's PATH, inside
// the app's root (the caller has pivoted into it).
func lookPath(cmd string, env []string) (string, error) {
	if strings.Contains(cmd, "/") {
		if _, err := os.Stat(cmd); err != nil {
			return "", fmt.Errorf("executable %s: %w", cmd, err)
		}
		return cmd, nil
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		full := filepath.Join(dir, cmd)
		fi, err := os.Stat(full)
		if err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return full, nil
		}
	}
	return "", fmt.Errorf("executable %s: not found in PATH %q", cmd, path)
}

// listenFdsFrom is where the supervisor puts an app's socket-activated
// listeners in the launcher: after stdio, the config (3) and the error pipe (4).
const listenFdsFrom = 5

// placeListenFds moves the error pipe out of the way and the listeners to
// fds 3.. (without close-on-exec), and sets the environment that
// sd_listen_fds(3) reads. LISTEN_PID is this process's PID, which the app
// keeps across exec.
func placeListenFds(p *Proc) error {
	errFd, err := unix.FcntlInt(launchErrorFd, unix.F_DUPFD_CLOEXEC, 100)
	if err != nil {
		return os.NewSyscallError("fcntl", err)
	}
	// Errors are reported through the copy from now on: the listeners may
	// take fd 4.
	errPipeFd = errFd
	for i := 0; i < p.ListenFds; i++ {
		if err := unix.Dup3(listenFdsFrom+i, 3+i, 0); err != nil {
			return os.NewSyscallError("dup3", err)
		}
	}
	for i := 3 + p.ListenFds; i < listenFdsFrom+p.ListenFds; i++ {
		unix.Close(i)
	}
	p.Env = append(p.Env, "LISTEN_FDS="+strconv.Itoa(p.ListenFds), "LISTEN_PID="+strconv.Itoa(os.Getpid()))
	if len(p.ListenNames) > 0 {
		p.Env = append(p.Env, "LISTEN_FDNAMES="+strings.Join(p.ListenNames, ":"))
	}
	return nil
}
