package kvm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/appc/spec/schema"
	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/cni"
	"github.com/rkt-ng/rkt/internal/atomicfile"
	"github.com/rkt-ng/rkt/internal/mountinfo"
	"github.com/rkt-ng/rkt/internal/pty"
	"github.com/rkt-ng/rkt/internal/vm"
	"github.com/rkt-ng/rkt/manifests"
	"github.com/rkt-ng/rkt/pods/layout"
	"github.com/rkt-ng/rkt/stage1"
	"github.com/rkt-ng/rkt/stage1/cgroups"
	"github.com/rkt-ng/rkt/stage1/kvm/agent"
	"github.com/rkt-ng/rkt/stage1/kvm/channel"
	"github.com/rkt-ng/rkt/stage1/podnet"
)

// ExitFailed is the code of the run entrypoint's own failures: rkt's 254.
const ExitFailed = 254

// Files of the KVM stage1 image, in its rootfs.
const (
	// KernelPath is the guest kernel, uncompressed (an ELF file booted
	// through its PVH entry point; internal/vm.KernelELF).
	KernelPath = "/kvm/vmlinux"
	// InitrdPath is the guest initramfs, uncompressed, holding the agent,
	// the kernel modules it loads, and the namespace stage1 and stage2 it
	// runs the pod with.
	InitrdPath = "/kvm/initramfs"
)

// Environment of the run entrypoint.
const (
	// BootTimeoutEnv bounds the guest's boot, up to the agent's hello
	// (a Go duration; default DefaultBootTimeout).
	BootTimeoutEnv = "RKT_STAGE1_KVM_BOOT_TIMEOUT"
	// DefaultBootTimeout is generous for TCG on a loaded host; with KVM
	// the boot takes well under a second.
	DefaultBootTimeout = 120 * time.Second
)

// Guest sizing.
const (
	// overheadMiB is the guest's own memory: kernel, agent, page cache
	// of the 9p shares.
	overheadMiB = 256
	// defaultAppMiB is counted for an app without a memory limit.
	defaultAppMiB = 128
)

// KernelCmdline is the guest kernel's command line: the console on the
// serial port, quiet, a panic ends qemu, the agent is the init. acpi=noirq
// routes the PCI devices' legacy interrupts by the firmware's table instead
// of ACPI's interrupt links, whose AML the kernel interprets when each
// virtio device is enabled: about 0.25 s of the module loads under TCG
// (docs/kvm.md); the virtio devices use MSI-X anyway.
const KernelCmdline = "console=ttyS0 quiet panic=-1 rdinit=/init acpi=noirq"

// infoAccelerator is the key of stage1.InfoFile naming the accelerator the
// guest runs with: "kvm" or "tcg".
const infoAccelerator = "accelerator"

// Share tags of the 9p shares.
const (
	tagRootfs  = "rootfs"
	tagVolumes = "volumes"
)

// pod is what the run entrypoint knows about the pod it runs.
type pod struct {
	dir      string
	args     stage1.RunArgs
	opts     stage1.Options
	manifest *schema.PodManifest
	log      *slog.Logger
	cg       *cgroups.Pod
}

func (p *pod) layout() layout.Dir { return layout.Dir(p.dir) }

// Run is the body of the run entrypoint. It returns the exit code of
// `rkt run`.
func Run(ctx context.Context, args []string, log *slog.Logger) int {
	code, err := run(ctx, args, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "rkt: stage1-kvm: %v\n", err)
		return ExitFailed
	}
	return code
}

