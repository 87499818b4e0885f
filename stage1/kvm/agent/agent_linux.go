// Package agent is the KVM stage1's agent: PID 1 of the guest, at /init in
// the initramfs (cmd/stage1-kvm-agent).
//
// It makes the guest a small host (internal/vm/guest: tmpfs root, /proc,
// /sys, /dev, a cgroup2 hierarchy with nsdelegate, the kernel modules listed
// in [ModulesFile], lo), says Hello on the virtio-serial port
// [channel.PortName], and waits for the host's Start. It then writes the
// pod directory's files the host sent into a pod directory on the guest's
// tmpfs, mounts the 9p shares (the stage1 rootfs with every app's rootfs,
// and the volumes) and runs the namespace stage1's run entrypoint there with
// --net=host: the guest is the pod's host, so the apps run with exactly the
// ns flavor's stage2 confinement (pivot_root per app, capabilities, seccomp,
// no_new_privs, masked paths, cgroups). Its stdout and stderr go to the
// host as frames, signals from the host are forwarded to it, and its exit
// code goes back in the Exit frame before the agent powers the guest off.
//
// Whatever happens, the agent ends by powering off: the host's qemu exits
// with it.
package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/vm/guest"
	"github.com/rkt-ng/rkt/pods/layout"
	"github.com/rkt-ng/rkt/stage1/kvm/channel"
)

// ModulesFile lists, one per line, the kernel module files in the initramfs
// to load in order (dependencies first).
const ModulesFile = "/modules"

// PodDir is the guest's pod directory.
const PodDir = "/var/lib/rkt/pod"

// NSRun is the namespace stage1's run program inside the stage1 rootfs of
// the KVM stage1 image.
const NSRun = "/ns/run"

// Stage2Bin is the stage2 program inside the stage1 rootfs, which the
// namespace stage1 starts the pod with.
const Stage2Bin = "/stage2"

// InitramfsStage1 holds, in the initramfs, the namespace stage1 at NSRun
// and stage2 at Stage2Bin below it: the same programs as the stage1 image's
// (one build), in the guest's memory from the boot on.
const InitramfsStage1 = "/stage1"

// BootOnlyParam on the kernel command line makes the agent power off as
// soon as it runs (make bench's bare-boot floor).
const BootOnlyParam = "rkt.agent=boot-only"

// DebugParam on the kernel command line (rkt run --debug) makes the agent
// print each phase of the guest's start and end on the console, with the
// time since the guest's kernel started (docs/kvm.md, where the time goes).
const DebugParam = "rkt.debug"

// tracing is set when the kernel command line has DebugParam.
var tracing bool

// trace prints a phase of the guest's life on the console when tracing.
func trace(phase string) {
	if !tracing {
		return
	}
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	fmt.Fprintf(os.Stderr, "rkt agent: %.3fs %s\n", float64(ts.Nano())/1e9, phase)
}

// exitFailed is the code of the agent's own failures (rkt's 254).
const exitFailed = 254

// portWait bounds the wait for the virtio-serial port to appear.
const portWait = 10 * time.Second

// Main is the agent. It never returns.
func Main() {
	if err := guest.SwitchRoot(); err != nil {
		fmt.Fprintf(os.Stderr, "rkt agent: switch root: %v\n", err)
		guest.PowerOff()
	}
	port, err := setup()
	if err != nil {
		fmt.Fprintf(os.Stderr, "rkt agent: %v\n", err)
		guest.PowerOff()
	}
	c := &conn{port: port}
	code, err := c.serve()
	msg := channel.ExitMsg{Code: code}
	if err != nil {
		msg = channel.ExitMsg{Code: exitFailed, Error: err.Error()}
		fmt.Fprintf(os.Stderr, "rkt agent: %v\n", err)
	}
	unix.Sync()
	trace("synced, sending exit")
	if err := c.writeJSON(channel.Exit, msg); err != nil {
		fmt.Fprintf(os.Stderr, "rkt agent: send exit: %v\n", err)
	}
	guest.PowerOff()
}

