package ns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"

	"github.com/rkt-ng/rkt/internal/reexec"

	"github.com/appc/spec/schema"
	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/atomicfile"
	"github.com/rkt-ng/rkt/internal/mountinfo"
	"github.com/rkt-ng/rkt/internal/netns"
	"github.com/rkt-ng/rkt/internal/pausepoint"
	"github.com/rkt-ng/rkt/internal/sysctl"
	"github.com/rkt-ng/rkt/manifests"
	"github.com/rkt-ng/rkt/pods/layout"
	"github.com/rkt-ng/rkt/stage1"
	"github.com/rkt-ng/rkt/stage1/cgroups"
	"github.com/rkt-ng/rkt/stage1/podsetup"
	"github.com/rkt-ng/rkt/stage1/podspec"
	"github.com/rkt-ng/rkt/stage2"
)

// ExitFailed is the code of the run entrypoint's own failures: rkt's 254.
const ExitFailed = 254

// pod is what the run entrypoint knows about the pod it runs.
type pod struct {
	dir      string // the pod directory (cwd)
	args     stage1.RunArgs
	opts     stage1.Options
	manifest *schema.PodManifest
	images   map[string]*schema.ImageManifest // by app name
	log      *slog.Logger
	cg       *cgroups.Pod // nil without cgroups
	// listeners are the socket-activated listeners by app, and their names.
	listeners   map[string][]*os.File
	listenNames map[string][]string
	// mdsURL is AC_METADATA_URL for apps added to a mutable pod (app
	// entrypoints; "" without a metadata service).
	mdsURL string
}

// layout is the pod directory's layout (pods/layout).
func (p *pod) layout() layout.Dir { return layout.Dir(p.dir) }

func (p *pod) root() string { return p.layout().Stage1Rootfs() }

func (p *pod) appRootfs(app string) string { return p.layout().AppRootfs(app) }

// Run is the body of the run entrypoint (`/init`). It returns the exit code
// of `rkt run`.
func Run(args []string, log *slog.Logger) int {
	code, err := run(args, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "rkt: %v\n", err)
		return ExitFailed
	}
	return code
}

func loadPod(args []string, log *slog.Logger) (*pod, error) {
	ra, err := stage1.ParseRunArgs(args)
	if err != nil {
		return nil, err
	}
	dir, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	switch ra.IPC {
	case "", "auto", "private", "parent":
	default:
		return nil, fmt.Errorf("--ipc=%s: unknown value for --ipc parameter (want auto, private or parent)", ra.IPC)
	}
	p := &pod{dir: dir, args: ra, images: map[string]*schema.ImageManifest{}, log: log}
	if p.opts, err = stage1.ReadOptions(layout.Dir(dir).Options()); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(layout.Dir(dir).PodManifest())
	if err != nil {
		return nil, fmt.Errorf("read pod manifest: %w", err)
	}
	if p.manifest, err = manifests.DecodePod(b); err != nil {
		return nil, err
	}
	for _, ra := range p.manifest.Apps {
		name := ra.Name.String()
		b, err := os.ReadFile(layout.Dir(dir).AppManifest(name))
		if err != nil {
			return nil, fmt.Errorf("app %s: read image manifest: %w", name, err)
		}
		if p.images[name], err = manifests.DecodeImage(b); err != nil {
			return nil, fmt.Errorf("app %s: %w", name, err)
		}
	}
	return p, nil
}

func run(args []string, log *slog.Logger) (int, error) {
	p, err := loadPod(args, log)
	if err != nil {
		return 0, err
	}
	// Refuse bad isolators while the pod holds nothing on the host: there
	// is nothing to clean up yet.
	if err := p.validate(); err != nil {
		return 0, err
	}
	// The lock fd came to us without close-on-exec so that it survived
	// stage0's exec; our children must not hold the lock.
	if fd, err := strconv.Atoi(os.Getenv(stage1.EnvLockFD)); err == nil {
		unix.CloseOnExec(fd)
	}
	code, err := p.runPod()
	p.log.Debug("pod exited", "pod", p.args.UUID, "code", code)
	if cerr := p.cleanup(); cerr != nil && err == nil {
		err = cerr
	} else if cerr == nil {
		// Tell gc there is nothing left on the host for the gc entrypoint
		// to release (rkt-ng extension; without it gc runs the entrypoint).
		os.WriteFile(p.layout().Cleaned(), nil, 0o644)
	}
	p.log.Debug("pod cleaned up", "pod", p.args.UUID)
	return code, err
}