func run(ctx context.Context, args []string, log *slog.Logger) (int, error) {
	ra, err := stage1.ParseRunArgs(args)
	if err != nil {
		return 0, err
	}
	if err := checkArgs(ra); err != nil {
		return 0, err
	}
	// Before anything of the pod exists on the host: nothing to clean up.
	qemu, err := vm.FindQEMU()
	if err != nil {
		return 0, err
	}
	dir, err := os.Getwd()
	if err != nil {
		return 0, err
	}
	p := &pod{dir: dir, args: ra, log: log}
	if p.opts, err = stage1.ReadOptions(p.layout().Options()); err != nil {
		return 0, err
	}
	b, err := os.ReadFile(p.layout().PodManifest())
	if err != nil {
		return 0, fmt.Errorf("read pod manifest: %w", err)
	}
	if p.manifest, err = manifests.DecodePod(b); err != nil {
		return 0, err
	}
	m, err := p.machine(qemu)
	if err != nil {
		return 0, err
	}
	// For `rkt status` and `rkt list --full` (docs/stage1-abi.md 4).
	if err := stage1.WriteInfo(dir, map[string]string{infoAccelerator: m.Accel}); err != nil {
		return 0, err
	}
	if fd, err := strconv.Atoi(os.Getenv(stage1.EnvLockFD)); err == nil {
		// Our children (qemu) must not hold the pod's lock.
		unix.CloseOnExec(fd)
	}
	code, err := p.runVM(ctx, m)
	if cerr := p.cleanup(); cerr != nil && err == nil {
		err = cerr
	} else if cerr == nil {
		os.WriteFile(p.layout().Cleaned(), nil, 0o644)
	}
	return code, err
}

// checkArgs refuses what this flavor does not implement, naming it.
func checkArgs(ra stage1.RunArgs) error {
	switch {
	case ra.PrivateUsers != "":
		return errors.New("--private-users: not supported by the KVM stage1 (the virtual machine is the isolation boundary)")
	}
	return nil
}

// machine sizes the virtual machine and lists its shares.
func (p *pod) machine(qemu string) (*vm.Machine, error) {
	root := p.layout().Stage1Rootfs()
	kernel, initrd := filepath.Join(root, KernelPath), filepath.Join(root, InitrdPath)
	for _, f := range []string{kernel, initrd} {
		if fi, err := os.Stat(f); err != nil || !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("no guest kernel in the stage1 image: %s missing", strings.TrimPrefix(f, root))
		}
	}
	accel, why, err := vm.ChooseAccel(&vm.Kernel{Image: kernel})
	if err != nil {
		return nil, err
	}
	mem, cpus, err := p.size()
	if err != nil {
		return nil, err
	}
	if accel == vm.AccelTCG && !strings.HasPrefix(why, "$") {
		fmt.Fprintf(os.Stderr, "rkt: stage1-kvm: warning: the pod runs under emulation (TCG), much slower than KVM: %s\n", why)
	}
	cmdline := KernelCmdline
	if p.args.Debug {
		cmdline += " " + agent.DebugParam
	}
	return &vm.Machine{
		QEMU: qemu, Kernel: kernel, Initrd: initrd, Accel: accel, MemoryMB: mem, CPUs: cpus,
		Cmdline: cmdline,
	}, nil
}

// size returns the guest's memory: the sum of the apps' memory limits
// (defaultAppMiB for an app without one) plus overheadMiB; and its vCPUs:
// the sum of the CPU limits rounded up, or the host's CPUs, at most the
// host's CPUs.
func (p *pod) size() (memMiB, cpus int, err error) {
	memMiB = overheadMiB
	var milli int64
	unlimited := false
	for _, ra := range p.manifest.Apps {
		if ra.App == nil {
			return 0, 0, fmt.Errorf("app %s: the pod manifest has no app", ra.Name)
		}
		l, err := cgroups.FromIsolators(ra.App.Isolators)
		if err != nil {
			return 0, 0, fmt.Errorf("app %s: %w", ra.Name, err)
		}
		if l.MemoryBytes != nil {
			memMiB += int((*l.MemoryBytes + 1<<20 - 1) >> 20)
		} else {
			memMiB += defaultAppMiB
		}
		if l.CPUMilli != nil {
			milli += *l.CPUMilli
		} else {
			unlimited = true
		}
	}
	if host := hostMemMiB(); host > 0 && memMiB > host {
		return 0, 0, fmt.Errorf("the pod needs %d MiB of guest memory, more than the host's %d MiB", memMiB, host)
	}
	cpus = runtime.NumCPU()
	if !unlimited && milli > 0 {
		cpus = min(cpus, int((milli+999)/1000))
	}
	return memMiB, cpus, nil
}

// hostMemMiB is MemTotal of /proc/meminfo, 0 if unknown.
func hostMemMiB() int {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.Atoi(f[0])
				return kb / 1024
			}
		}
	}
	return 0
}