// setup makes the guest a host and opens the agent's port.
func setup() (*os.File, error) {
	if err := guest.MountSystem("nsdelegate"); err != nil {
		return nil, err
	}
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return nil, err
	}
	tracing = slices.Contains(strings.Fields(string(cmdline)), DebugParam)
	trace("root switched, system mounted")
	// The floor of make bench: a bare boot of the same kernel and
	// initramfs, powered off as soon as the init runs.
	if slices.Contains(strings.Fields(string(cmdline)), BootOnlyParam) {
		guest.PowerOff()
	}
	b, err := os.ReadFile(ModulesFile)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for m := range strings.Lines(string(b)) {
		if m = strings.TrimSpace(m); m != "" {
			if err := guest.LoadModule(m); err != nil {
				return nil, err
			}
		}
	}
	trace("modules loaded")
	if err := guest.LinkUp("lo"); err != nil {
		return nil, err
	}
	dev, err := findPort(channel.PortName, portWait)
	if err != nil {
		return nil, err
	}
	return os.OpenFile(dev, os.O_RDWR, 0)
}

// findPort returns the device of the virtio-serial port name
// (/sys/class/virtio-ports/vportNpM/name; there is no udev to make
// /dev/virtio-ports/NAME).
func findPort(name string, wait time.Duration) (string, error) {
	deadline := time.Now().Add(wait)
	for {
		ports, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
		for _, p := range ports {
			b, err := os.ReadFile(p)
			if err == nil && strings.TrimSpace(string(b)) == name {
				return "/dev/" + filepath.Base(filepath.Dir(p)), nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no virtio-serial port %s after %s", name, wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// conn is the agent's side of the channel.
type conn struct {
	port *os.File
	// mu serializes frames written to port.
	mu sync.Mutex
}

func (c *conn) write(t channel.Type, b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return channel.Write(c.port, t, b)
}

func (c *conn) writeJSON(t channel.Type, v any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return channel.WriteJSON(c.port, t, v)
}

// frameWriter turns writes into frames of one type, each payload after
// prefix (an exec session's ID and stream).
type frameWriter struct {
	c      *conn
	t      channel.Type
	prefix []byte
}

func (w frameWriter) Write(p []byte) (int, error) {
	chunk := channel.MaxPayload - len(w.prefix)
	for off := 0; off < len(p); off += chunk {
		end := min(off+chunk, len(p))
		if err := w.c.write(w.t, append(append([]byte(nil), w.prefix...), p[off:end]...)); err != nil {
			return off, err
		}
	}
	return len(p), nil
}

// guestPath is the PATH of the programs the agent runs.
const guestPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// serve says hello, runs the pod the host asks for and returns its exit code.
func (c *conn) serve() (int, error) {
	var uts unix.Utsname
	unix.Uname(&uts)
	trace("port open, sending hello")
	if err := c.writeJSON(channel.Hello, channel.HelloMsg{Kernel: unix.ByteSliceToString(uts.Release[:])}); err != nil {
		return 0, fmt.Errorf("send hello: %w", err)
	}
	r := bufio.NewReader(c.port)
	t, p, err := channel.Read(r)
	if err != nil {
		return 0, fmt.Errorf("read start: %w", err)
	}
	if t != channel.Start {
		return 0, fmt.Errorf("want a start message, got %s", t)
	}
	var req channel.StartRequest
	if err := channel.Decode(t, p, &req); err != nil {
		return 0, err
	}
	trace("start received")
	if err := preparePod(&req); err != nil {
		return 0, err
	}
	trace("pod directory ready")
	cmd := &exec.Cmd{
		Path: filepath.Join(layout.Dir(PodDir).Stage1Rootfs(), NSRun),
		// cmd/stage1-ns picks its entrypoint by the name it runs as.
		Args:   append([]string{"run"}, req.Args...),
		Dir:    PodDir,
		Env:    []string{"PATH=" + guestPath},
		Stdout: frameWriter{c: c, t: channel.Stdout},
		Stderr: frameWriter{c: c, t: channel.Stderr},
	}
	e := newExecs(c)
	// wait waits for the pod's stage1 (and its terminal's last output).
	var wait func() error
	switch {
	case req.Stdin && req.Terminal:
		// rkt run --interactive on a terminal: the guest's stage1 sees
		// one and gives the app a pseudo-terminal of its own.
		wait, err = e.startTerminal(channel.PodSession, cmd, req.Rows, req.Cols, req.Term, frameWriter{c: c, t: channel.Stdout})
	case req.Stdin:
		wait, err = e.startPipe(channel.PodSession, cmd)
	default:
		err = cmd.Start()
		wait = cmd.Wait
	}
	if err != nil {
		return 0, fmt.Errorf("start the pod: %w", err)
	}
	trace("namespace stage1 started")
	mctx, stopMirror := context.WithCancel(context.Background())
	mirrored := make(chan struct{})
	go func() {
		defer close(mirrored)
		mirror(mctx, rktLocal, rktShared)
	}()
	// The last copy, with the apps' exit statuses, is made before the exit
	// message goes to the host.
	defer func() {
		stopMirror()
		<-mirrored
	}()
	// The reader ends with the machine: after the pod exits nothing more is
	// read, and the agent powers off.
	go c.dispatch(r, cmd.Process, e)
	err = wait()
	trace("namespace stage1 exited")
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(unix.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("wait for the pod: %w", err)
	}
	return 0, nil
}

// dispatch handles the host's messages while the pod runs: signals for
// the pod's stage1 and exec sessions.
func (c *conn) dispatch(r io.Reader, p *os.Process, e *execs) {
	for {
		t, b, err := channel.Read(r)
		if err != nil {
			return
		}
		switch t {
		case channel.Signal:
			var m channel.SignalMsg
			if channel.Decode(t, b, &m) == nil && m.Signal > 0 && m.Signal < 65 {
				p.Signal(unix.Signal(m.Signal))
			}
		case channel.ExecStart:
			var req channel.ExecRequest
			if err := channel.Decode(t, b, &req); err != nil {
				fmt.Fprintf(os.Stderr, "rkt agent: %v\n", err)
				continue
			}
			e.start(req)
		case channel.ExecIn:
			if err := e.input(b); err != nil {
				fmt.Fprintf(os.Stderr, "rkt agent: %v\n", err)
			}
		case channel.ExecResize:
			var m channel.ResizeMsg
			if channel.Decode(t, b, &m) == nil {
				e.resize(m)
			}
		}
	}
}

// preparePod writes the pod directory's files and mounts the shares.
func preparePod(req *channel.StartRequest) error {
	if err := os.MkdirAll(PodDir, 0o711); err != nil {
		return err
	}
	for name, data := range req.Files {
		if !filepath.IsLocal(name) {
			return fmt.Errorf("pod file %q: not a local path", name)
		}
		p := filepath.Join(PodDir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			return err
		}
	}
	for _, m := range req.Mounts {
		target := m.Path
		if !filepath.IsAbs(target) {
			if !filepath.IsLocal(target) {
				return fmt.Errorf("share %s: bad path %q", m.Tag, target)
			}
			target = filepath.Join(PodDir, target)
		}
		if err := os.MkdirAll(target, 0o755); err != nil {
			return fmt.Errorf("share %s: %w", m.Tag, err)
		}
		var flags uintptr = unix.MS_NODEV
		if m.ReadOnly {
			flags |= unix.MS_RDONLY
		}
		// 9p2000.L over virtio; msize is the largest request (qemu
		// accepts up to 512 KiB), and the default cache mode (none)
		// keeps the host's view and the guest's the same.
		opts := "trans=virtio,version=9p2000.L,msize=524288,access=client"
		if err := unix.Mount(m.Tag, target, "9p", flags, opts); err != nil {
			return fmt.Errorf("share %s on %s: %w", m.Tag, target, os.NewSyscallError("mount", err))
		}
	}
	if err := localBinaries(layout.Dir(PodDir).Stage1Rootfs()); err != nil {
		return err
	}
	if err := localRkt(layout.Dir(PodDir).InStage1(layout.RktDir)); err != nil {
		return err
	}
	if err := configureNetwork(req.Interfaces); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	if req.Hostname != "" {
		if err := unix.Sethostname([]byte(req.Hostname)); err != nil {
			return os.NewSyscallError("sethostname", err)
		}
	}
	return nil
}

// localBinaries bind-mounts the initramfs's namespace stage1 and stage2,
// read-only, over their files in the stage1 rootfs share, before anything
// of the pod runs. Executed from the 9p share (no page cache), every page
// fault of these Go programs was a request to the host, seconds under TCG;
// read from it once, they still took most of a second (docs/kvm.md).
func localBinaries(root string) error {
	for _, name := range []string{NSRun, Stage2Bin} {
		src, dst := filepath.Join(InitramfsStage1, name), filepath.Join(root, name)
		if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
			return &os.PathError{Op: "mount bind", Path: dst, Err: err}
		}
		if err := unix.Mount("", dst, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
			return &os.PathError{Op: "remount read-only", Path: dst, Err: err}
		}
	}
	return nil
}
