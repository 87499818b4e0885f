// Package podsetup executes a pod's mount plan inside its new namespaces:
// it joins the pod's network namespace, sets namespaced sysctls, builds the
// pod's root (/proc, /sys, /dev, cgroup views, each app's rootfs with its
// volumes, masked and read-only paths), pivot_roots into it and sets the
// hostname. The namespace stage1 decides the plan (Config); the stage2
// binary runs it as the pod's first process and then becomes the pod's init,
// which saves one exec on every start. It must stay small: only x/sys,
// filepath-securejoin and internal/netns, internal/sysctl. Linux-only.
package podsetup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/netns"
	"github.com/rkt-ng/rkt/internal/pausepoint"
	"github.com/rkt-ng/rkt/internal/sysctl"
	"github.com/rkt-ng/rkt/pods/layout"
)

// Command is the hidden argv[1] of the stage2 binary that runs as PID 1 of
// the pod's new namespaces, executes the plan and becomes the pod's init.
const Command = "pod-setup"

// Fds of the setup process: its Config, then what the init reads: the
// stage2 config and the readiness pipe, moved to fds 3 and 4 by Handoff.
const (
	ConfigFd       = 3
	stage2ConfigFd = 4
	readyFd        = 5
)

type Config struct {
	// Root is the stage1 rootfs (host path), the pod's future "/".
	Root     string `json:"root"`
	Hostname string `json:"hostname"`
	NetNS    string `json:"netns,omitempty"`
	Apps     []App  `json:"apps"`
	// DisablePaths lifts masked and read-only /proc and /sys paths.
	DisablePaths bool `json:"disablePaths,omitempty"`
	// Mounts are extra mounts made in the pod root before pivot_root (cgroups).
	Mounts []Mount `json:"mounts,omitempty"`
	// Sysctls are namespaced net.* sysctls set in the pod's network namespace.
	Sysctls map[string]string `json:"sysctls,omitempty"`
}

type App struct {
	Name string `json:"name"`
	// Rootfs is the app's rootfs (host path, below Root).
	Rootfs   string `json:"rootfs"`
	ReadOnly bool   `json:"readOnly,omitempty"`
	Binds    []Bind `json:"binds,omitempty"`
	// Mounts are extra mounts relative to the app rootfs (cgroup views).
	Mounts []Mount `json:"mounts,omitempty"`
}

type Bind struct {
	Source    string `json:"source"`
	Target    string `json:"target"` // inside the app rootfs
	ReadOnly  bool   `json:"readOnly,omitempty"`
	Recursive bool   `json:"recursive,omitempty"`
	// File is set when Source is a regular file (resolv.conf, hosts).
	File bool `json:"file,omitempty"`
}

type Mount struct {
	Source string  `json:"source"`
	Target string  `json:"target"`
	FSType string  `json:"fstype"`
	Flags  uintptr `json:"flags"`
	Data   string  `json:"data,omitempty"`
}

// Read decodes the Config passed on ConfigFd.
func Read() (*Config, error) {
	f := os.NewFile(ConfigFd, "setup-config")
	if f == nil {
		return nil, errors.New("pod setup started without its config fd")
	}
	var c Config
	err := json.NewDecoder(f).Decode(&c)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("decode pod setup config: %w", err)
	}
	return &c, nil
}

// Run executes the plan. It runs on the locked main thread of a process that
// is PID 1 in fresh mount, PID, UTS and IPC namespaces: setns of the network
// namespace applies to this thread only, which is the one that later starts
// every app.
func Run(c *Config) error {
	// The init keeps every privilege of the pod and sees the stage1 root:
	// no process of the pod may ptrace it or open its /proc/1/{root,exe,fd}.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl(PR_SET_DUMPABLE)", err)
	}
	if c.NetNS != "" {
		// For good: this locked main thread starts every app.
		if err := netns.Join(c.NetNS); err != nil {
			return fmt.Errorf("join pod network namespace: %w", err)
		}
	}
	// /proc/sys/net shows the network namespace of the thread that opens
	// it: this one, which just joined the pod's.
	if err := sysctl.Write(c.Sysctls); err != nil {
		return err
	}
	if err := mountPod(c); err != nil {
		return err
	}
	if c.Hostname != "" {
		if err := unix.Sethostname([]byte(c.Hostname)); err != nil {
			return os.NewSyscallError("sethostname", err)
		}
	}
	return nil
}