// startRequest is what the agent needs: the pod directory's files, the
// shares, and the namespace stage1's arguments.
func (p *pod) startRequest(info *cni.Info, nics []nic) (*channel.StartRequest, error) {
	rel := layout.Dir("")
	req := &channel.StartRequest{UUID: p.args.UUID, Files: map[string][]byte{}, Hostname: p.args.Hostname}
	opts, err := p.guestOptions(info)
	if err != nil {
		return nil, err
	}
	req.Files[rel.Options()] = opts
	for _, n := range nics {
		req.Interfaces = append(req.Interfaces, n.iface)
	}
	files := []string{rel.PodManifest()}
	for _, ra := range p.manifest.Apps {
		files = append(files, rel.AppManifest(ra.Name.String()))
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(p.dir, f))
		if err != nil {
			return nil, err
		}
		req.Files[f] = b
	}
	// The metadata service runs in the guest, beside the pod, on the
	// guest's loopback (the namespace stage1 serves it there): it gets the
	// pod's token, mode 0600 like on the host, and a key of its own, so
	// signatures verify within the pod only.
	tok, err := stage1.ReadMDSToken(p.dir)
	if err != nil {
		return nil, fmt.Errorf("metadata service token: %w", err)
	}
	if tok == "" && p.args.MDSToken != "" {
		tok = p.args.MDSToken
	}
	if tok != "" {
		req.Files[rel.MDSToken()] = []byte(tok)
	}
	req.Mounts = append(req.Mounts, channel.Mount{Tag: tagRootfs, Path: rel.Stage1Rootfs()},
		channel.Mount{Tag: tagVolumes, Path: rel.SharedVolumes()})
	for i, v := range p.hostVolumes() {
		req.Mounts = append(req.Mounts, channel.Mount{Tag: volumeTag(i), Path: v.Source, ReadOnly: v.ReadOnly})
	}
	// The guest is the pod's host: the pod shares the guest's network,
	// which is the pod's. The metadata service and the host's
	// configuration files do not exist there.
	ga := p.args
	ga.Net, ga.MDSToken, ga.LocalConfig = "host", "", ""
	req.Args, _ = ga.Argv(stage1.InterfaceVersion)
	// --interactive: the app reads rkt run's stdin, on a terminal in the
	// guest when rkt run has one (relayInput).
	if p.args.Interactive {
		req.Stdin = true
		if pty.IsTerminal(0) {
			req.Terminal, req.Term = true, os.Getenv("TERM")
			if req.Term == "" {
				req.Term = "vt100"
			}
			if ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ); err == nil {
				req.Rows, req.Cols = ws.Row, ws.Col
			}
		}
	}
	if req.Hostname == "" {
		req.Hostname = "rkt-" + p.args.UUID
	}
	return req, nil
}

// hostVolume is a kind=host volume shared into the guest at its host path.
type hostVolume struct {
	Source   string
	ReadOnly bool
}

func (p *pod) hostVolumes() []hostVolume {
	var out []hostVolume
	for _, v := range p.manifest.Volumes {
		if v.Kind != "host" {
			continue
		}
		out = append(out, hostVolume{Source: v.Source, ReadOnly: v.ReadOnly != nil && *v.ReadOnly})
	}
	return out
}

func volumeTag(i int) string { return "vol" + strconv.Itoa(i) }

