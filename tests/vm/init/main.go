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
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/tests/vm"
)

// stageEnv marks the init re-executed in the new root.
const stageEnv = "RKTVM_STAGE=2"

const newRoot = "/newroot"

func main() {
	if !strings.Contains(strings.Join(os.Environ(), "\n"), stageEnv) {
		if err := switchRoot(); err != nil {
			fmt.Fprintf(os.Stderr, "init: switch root: %v\n", err)
			powerOff()
		}
	}
	if err := run(); err != nil {
		report(vm.Result{Kind: vm.KindError, Exit: -1, Error: err.Error()})
	}
	powerOff()
}

// switchRoot copies the initramfs into a tmpfs, moves that over / and
// re-executes the init there (what switch_root(8) does).
func switchRoot() error {
	if err := os.MkdirAll(newRoot, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", newRoot, "tmpfs", 0, "mode=755"); err != nil {
		return os.NewSyscallError("mount tmpfs", err)
	}
	err := filepath.WalkDir("/", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == newRoot {
			return fs.SkipDir
		}
		if p == "/" {
			return nil
		}
		dst := filepath.Join(newRoot, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Mkdir(dst, info.Mode().Perm())
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, dst)
		case d.Type().IsRegular():
			if err := copyFile(p, dst, info.Mode().Perm()); err != nil {
				return err
			}
			// Free the initramfs copy as we go: it stays hidden anyway.
			return os.Remove(p)
		}
		return nil // device nodes: /dev is a devtmpfs in the new root
	})
	if err != nil {
		return err
	}
	if err := os.Chdir(newRoot); err != nil {
		return err
	}
	if err := unix.Mount(newRoot, "/", "", unix.MS_MOVE, ""); err != nil {
		return os.NewSyscallError("mount move", err)
	}
	if err := unix.Chroot("."); err != nil {
		return os.NewSyscallError("chroot", err)
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	return unix.Exec("/init", os.Args, append(os.Environ(), stageEnv))
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
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

type mount struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}

func setup(cfg *vm.Config) (map[string]string, error) {
	const nosuidNodevNoexec = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	mounts := []mount{
		{"proc", "/proc", "proc", nosuidNodevNoexec, ""},
		{"sysfs", "/sys", "sysfs", nosuidNodevNoexec, ""},
		{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=755"},
		{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620"},
		{"tmpfs", "/dev/shm", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
		{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=755"},
		{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
		{"cgroup2", "/sys/fs/cgroup", "cgroup2", nosuidNodevNoexec, cfg.CgroupOptions},
	}
	for _, m := range mounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return nil, err
		}
		if err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data); err != nil {
			return nil, fmt.Errorf("mount %s on %s (%s): %w", m.fstype, m.target, m.data, err)
		}
	}
	// As systemd does: mounts are shared by default on a booted host.
	if err := unix.Mount("", "/", "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return nil, os.NewSyscallError("mount make-rshared /", err)
	}
	if err := reopenConsole(); err != nil {
		return nil, err
	}
	for _, m := range cfg.Modules {
		if err := loadModule(m); err != nil {
			return nil, err
		}
	}
	if err := linkUp("lo"); err != nil {
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

// reopenConsole makes /dev/console of the devtmpfs the init's stdio, in
// case the kernel found no console node in the initramfs.
func reopenConsole() error {
	fd, err := unix.Open("/dev/console", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("open /dev/console", err)
	}
	defer unix.Close(fd)
	for _, to := range []int{0, 1, 2} {
		if err := unix.Dup3(fd, to, 0); err != nil {
			return os.NewSyscallError("dup3", err)
		}
	}
	return nil
}

func loadModule(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	err = unix.FinitModule(int(f.Fd()), "", 0)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("load module %s: %w", p, os.NewSyscallError("finit_module", err))
	}
	return nil
}

func linkUp(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("link %s: %w", name, os.NewSyscallError("SIOCGIFFLAGS", err))
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("link %s: %w", name, os.NewSyscallError("SIOCSIFFLAGS", err))
	}
	return nil
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

func powerOff() {
	unix.Sync()
	// reboot(2) needs no CAP beyond what PID 1 has; if it fails, exiting
	// PID 1 panics the kernel, which ends qemu too (panic=-1, -no-reboot).
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		fmt.Fprintf(os.Stderr, "init: reboot: %v\n", err)
	}
	os.Exit(1)
}