// Handoff moves the init's fds into place: the stage2 config to fd 3 and the
// readiness pipe to fd 4.
func Handoff() error {
	if err := unix.Dup3(stage2ConfigFd, 3, 0); err != nil {
		return os.NewSyscallError("dup3", err)
	}
	if err := unix.Dup3(readyFd, 4, 0); err != nil {
		return os.NewSyscallError("dup3", err)
	}
	return unix.Close(readyFd)
}

func mount(src, dst, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(src, dst, fstype, flags, data); err != nil {
		return &os.PathError{Op: "mount " + fstype, Path: dst, Err: err}
	}
	return nil
}

// remountRO makes a bind mount read-only, keeping the flags it has (the
// kernel refuses to drop locked nosuid/nodev/noexec flags).
func remountRO(path string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	keep := uintptr(st.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_RELATIME | unix.MS_NODIRATIME)
	return mount("", path, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|keep, "")
}

// devices are the nodes appc requires in /dev, bind-mounted from the host so
// that this works in a user namespace too.
var devices = []string{"null", "zero", "full", "random", "urandom", "tty"}

// maskedPaths are hidden from apps: runc and Docker's defaults, and rkt
// 1.30's (stage1/init/common/app.go, protectKernelHiddenDirs and
// protectKernelHiddenPaths, except /sys/fs, which holds the pod's cgroups).
// As under rkt, where systemd's InaccessiblePaths= did it, a directory
// becomes an empty read-only directory of mode 0 and a file an empty
// read-only file of mode 0, so that stat shows what rkt's apps saw.
var maskedPaths = []string{
	"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats",
	"/proc/acpi", "/proc/scsi", "/sys/firmware", "/proc/interrupts",
	"/proc/config.gz", "/proc/kallsyms", "/proc/kmem", "/proc/mem",
	"/sys/hypervisor", "/sys/module", "/sys/power",
}

// readOnlyPaths are visible but read-only for apps.
var readOnlyPaths = []string{"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs"}

// MaskedPaths returns the paths hidden from apps, for runtimes that mask
// them themselves (an OCI bundle's linux.maskedPaths).
func MaskedPaths() []string { return slices.Clone(maskedPaths) }

// ReadOnlyPaths returns the paths apps see read-only (an OCI bundle's
// linux.readonlyPaths).
func ReadOnlyPaths() []string { return slices.Clone(readOnlyPaths) }