// shares returns qemu's arguments for the 9p shares. security_model
// passthrough keeps owners and modes as the guest sets them (qemu runs as
// root); multidevs=remap keeps inode numbers unique across the mounts
// inside a share (the app rootfs overlays).
func (p *pod) shares() ([]string, error) {
	vols := p.layout().SharedVolumes()
	if err := os.MkdirAll(vols, 0o700); err != nil {
		return nil, err
	}
	type share struct {
		tag, path string
		ro        bool
	}
	list := []share{{tagRootfs, p.layout().Stage1Rootfs(), false}, {tagVolumes, vols, false}}
	for i, v := range p.hostVolumes() {
		fi, err := os.Lstat(v.Source)
		if err != nil {
			return nil, fmt.Errorf("host volume %s: %w", v.Source, err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("host volume %s: the KVM stage1 shares directories only", v.Source)
		}
		list = append(list, share{volumeTag(i), v.Source, v.ReadOnly})
	}
	var args []string
	for i, s := range list {
		if strings.Contains(s.path, ",") {
			return nil, fmt.Errorf("share %s: path %q has a comma, which qemu's option syntax cannot carry", s.tag, s.path)
		}
		fs := fmt.Sprintf("local,id=fs%d,path=%s,security_model=passthrough,multidevs=remap", i, s.path)
		if s.ro {
			fs += ",readonly=on"
		}
		args = append(args, "-fsdev", fs, "-device", fmt.Sprintf("virtio-9p-pci,fsdev=fs%d,mount_tag=%s", i, s.tag))
	}
	return args, nil
}

// runVM boots the guest, runs the pod in it and returns the pod's exit code.
func (p *pod) runVM(ctx context.Context, m *vm.Machine) (int, error) {
	shares, err := p.shares()
	if err != nil {
		return 0, err
	}
	if err := p.setupCgroups(); err != nil {
		return 0, err
	}
	nics, info, err := p.setupNetwork(ctx)
	if err != nil {
		return 0, err
	}
	defer func() {
		for _, n := range nics {
			if n.tap != nil {
				n.tap.Close()
			}
		}
	}()
	req, err := p.startRequest(info, nics)
	if err != nil {
		return 0, err
	}
	netArgs, taps := netDevices(nics, 4)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, os.NewSyscallError("socketpair", err)
	}
	host, guestEnd := os.NewFile(uintptr(fds[0]), "agent"), os.NewFile(uintptr(fds[1]), "agent-guest")
	defer host.Close()
	m.Devices = append(shares,
		"-device", "virtio-serial-pci,id=vser",
		// fd 3: the first of ExtraFiles.
		"-chardev", "socket,id=agent,fd=3",
		"-device", "virtserialport,bus=vser.0,chardev=agent,name="+channel.PortName)
	m.Devices = append(m.Devices, netArgs...)
	console := newTail(64 << 10)
	if p.args.Debug {
		m.Console = io.MultiWriter(console, os.Stderr)
	} else {
		m.Console = console
	}
	vmCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd, err := m.Command(vmCtx)
	if err != nil {
		guestEnd.Close()
		return 0, err
	}
	cmd.ExtraFiles = append([]*os.File{guestEnd}, taps...)
	// qemu dies with us. Pdeathsig fires when the creating thread exits:
	// the run entrypoint's main thread is locked for the process's whole
	// life (cmd/stage1-kvm).
	cmd.SysProcAttr = &unixSysProcAttr{Pdeathsig: unix.SIGKILL}
	err = cmd.Start()
	guestEnd.Close()
	if err != nil {
		return 0, fmt.Errorf("start qemu: %w", err)
	}
	if p.cg != nil {
		if err := p.cg.Init().AddProc(cmd.Process.Pid); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return 0, fmt.Errorf("move qemu into the pod cgroup: %w", err)
		}
	}
	if err := atomicfile.Replace(p.layout().PID(), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, err
	}
	p.log.Debug("qemu started", "pod", p.args.UUID, "pid", cmd.Process.Pid, "accel", m.Accel, "memory_mib", m.MemoryMB, "cpus", m.CPUs)
	q := &qemuProcess{done: make(chan struct{})}
	go func() {
		q.err = cmd.Wait()
		close(q.done)
	}()
	code, err := p.converse(host, req, q, console)
	// The agent synced the guest before its exit message, and 9p writes
	// reach the host before they return: nothing is left to wait for in
	// the guest's power-off.
	cancel()
	<-q.done
	return code, err
}

// qemuProcess is the end of qemu: done is closed once it has exited, with
// err its Wait's error (read after done).
type qemuProcess struct {
	done chan struct{}
	err  error
}

// drainAfterExit bounds the reading of what qemu wrote to the agent channel
// before it exited, and the wait for qemu's exit once the channel ended.
const drainAfterExit = 5 * time.Second

