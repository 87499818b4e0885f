// Package guest is the guest side of internal/vm: what a static init (PID
// 1 of an initramfs) does to get a usable machine. [SwitchRoot] moves the
// initramfs into a tmpfs and makes it the root (pivot_root(2) refuses the
// initial rootfs, and pods pivot_root); [MountSystem] mounts /proc, /sys,
// /dev, /dev/pts, /dev/shm, /run, /tmp and a cgroup2 hierarchy;
// [LoadModule] loads a kernel module file; [LinkUp] brings up a network
// link; [PowerOff] ends the machine.
//
// It is used by the KVM stage1's agent (cmd/stage1-kvm-agent) and the init
// of the virtual-machine tests (tests/vm/init). The package is Linux-only.
package guest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// stageEnv marks the init re-executed in the new root.
const stageEnv = "RKT_VM_GUEST_STAGE=2"

const newRoot = "/newroot"

// SwitchRoot copies the initramfs into a tmpfs, moves that over / and
// re-executes the init there (what switch_root(8) does). In the re-executed
// init it does nothing and returns nil; otherwise it only returns on error.
func SwitchRoot() error {
	if strings.Contains(strings.Join(os.Environ(), "\n"), stageEnv) {
		return nil
	}
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

type mount struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}

// MountSystem mounts the filesystems of a booted host, with cgroup2 at
// /sys/fs/cgroup mounted with cgroupOptions (for example "nsdelegate"),
// makes every mount shared (as systemd does) and makes /dev/console the
// init's stdio.
func MountSystem(cgroupOptions string) error {
	const nosuidNodevNoexec = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	mounts := []mount{
		{"proc", "/proc", "proc", nosuidNodevNoexec, ""},
		{"sysfs", "/sys", "sysfs", nosuidNodevNoexec, ""},
		{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=755"},
		{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620"},
		{"tmpfs", "/dev/shm", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
		{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=755"},
		{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
		{"cgroup2", "/sys/fs/cgroup", "cgroup2", nosuidNodevNoexec, cgroupOptions},
	}
	for _, m := range mounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data); err != nil {
			return fmt.Errorf("mount %s on %s (%s): %w", m.fstype, m.target, m.data, err)
		}
	}
	if err := unix.Mount("", "/", "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return os.NewSyscallError("mount make-rshared /", err)
	}
	return reopenConsole()
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

// LoadModule loads the kernel module file p (finit_module(2)); a module
// already loaded is not an error.
func LoadModule(p string) error {
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

// LinkUp sets the IFF_UP flag of the network link name.
func LinkUp(name string) error {
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

// PowerOff syncs and powers the machine off. If that fails, it exits, and
// the exit of PID 1 panics the kernel, which ends qemu too (with panic=-1
// and -no-reboot).
func PowerOff() {
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		fmt.Fprintf(os.Stderr, "init: reboot: %v\n", err)
	}
	os.Exit(1)
}