func mountPod(c *Config) error {
	// Nothing we mount may propagate back to the host.
	if err := mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return err
	}
	root := c.Root
	// pivot_root needs the new root to be a mount point; --no-overlay pods
	// have a plain directory there.
	if err := mount(root, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	for _, d := range []string{"proc", "sys", "dev", layout.StatusDir, layout.EnvDir, "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	if err := mount("proc", filepath.Join(root, "proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	if err := mountSys(filepath.Join(root, "sys")); err != nil {
		return err
	}
	if err := mountDev(filepath.Join(root, "dev")); err != nil {
		return err
	}
	if !c.DisablePaths {
		if err := mountMaskFile(root); err != nil {
			return err
		}
	}
	for _, m := range c.Mounts {
		if err := os.MkdirAll(filepath.Join(root, m.Target), 0o755); err != nil {
			return err
		}
		if err := mount(m.Source, filepath.Join(root, m.Target), m.FSType, m.Flags, m.Data); err != nil {
			return err
		}
	}
	for i := range c.Apps {
		if err := mountApp(c, &c.Apps[i]); err != nil {
			return fmt.Errorf("app %s: %w", c.Apps[i].Name, err)
		}
	}
	if err := sealStage1(c); err != nil {
		return err
	}
	// The tests' debug hook (internal/pausepoint): the run entrypoint hands
	// it on only for this point. The pause directory is reachable until
	// pivot_root.
	if err := pausepoint.Reach(context.Background(), pausepoint.Stage1Mounted); err != nil {
		return err
	}
	os.Unsetenv(pausepoint.EnvAt)
	os.Unsetenv(pausepoint.EnvDir)
	if err := unix.Chdir(root); err != nil {
		return os.NewSyscallError("chdir", err)
	}
	// pivot_root(".", ".") stacks the old root on top of the new one; the
	// lazy unmount then drops it (pivot_root(2), "NOTES").
	if err := unix.PivotRoot(".", "."); err != nil {
		return os.NewSyscallError("pivot_root", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return os.NewSyscallError("umount old root", err)
	}
	return unix.Chdir("/")
}

// sealStage1 makes the stage1 root read-only for the pod's own processes
// too, except /rkt, where stage2 records statuses, logs and sockets, and
// masks its /proc as every app's is: the init and the launchers never need
// to write /proc/sys (sysctls are set before this), and no app can reach
// this view anyway (each app pivots into its own root).
func sealStage1(c *Config) error {
	rkt := filepath.Join(c.Root, layout.RktDir)
	if err := mount(rkt, rkt, "", unix.MS_BIND, ""); err != nil {
		return err
	}
	if !c.DisablePaths {
		if err := maskPaths(c.Root, c.Root); err != nil {
			return err
		}
	}
	return remountRO(c.Root)
}

func mountSys(dst string) error {
	err := mount("sysfs", dst, "sysfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC|unix.MS_RDONLY, "")
	if err == nil {
		return nil
	}
	// Without a network namespace of our own sysfs cannot be mounted fresh;
	// a read-only bind of the host's works everywhere.
	if err := mount("/sys", dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	return remountRO(dst)
}

func mountDev(dev string) error {
	if err := mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
		return err
	}
	for _, d := range devices {
		p := filepath.Join(dev, d)
		if err := os.WriteFile(p, nil, 0o666); err != nil {
			return err
		}
		if err := mount("/dev/"+d, p, "", unix.MS_BIND, ""); err != nil {
			return err
		}
	}
	// /dev/console: the caller's terminal when there is one, else /dev/null.
	console := "/dev/null"
	if t, err := os.Readlink("/proc/self/fd/0"); err == nil && isTerminal(0) {
		console = t
	}
	if err := os.WriteFile(filepath.Join(dev, "console"), nil, 0o600); err != nil {
		return err
	}
	if err := mount(console, filepath.Join(dev, "console"), "", unix.MS_BIND, ""); err != nil {
		return err
	}
	for _, d := range []string{"pts", "shm", "mqueue"} {
		if err := os.Mkdir(filepath.Join(dev, d), 0o755); err != nil {
			return err
		}
	}
	if err := mount("devpts", filepath.Join(dev, "pts"), "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"); err != nil {
		return err
	}
	if err := mount("shm", filepath.Join(dev, "shm"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=65536k"); err != nil {
		return err
	}
	if err := mount("mqueue", filepath.Join(dev, "mqueue"), "mqueue", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	for name, target := range map[string]string{"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	return nil
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// inRoot resolves path inside rootfs without letting symlinks in the image
// lead out of it, and creates it (a directory, or an empty file) if missing.
func inRoot(rootfs, path string, file bool) (string, error) {
	full, err := securejoin.SecureJoin(rootfs, path)
	if err != nil {
		return "", err
	}
	if _, err := os.Lstat(full); errors.Is(err, os.ErrNotExist) {
		if file {
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				return "", err
			}
			if err := os.WriteFile(full, nil, 0o644); err != nil {
				return "", err
			}
		} else if err := os.MkdirAll(full, 0o755); err != nil {
			return "", err
		}
	}
	return full, nil
}

func mountApp(c *Config, a *App) error {
	return mountAppWith(c.Root, c.DisablePaths, a, func(i int, b Bind, target string) error {
		flags := uintptr(unix.MS_BIND)
		if b.Recursive {
			flags |= unix.MS_REC
		}
		return mount(b.Source, target, "", flags, "")
	})
}

// mountAppWith makes app a's mounts below root (the pod's root: its host
// path before pivot_root, "/" after); bind attaches a's i-th bind at target.
func mountAppWith(root string, disablePaths bool, a *App, bind func(i int, b Bind, target string) error) error {
	rootfs := a.Rootfs
	// The rootfs must be a mount point of its own so that it can be made
	// read-only and so that nothing below it leaks into the stage1 view.
	if err := mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	proc, err := inRoot(rootfs, "/proc", false)
	if err != nil {
		return err
	}
	if err := mount("proc", proc, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	sys, err := inRoot(rootfs, "/sys", false)
	if err != nil {
		return err
	}
	if err := mount(filepath.Join(root, "sys"), sys, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	if err := remountRO(sys); err != nil {
		return err
	}
	if err := ensureMtab(rootfs); err != nil {
		return err
	}
	dev, err := inRoot(rootfs, "/dev", false)
	if err != nil {
		return err
	}
	if err := mount(filepath.Join(root, "dev"), dev, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	for _, m := range a.Mounts {
		t, err := inRoot(rootfs, m.Target, false)
		if err != nil {
			return err
		}
		if err := mount(m.Source, t, m.FSType, m.Flags, m.Data); err != nil {
			return err
		}
	}
	for i, b := range a.Binds {
		t, err := inRoot(rootfs, b.Target, b.File)
		if err != nil {
			return fmt.Errorf("mount target %s: %w", b.Target, err)
		}
		if err := bind(i, b, t); err != nil {
			return err
		}
		if b.ReadOnly {
			if err := remountRO(t); err != nil {
				return err
			}
		}
	}
	if !disablePaths {
		if err := maskPaths(root, rootfs); err != nil {
			return err
		}
	}
	if a.ReadOnly {
		if err := remountRO(rootfs); err != nil {
			return err
		}
	}
	return nil
}

// ensureMtab gives an app /etc/mtab as a symlink to /proc/self/mounts, as
// rkt did, unless its image has an /etc/mtab of its own.
func ensureMtab(rootfs string) error {
	etc, err := inRoot(rootfs, "/etc", false)
	if err != nil {
		return err
	}
	mtab := filepath.Join(etc, "mtab")
	if _, err := os.Lstat(mtab); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return os.Symlink("../proc/self/mounts", mtab)
}

// mountMaskFile mounts a small tmpfs at layout.MaskDir in the stage1 root
// with one empty file of mode 0, layout.MaskFile, and makes it read-only:
// the source of the binds that mask files. The apps never see it: they
// see only their own rootfs and the pod's /dev and /sys.
func mountMaskFile(root string) error {
	dir := filepath.Join(root, layout.MaskDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=700,size=4k,nr_inodes=4"); err != nil {
		return err
	}
	f := filepath.Join(root, layout.MaskFile)
	if err := os.WriteFile(f, nil, 0); err != nil {
		return err
	}
	if err := os.Chmod(f, 0); err != nil {
		return err
	}
	return remountRO(dir)
}

// maskPaths hides maskedPaths in rootfs; root is the stage1 root, where
// mountMaskFile put the file to bind.
func maskPaths(root, rootfs string) error {
	maskFile := filepath.Join(root, layout.MaskFile)
	for _, p := range maskedPaths {
		full, err := securejoin.SecureJoin(rootfs, p)
		if err != nil {
			return err
		}
		fi, err := os.Stat(full)
		if err != nil {
			continue // not present in this kernel
		}
		if fi.IsDir() {
			err = mount("tmpfs", full, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=000,size=4k,nr_inodes=1")
		} else if err = mount(maskFile, full, "", unix.MS_BIND, ""); err == nil {
			err = remountRO(full)
		}
		if err != nil {
			return err
		}
	}
	for _, p := range readOnlyPaths {
		full, err := securejoin.SecureJoin(rootfs, p)
		if err != nil {
			return err
		}
		if _, err := os.Stat(full); err != nil {
			continue
		}
		if err := mount(full, full, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return err
		}
		if err := remountRO(full); err != nil {
			return err
		}
	}
	return nil
}