// converse runs the pod over the channel: it waits for the agent's hello
// (bounded by the boot timeout), sends the start request, relays output and
// signals, and returns the exit code of the agent's exit message.
func (p *pod) converse(host *os.File, req *channel.StartRequest, q *qemuProcess, console *tail) (int, error) {
	bootTimeout := DefaultBootTimeout
	if s := os.Getenv(BootTimeoutEnv); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("$%s=%q: want a positive duration", BootTimeoutEnv, s)
		}
		bootTimeout = d
	}
	type frame struct {
		t   channel.Type
		b   []byte
		err error
	}
	frames := make(chan frame)
	readerDone := make(chan struct{})
	defer close(readerDone)
	go func() {
		r := bufio.NewReader(host)
		for {
			t, b, err := channel.Read(r)
			select {
			case frames <- frame{t, b, err}:
			case <-readerDone:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGUSR1, unix.SIGUSR2)
	defer signal.Stop(sigs)
	guest := &guestWriter{w: host}
	var execs *execServer
	defer func() {
		if execs != nil {
			execs.close()
		}
	}()
	boot := time.NewTimer(bootTimeout)
	defer boot.Stop()
	qemuDone := q.done
	var drain <-chan time.Time
	started := false
	var pending []os.Signal
	for {
		select {
		case <-boot.C:
			if !started {
				return 0, fmt.Errorf("the guest did not boot within %s (%s); last lines of its console:\n%s", bootTimeout, BootTimeoutEnv, console.lastLines(20))
			}
		case <-qemuDone:
			// The agent powers off as soon as it has sent its exit
			// message, which may still be in the channel's socket
			// (select picks at random among ready cases): read what is
			// left, up to the end qemu's exit made, before giving up.
			qemuDone = nil
			drain = time.After(drainAfterExit)
		case <-drain:
			return 0, p.qemuExited(q, console)
		case sig := <-sigs:
			if !started {
				pending = append(pending, sig)
				continue
			}
			if err := guest.writeJSON(channel.Signal, channel.SignalMsg{Signal: int(sig.(unix.Signal))}); err != nil {
				return 0, fmt.Errorf("forward %s: %w", sig, err)
			}
		case f := <-frames:
			if f.err != nil {
				// The channel ends with qemu: say so when that is why.
				select {
				case <-q.done:
					return 0, p.qemuExited(q, console)
				case <-time.After(drainAfterExit):
				}
				return 0, fmt.Errorf("agent channel: %w; last lines of the guest console:\n%s", f.err, console.lastLines(20))
			}
			switch f.t {
			case channel.Hello:
				if started {
					return 0, errors.New("agent channel: a second hello")
				}
				var h channel.HelloMsg
				if err := channel.Decode(f.t, f.b, &h); err != nil {
					return 0, err
				}
				p.log.Debug("guest up", "pod", p.args.UUID, "kernel", h.Kernel)
				started = true
				boot.Stop()
				if err := guest.writeJSON(channel.Start, req); err != nil {
					return 0, fmt.Errorf("send start: %w", err)
				}
				if req.Stdin {
					stop, err := relayInput(guest, req.Terminal)
					if err != nil {
						return 0, err
					}
					defer stop()
				}
				for _, sig := range pending {
					guest.writeJSON(channel.Signal, channel.SignalMsg{Signal: int(sig.(unix.Signal))})
				}
				pending = nil
				// rkt enter and rkt kill reach the guest from now on.
				var err error
				if execs, err = listenExec(guest); err != nil {
					return 0, fmt.Errorf("enter socket: %w", err)
				}
				execs.serve()
			case channel.Stdout:
				os.Stdout.Write(f.b)
			case channel.Stderr:
				os.Stderr.Write(f.b)
			case channel.ExecOut:
				if execs == nil {
					return 0, errors.New("agent channel: exec output without a session")
				}
				if err := execs.output(f.b); err != nil {
					return 0, err
				}
			case channel.ExecExit:
				var x channel.ExecExitMsg
				if err := channel.Decode(f.t, f.b, &x); err != nil {
					return 0, err
				}
				if execs != nil {
					execs.end(x)
				}
			case channel.Exit:
				var x channel.ExitMsg
				if err := channel.Decode(f.t, f.b, &x); err != nil {
					return 0, err
				}
				if x.Error != "" {
					return 0, fmt.Errorf("agent: %s", x.Error)
				}
				if x.Code < 0 || x.Code > 255 {
					return 0, fmt.Errorf("agent: exit code %d out of range", x.Code)
				}
				return x.Code, nil
			default:
				return 0, fmt.Errorf("agent channel: unexpected %s message", f.t)
			}
		}
	}
}

// qemuExited is the error of a qemu that exited before the agent's exit
// message.
func (p *pod) qemuExited(q *qemuProcess, console *tail) error {
	return fmt.Errorf("qemu exited (%v) before the pod reported its exit; last lines of the guest console:\n%s", q.err, console.lastLines(20))
}

// relayInput sends rkt run's stdin to the pod (rkt run --interactive), as
// the pod session's ExecIn frames, the end of input as an empty one. On a
// terminal, it puts the terminal in raw mode and sends its window size on
// SIGWINCH. stop restores the terminal.
func relayInput(guest *guestWriter, terminal bool) (stop func(), err error) {
	restore := func() error { return nil }
	if terminal {
		if restore, err = pty.MakeRaw(0); err != nil {
			return nil, err
		}
	}
	// Ends at the end of input or with the process: a read of a terminal
	// may block for ever.
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := os.Stdin.Read(buf)
			if n > 0 && guest.write(channel.ExecIn, channel.WithID(channel.PodSession, buf[:n])) != nil {
				return
			}
			if err != nil {
				guest.write(channel.ExecIn, channel.WithID(channel.PodSession, nil))
				return
			}
		}
	}()
	sigs := make(chan os.Signal, 1)
	done := make(chan struct{})
	if terminal {
		signal.Notify(sigs, unix.SIGWINCH)
	}
	resized := make(chan struct{})
	go func() {
		defer close(resized)
		for {
			select {
			case <-sigs:
			case <-done:
				return
			}
			if ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ); err == nil {
				guest.writeJSON(channel.ExecResize, channel.ResizeMsg{ID: channel.PodSession, Rows: ws.Row, Cols: ws.Col})
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
		<-resized
		restore()
	}, nil
}