func (p *pod) runPod() (int, error) {
	nsPath, info, err := p.setupNetwork(context.Background())
	if err != nil {
		return 0, err
	}
	p.log.Debug("network ready", "pod", p.args.UUID, "netns", nsPath)
	if err := p.setupCgroups(); err != nil {
		return 0, err
	}
	p.log.Debug("cgroups ready", "pod", p.args.UUID)
	if err := pausepoint.Reach(context.Background(), pausepoint.Stage1Cgroups); err != nil {
		return 0, err
	}
	mdsURL, stopMDS, err := p.startMDS(nsPath)
	if err != nil {
		return 0, err
	}
	defer stopMDS()
	p.log.Debug("metadata service ready", "pod", p.args.UUID)
	if p.args.Mutable {
		// The app entrypoints find the pod through this record: it is
		// complete (with the metadata service) before the pod is ready.
		if err := p.saveMutableArgs(mdsURL); err != nil {
			return 0, err
		}
	}
	if p.listeners, p.listenNames, err = p.listenSockets(nsPath); err != nil {
		return 0, err
	}
	defer closeAll(p.listeners)
	var extraEnv []string
	if mdsURL != "" {
		extraEnv = append(extraEnv, "AC_METADATA_URL="+mdsURL)
	}
	setup, s2, err := p.configs(info, extraEnv)
	if err != nil {
		return 0, err
	}
	setup.NetNS = nsPath
	setup.Mounts = p.cgroupMounts()
	p.log.Debug("starting pod", "pod", p.args.UUID)
	return p.start(setup, s2)
}

// start runs the pod: the setup child in new namespaces becomes stage2, and
// this process forwards signals to it until it exits.
func (p *pod) start(setup *podsetup.Config, s2 *stage2.Config) (int, error) {
	// The pod's stdio exists before its first process and outlives it (the
	// last output is copied on after it exits).
	stdio, err := newPodStdio(p.args.Interactive)
	if err != nil {
		return 0, fmt.Errorf("pod stdio: %w", err)
	}
	defer stdio.finish()
	child, ready, err := p.startInit(setup, s2, stdio)
	if err != nil {
		return 0, err
	}
	defer ready.Close()
	return p.supervise(child, ready, stdio)
}

// startInit starts the pod's first process, the stage2 binary, which runs
// the mount plan and then becomes the pod's init without another exec. It
// gets the setup config, the stage2 config and the readiness pipe on fds 3,
// 4 and 5 (podsetup), then the apps' listeners. Every failure goes through
// the one cleanup of reexec.Child: the child, if started, is killed and
// reaped and our pipe ends are closed.
func (p *pod) startInit(setup *podsetup.Config, s2 *stage2.Config, stdio *podStdio) (_ *os.Process, ready *os.File, retErr error) {
	var c reexec.Child
	defer c.Finish(&retErr)
	c.AddFile(stdio.child[0], stdio.child[1], stdio.child[2])
	setupW, _, err := c.PipeTo()
	if err != nil {
		return nil, nil, err
	}
	s2W, _, err := c.PipeTo()
	if err != nil {
		return nil, nil, err
	}
	readyR, _, err := c.PipeFrom()
	if err != nil {
		return nil, nil, err
	}
	for i := range s2.Apps {
		a := &s2.Apps[i]
		for _, f := range p.listeners[a.Name] {
			a.ListenFds = append(a.ListenFds, c.AddFile(f))
		}
		a.ListenNames = p.listenNames[a.Name]
	}
	env := []string{"PATH=" + podspec.DefaultPath}
	if p.args.Debug {
		env = append(env, "RKT_STAGE2_DEBUG=1")
	}
	// The debug hook of the tests (internal/pausepoint) reaches the init,
	// which stops after its mounts (pausepoint.Stage1Mounted).
	if at := os.Getenv(pausepoint.EnvAt); at == pausepoint.Stage1Mounted {
		env = append(env, pausepoint.EnvAt+"="+at, pausepoint.EnvDir+"="+os.Getenv(pausepoint.EnvDir))
	}
	// The child is killed with us (Pdeathsig). Pdeathsig fires when the
	// creating thread exits, so the run entrypoint's main thread is locked
	// for the process's whole life (cmd/stage1-ns).
	flags := uintptr(unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS)
	if p.args.IPC != "parent" {
		// --ipc=private (and auto, which is private here): a new IPC
		// namespace; parent shares the caller's, as rkt did.
		flags |= unix.CLONE_NEWIPC
	}
	back, err := p.enterForClone()
	if err != nil {
		return nil, nil, err
	}
	if back != nil {
		flags |= unix.CLONE_NEWCGROUP
	}
	attr := &unixSysProcAttr{Cloneflags: flags, Pdeathsig: unix.SIGKILL}
	u, err := parseUserns(p.args.PrivateUsers)
	if err == nil && u != nil {
		u.sysProcAttr(attr)
		err = p.prepareUserns(u, setup)
	}
	if err != nil {
		if back != nil {
			back()
		}
		return nil, nil, err
	}
	// In its own user namespace the child cannot search the root-only
	// directories above the pod: it inherits our working directory, the pod
	// directory, and execs stage2 by a path relative to it.
	exe, dir := filepath.Join(p.root(), "stage2"), p.dir
	if u != nil {
		exe, dir = p.relPath(exe), ""
	}
	startChild := func() error {
		return c.Start(exe, []string{"stage2", podsetup.Command}, &os.ProcAttr{Dir: dir, Env: env, Sys: attr})
	}
	if u != nil && setup.NetNS != "" {
		// os.StartProcess clones on the calling thread, locked here, so the
		// child starts inside the pod's network namespace: a pod in its own
		// user namespace cannot join one owned by the host's. If switching
		// back fails this thread stays there, harmless for the rest of
		// stage1's life (it only waits and forwards signals), but reported.
		podNetNS, sysctls := setup.NetNS, setup.Sysctls
		setup.NetNS, setup.Sysctls = "", nil
		err = netns.DoLocked(podNetNS, func() error {
			if err := sysctl.Write(sysctls); err != nil {
				return err
			}
			return startChild()
		})
	} else {
		err = startChild()
	}
	if back != nil {
		if berr := back(); berr != nil && err == nil {
			err = fmt.Errorf("leave pod cgroup: %w", berr)
		}
	}
	stdio.started()
	if err != nil {
		return nil, nil, fmt.Errorf("start pod: %w", err)
	}
	if err := p.placeInit(c.Process.Pid); err != nil {
		return nil, nil, err
	}
	if err := c.SendJSON(setupW, setup); err != nil {
		return nil, nil, fmt.Errorf("send pod setup config: %w", err)
	}
	if err := c.SendJSON(s2W, s2); err != nil {
		return nil, nil, fmt.Errorf("send stage2 config: %w", err)
	}
	if err := atomicfile.Replace(p.layout().PID(), []byte(strconv.Itoa(c.Process.Pid)), 0o644); err != nil {
		return nil, nil, err
	}
	return c.Process, readyR, nil
}

