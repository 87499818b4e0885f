// Command init is the PID 1 of the test machines of package tests/vm. It is a
// static binary (CGO_ENABLED=0) at /init in the initramfs.
//
// It first moves the initramfs contents into a tmpfs and makes that the root
// (pivot_root(2) refuses the initial rootfs, and the pods under test
// pivot_root), then mounts /proc, /sys, /dev, /dev/pts, /dev/shm, /run, /tmp
// and a cgroup2 hierarchy at /sys/fs/cgroup, loads the kernel modules of its
// configuration, brings up lo, runs the configured steps one after the other,
// prints one vm.Result per line on the console after vm.Marker, and powers
// the machine off. If the init itself fails it reports the error and powers
// off too; a panic ends in a kernel panic, which (with panic=-1 and qemu's
// -no-reboot) ends qemu.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/vm/guest"
	"github.com/rkt-ng/rkt/tests/vm"
)

func main() {
	if err := guest.SwitchRoot(); err != nil {
		fmt.Fprintf(os.Stderr, "init: switch root: %v\n", err)
		guest.PowerOff()
	}
	if err := run(); err != nil {
		report(vm.Result{Kind: vm.KindError, Exit: -1, Error: err.Error()})
	}
	guest.PowerOff()
}

func run() error {
	b, err := os.ReadFile(vm.ConfigPath)
	if err != nil {
		return err
	}
	var cfg vm.Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("%s: %w", vm.ConfigPath, err)
	}
	info, err := setup(&cfg)
	if err != nil {
		return err
	}
	report(vm.Result{Kind: vm.KindSetup, Info: info})
	for _, s := range cfg.Steps {
		report(runStep(s))
	}
	cgs, err := listCgroups()
	if err != nil {
		return err
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	report(vm.Result{Kind: vm.KindCgroups, Cgroups: cgs, Info: map[string]string{"cgroup_mounts": mounts}})
	report(vm.Result{Kind: vm.KindDone})
	return nil
}

func setup(cfg *vm.Config) (map[string]string, error) {
	if err := guest.MountSystem(cfg.CgroupOptions); err != nil {
		return nil, err
	}
	for _, m := range cfg.Modules {
		if err := guest.LoadModule(m); err != nil {
			return nil, err
		}
	}
	if err := guest.LinkUp("lo"); err != nil {
		return nil, err
	}
	if err := unix.Sethostname([]byte("rktvm")); err != nil {
		return nil, os.NewSyscallError("sethostname", err)
	}
	info := map[string]string{}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err == nil {
		info["kernel"] = unix.ByteSliceToString(uts.Release[:])
	}
	for key, file := range map[string]string{
		"proc_self_cgroup":        "/proc/self/cgroup",
		"cmdline":                 "/proc/cmdline",
		"root_cgroup_controllers": "/sys/fs/cgroup/cgroup.controllers",
		"root_cgroup_subtree":     "/sys/fs/cgroup/cgroup.subtree_control",
		"filesystems":             "/proc/filesystems",
		"proc_modules":            "/proc/modules",
	} {
		b, err := os.ReadFile(file)
		if err != nil {
			info[key] = "error: " + err.Error()
			continue
		}
		info[key] = strings.TrimSpace(string(b))
	}
	cgMounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	info["cgroup_mounts"] = cgMounts
	return info, nil
}

// cgroupMounts returns the cgroup lines of /proc/self/mountinfo.
func cgroupMounts() (string, error) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	var cg []string
	for line := range strings.Lines(string(mi)) {
		if strings.Contains(line, " - cgroup") {
			cg = append(cg, strings.TrimSpace(line))
		}
	}
	return strings.Join(cg, "\n"), nil
}

func runStep(s vm.Step) vm.Result {
	r := vm.Result{Kind: vm.KindStep, Name: s.Name, Exit: -1}
	if len(s.Argv) == 0 {
		r.Error = "empty argv"
		return r
	}
	timeout := time.Duration(s.TimeoutSec) * time.Second
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.Argv[0], s.Argv[1:]...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}
	cmd.Dir = "/"
	cmd.Cancel = func() error { return cmd.Process.Signal(unix.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r.Millis = time.Since(start).Milliseconds()
	r.Stdout, r.Stderr = stdout.String(), stderr.String()
	if ps := cmd.ProcessState; ps != nil {
		r.Exit = ps.ExitCode()
		// os.ProcessState.Sys is a syscall.WaitStatus: the stdlib type
		// forces the syscall package here.
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.Exit = 128 + int(ws.Signal())
			r.Error = "killed by " + ws.Signal().String()
		}
	}
	if ctx.Err() != nil {
		r.Error = "timed out after " + timeout.String()
	} else if err != nil && r.Exit < 0 {
		r.Error = err.Error()
	}
	return r
}

// listCgroups returns every cgroup directory of /sys/fs/cgroup relative to
// it, the root "." first.
func listCgroups() ([]string, error) {
	var out []string
	err := filepath.WalkDir("/sys/fs/cgroup", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			rel, err := filepath.Rel("/sys/fs/cgroup", p)
			if err != nil {
				return err
			}
			out = append(out, rel)
		}
		return nil
	})
	return out, err
}

// report prints r on the console as one marked line.
func report(r vm.Result) {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) == nil {
		r.BootMillis = ts.Nano() / 1e6
	}
	b, err := json.Marshal(r)
	if err != nil {
		b, _ = json.Marshal(vm.Result{Kind: vm.KindError, Error: err.Error()})
	}
	os.Stdout.Write(append(append([]byte("\n"+vm.Marker), b...), '\n'))
}