// setupCgroups creates the pod's cgroup on the host, for qemu, and records
// it for gc. Without usable cgroups qemu runs without one.
func (p *pod) setupCgroups() error {
	cg, err := cgroups.NewPod(p.args.UUID, cgroups.WithLogger(p.log))
	if errors.Is(err, cgroups.ErrNoCgroups) {
		p.log.Warn("no cgroup hierarchy found; qemu runs without a pod cgroup")
		return nil
	}
	if err != nil {
		return fmt.Errorf("create pod cgroup: %w", err)
	}
	if err := atomicfile.Replace(p.layout().Subcgroup(), []byte(cg.Path()), 0o644); err != nil {
		cg.Remove(context.Background())
		return err
	}
	p.cg = cg
	return nil
}

// cleanup releases what the pod held on the host: the same work as the gc
// entrypoint. Every step runs even when an earlier one failed.
func (p *pod) cleanup() error {
	return cleanup(context.Background(), p.dir, p.args.LocalConfig, p.opts)
}

func cleanup(ctx context.Context, dir, localConfig string, opts stage1.Options) error {
	d := layout.Dir(dir)
	var cgErr error
	if b, err := os.ReadFile(d.Subcgroup()); err == nil {
		// Removing the cgroup kills what is left in it: qemu, after a
		// SIGKILL of the run entrypoint that Pdeathsig did not cover.
		cg, err := cgroups.Open(strings.TrimSpace(string(b)))
		if err == nil {
			err = cg.Remove(ctx)
		}
		cgErr = err
	} else if !errors.Is(err, os.ErrNotExist) {
		cgErr = err
	}
	// The pod's netns goes with its networks, and the taps in it.
	netErr := podnet.Teardown(ctx, dir, podnet.PluginDirs(localConfig, opts.SystemConfig), podnet.DataDir(opts.DataDir, dir))
	return errors.Join(cgErr, netErr, mountinfo.UnmountAll(d.Stage1()), mountinfo.UnmountAll(d.Overlay()))
}

// tail keeps the last bytes written to it.
type tail struct {
	// mu guards b.
	mu  sync.Mutex
	b   []byte
	max int
}

func newTail(max int) *tail { return &tail{max: max} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

// lastLines returns the last n lines, printable only.
func (t *tail) lastLines(n int) string {
	t.mu.Lock()
	b := bytes.Clone(t.b)
	t.mu.Unlock()
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(string(b), "\r", ""), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := strings.Join(lines, "\n")
	out = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' || (r >= 0x20 && r != 0x7f) {
			return r
		}
		return -1
	}, out)
	if strings.TrimSpace(out) == "" {
		return "(no console output)"
	}
	return out
}