// supervise forwards signals to the pod's init until it exits.
func (p *pod) supervise(child *os.Process, ready *os.File, stdio *podStdio) (int, error) {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH)
	defer signal.Stop(sigs)
	type result struct {
		st  *os.ProcessState
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := child.Wait()
		done <- result{st, err}
	}()
	readyc := make(chan struct{})
	go func() {
		defer close(readyc)
		buf := make([]byte, 16)
		if n, _ := ready.Read(buf); n > 0 {
			p.onReady()
		}
	}()
	for {
		select {
		case sig := <-sigs:
			if sig == unix.SIGWINCH && stdio.resize() {
				continue // the pod's terminal signals its own foreground
			}
			child.Signal(sig)
		case r := <-done:
			<-readyc
			if r.err != nil {
				return 0, fmt.Errorf("wait for pod: %w", r.err)
			}
			ws, _ := r.st.Sys().(unixWaitStatus)
			if ws.Signaled() {
				return 128 + int(ws.Signal()), nil
			}
			return ws.ExitStatus(), nil
		}
	}
}

// onReady is called once every app has started (and every app that
// supports sd_notify has said READY=1).
func (p *pod) onReady() {
	p.log.Debug("pod ready", "pod", p.args.UUID)
	if err := sdNotify(fmt.Sprintf("READY=1\nMAINPID=%d\n", os.Getpid())); err != nil {
		p.log.Warn("tell the supervisor the pod is ready", "err", err)
	}
}

// cleanup undoes what the pod set up on the host once it has exited: the
// same work the gc entrypoint does after a crash. Every step runs even when
// an earlier one failed.
func (p *pod) cleanup() error {
	p.reportOOM()
	cgErr := removeCgroups(context.Background(), p.dir)
	p.log.Debug("cgroups removed", "pod", p.args.UUID)
	pauseErr := pausepoint.Reach(context.Background(), pausepoint.Stage1Cleanup)
	netErr := teardownNetwork(context.Background(), p.dir, p.pluginDirs(), p.netDataDir())
	p.log.Debug("network torn down", "pod", p.args.UUID)
	// stage1/ holds the overlays; overlay/ held the idmapped layer binds of
	// a --private-users pod prepared by older versions (now detached).
	return errors.Join(cgErr, pauseErr, netErr, mountinfo.UnmountAll(p.layout().Stage1()),
		mountinfo.UnmountAll(p.layout().Overlay()))
}
