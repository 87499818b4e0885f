package ns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/cni"
	"github.com/rkt-ng/rkt/internal/atomicfile"
	"github.com/rkt-ng/rkt/internal/copytree"
	"github.com/rkt-ng/rkt/internal/mountinfo"
	"github.com/rkt-ng/rkt/internal/netns"
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

// annotationNotify marks an image whose app speaks sd_notify; the pod is
// ready only when it has sent READY=1 (appc executor annotation).
const annotationNotify = "appc.io/executor/supports-systemd-notify"

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
		return nil, fmt.Errorf("--ipc=%s: want auto, private or parent", ra.IPC)
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
	mdsURL, stopMDS, err := p.startMDS(nsPath)
	if err != nil {
		return 0, err
	}
	p.log.Debug("metadata service ready", "pod", p.args.UUID)
	if p.listeners, p.listenNames, err = p.listenSockets(nsPath); err != nil {
		return 0, err
	}
	defer closeAll(p.listeners)
	defer stopMDS()
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

// configs builds the setup child's and stage2's configurations.
func (p *pod) configs(info *cni.Info, extraEnv []string) (*podsetup.Config, *stage2.Config, error) {
	hostname := p.hostname()
	var dnsFiles []podFile
	err := p.asPodRoot(func() (err error) { dnsFiles, err = p.dnsFiles(info); return err })
	if err != nil {
		return nil, nil, err
	}
	setup := &podsetup.Config{Root: p.root(), Hostname: hostname, DisablePaths: p.args.DisablePaths}
	if setup.Sysctls, err = p.sysctls(); err != nil {
		return nil, nil, err
	}
	s2 := &stage2.Config{PodUUID: p.args.UUID, StopTimeout: time.Duration(p.opts.StopTimeout), Debug: p.args.Debug,
		InitCgroupProcs: p.initProcsFiles()}
	if p.args.Interactive && len(p.manifest.Apps) != 1 {
		return nil, nil, fmt.Errorf("--interactive needs a pod of exactly one app, this one has %d", len(p.manifest.Apps))
	}
	for _, ra := range p.manifest.Apps {
		ra := ra
		name := ra.Name.String()
		hostRootfs := p.appRootfs(name)
		proc, err := podspec.Proc(podspec.Input{App: &ra, Image: p.images[name], HostRootfs: hostRootfs, PodRootfs: podspec.AppRootfs(name), ExtraEnv: extraEnv})
		if err != nil {
			return nil, nil, err
		}
		if err := p.asPodRoot(func() error { return ensureHosts(hostRootfs, hostname) }); err != nil {
			return nil, nil, fmt.Errorf("app %s: %w", name, err)
		}
		binds, err := p.binds(&ra)
		if err != nil {
			return nil, nil, fmt.Errorf("app %s: %w", name, err)
		}
		binds = append(binds, filesFor(&ra, dnsFiles)...)
		notify := ""
		if v, ok := p.images[name].Annotations.Get(annotationNotify); ok && v == "true" {
			dir := p.layout().InStage1(layout.AppNotify(name))
			if err := p.asPodRoot(func() error { return os.MkdirAll(dir, 0o755) }); err != nil {
				return nil, nil, err
			}
			binds = append(binds, podsetup.Bind{Source: dir, Target: layout.AppNotifyDir})
			proc.Env = append(proc.Env, "NOTIFY_SOCKET="+layout.AppNotifySocketInApp())
			notify = layout.AppNotifySocket(name)
		}
		applied, err := podspec.Confine(&proc, ra.App.Isolators, podspec.Insecure{Capabilities: p.args.DisableCaps, Seccomp: p.args.DisableSeccomp})
		if err != nil {
			return nil, nil, fmt.Errorf("app %s: %w", name, err)
		}
		if proc.CgroupProcs, err = p.appCgroup(name, ra.App.Isolators, applied); err != nil {
			return nil, nil, err
		}
		for _, iso := range manifests.Unapplied(ra.App.Isolators, applied) {
			fmt.Fprintf(os.Stderr, "rkt: app %s: isolator %s is not supported by this stage1 and was ignored\n", name, iso)
		}
		app := stage2.App{Name: name, Root: podspec.AppRootfs(name), Proc: proc, NotifySocket: notify, Terminal: podTerminal(p.args.Interactive)}
		for _, eh := range ra.App.EventHandlers {
			switch eh.Name {
			case "pre-start":
				app.PreStart = eh.Exec
			case "post-stop":
				app.PostStop = eh.Exec
			}
		}
		if o, ok := p.opts.Apps[name]; ok && o.StopSignal != "" {
			sig := unix.SignalNum(strings.ToUpper(o.StopSignal))
			if sig == 0 {
				sig = unix.SignalNum("SIG" + strings.ToUpper(o.StopSignal))
			}
			app.StopSignal = int(sig)
		}
		setup.Apps = append(setup.Apps, podsetup.App{Name: name, Rootfs: hostRootfs, ReadOnly: ra.ReadOnlyRootFS, Binds: binds})
		s2.Apps = append(s2.Apps, app)
	}
	return setup, s2, nil
}

// ensureHosts gives an app an /etc/hosts with localhost when its image has
// none; an existing file is never modified (appc ace.md).
func ensureHosts(rootfs, hostname string) error {
	full, err := securejoin.SecureJoin(rootfs, "/etc/hosts")
	if err != nil {
		return err
	}
	if _, err := os.Lstat(full); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	content := "127.0.0.1\tlocalhost localhost.localdomain " + hostname + "\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	return os.WriteFile(full, []byte(content), 0o644)
}

// binds resolves an app's mounts against the pod's volumes.
func (p *pod) binds(ra *schema.RuntimeApp) ([]podsetup.Bind, error) {
	var out []podsetup.Bind
	vols := map[types.ACName]types.Volume{}
	for _, v := range p.manifest.Volumes {
		vols[v.Name] = v
	}
	for _, m := range ra.Mounts {
		v, ok := vols[m.Volume]
		if !ok {
			if m.AppVolume == nil {
				return nil, fmt.Errorf("mount %s: volume %q is not declared", m.Path, m.Volume)
			}
			v = *m.AppVolume
		}
		src, err := p.volumeSource(v, ra, m.Path)
		if err != nil {
			return nil, err
		}
		ro := v.ReadOnly != nil && *v.ReadOnly
		for _, mp := range ra.App.MountPoints {
			if mp.Path == m.Path && mp.ReadOnly {
				ro = true
			}
		}
		rec := v.Kind == "host" && (v.Recursive == nil || *v.Recursive)
		fi, err := os.Stat(src)
		if err != nil {
			return nil, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		out = append(out, podsetup.Bind{Source: src, Target: m.Path, ReadOnly: ro, Recursive: rec, File: !fi.IsDir()})
	}
	return out, nil
}

// volumeSource gives the host path of a volume, creating empty volumes in
// the pod directory (sharedVolumes/) with their mode and owner.
//
// A seed volume (Options.SeedVolumes) is created as a copy of what app ra's
// image has at path, when that is a directory: Docker's volume semantics,
// as rkt had them. The copy never follows the image's symlinks (the path is
// resolved inside the app's rootfs, and the tree is copied as it is).
func (p *pod) volumeSource(v types.Volume, ra *schema.RuntimeApp, path string) (string, error) {
	switch v.Kind {
	case "host":
		fi, err := os.Lstat(v.Source)
		if err != nil {
			return "", fmt.Errorf("volume %s: host source: %w", v.Name, err)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return "", fmt.Errorf("volume %s: host source %s is a symlink", v.Name, v.Source)
		}
		return v.Source, nil
	case "empty":
		dir := p.layout().SharedVolume(v.Name.String())
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			return "", err
		}
		if slices.Contains(p.opts.SeedVolumes, v.Name.String()) {
			seeded, err := p.seedVolume(dir, ra, path)
			if err != nil {
				return "", fmt.Errorf("volume %s: copy the image's %s: %w", v.Name, path, err)
			}
			if seeded {
				return dir, nil
			}
		}
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return "", err
		}
		mode := uint64(0o755)
		if v.Mode != nil {
			m, err := strconv.ParseUint(*v.Mode, 8, 32)
			if err != nil {
				return "", fmt.Errorf("volume %s: invalid mode %q", v.Name, *v.Mode)
			}
			mode = m
		}
		uid, gid := 0, 0
		if v.UID != nil {
			uid = *v.UID
		}
		if v.GID != nil {
			gid = *v.GID
		}
		if err := os.Chmod(dir, os.FileMode(mode)); err != nil {
			return "", err
		}
		if err := os.Lchown(dir, uid, gid); err != nil {
			return "", err
		}
		return dir, nil
	}
	return "", fmt.Errorf("volume %s: unknown kind %q", v.Name, v.Kind)
}

// seedVolume makes dir a copy of the directory at path in app ra's rootfs,
// if there is one and dir does not exist yet (a volume is seeded once, by
// the first app that mounts it). It reports whether it made dir.
func (p *pod) seedVolume(dir string, ra *schema.RuntimeApp, path string) (bool, error) {
	if _, err := os.Lstat(dir); err == nil {
		return false, nil
	}
	src, err := securejoin.SecureJoin(p.appRootfs(ra.Name.String()), path)
	if err != nil {
		return false, err
	}
	fi, err := os.Lstat(src)
	if err != nil || !fi.IsDir() {
		return false, nil
	}
	tmp := dir + ".seeding"
	os.RemoveAll(tmp)
	if err := copytree.Copy(src, tmp); err != nil {
		os.RemoveAll(tmp)
		return false, err
	}
	return true, os.Rename(tmp, dir)
}

// start runs the pod: the setup child in new namespaces becomes stage2, and
// this process forwards signals to it until it exits.
func (p *pod) start(setup *podsetup.Config, s2 *stage2.Config) (int, error) {
	setupR, setupW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer setupR.Close()
	s2R, s2W, err := os.Pipe()
	if err != nil {
		setupW.Close()
		return 0, err
	}
	defer s2R.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		setupW.Close()
		s2W.Close()
		return 0, err
	}
	defer readyR.Close()
	env := []string{"PATH=" + podspec.DefaultPath}
	if p.args.Debug {
		env = append(env, "RKT_STAGE2_DEBUG=1")
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
		setupW.Close()
		s2W.Close()
		return 0, err
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
		setupW.Close()
		s2W.Close()
		return 0, err
	}
	// The pod's first process is the stage2 binary: it runs the mount plan
	// and then becomes the pod's init, without another exec.
	stdio, err := newPodStdio(p.args.Interactive)
	if err != nil {
		if back != nil {
			back()
		}
		setupW.Close()
		s2W.Close()
		return 0, fmt.Errorf("pod stdio: %w", err)
	}
	defer stdio.finish()
	files := []*os.File{stdio.child[0], stdio.child[1], stdio.child[2], setupR, s2R, readyW}
	for i := range s2.Apps {
		a := &s2.Apps[i]
		for _, f := range p.listeners[a.Name] {
			a.ListenFds = append(a.ListenFds, len(files))
			files = append(files, f)
		}
		a.ListenNames = p.listenNames[a.Name]
	}
	// In its own user namespace the child cannot search the root-only
	// directories above the pod: it inherits our working directory, the pod
	// directory, and execs stage2 by a path relative to it.
	exe, dir := filepath.Join(p.root(), "stage2"), p.dir
	if u != nil {
		exe, dir = p.relPath(exe), ""
	}
	var child *os.Process
	startChild := func() error {
		child, err = os.StartProcess(exe, []string{"stage2", podsetup.Command}, &os.ProcAttr{
			Dir: dir, Env: env, Files: files, Sys: attr,
		})
		return err
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
		if err != nil && child != nil {
			child.Kill()
			child.Wait()
		}
	} else {
		startChild()
	}
	if back != nil {
		if berr := back(); berr != nil && err == nil {
			child.Kill()
			child.Wait()
			err = fmt.Errorf("leave pod cgroup: %w", berr)
		}
	}
	readyW.Close()
	stdio.started()
	if err != nil {
		setupW.Close()
		s2W.Close()
		return 0, fmt.Errorf("start pod: %w", err)
	}
	if err := p.placeInit(child.Pid); err != nil {
		setupW.Close()
		s2W.Close()
		child.Kill()
		child.Wait()
		return 0, err
	}
	writeJSON := func(w io.WriteCloser, v any) error {
		defer w.Close()
		return json.NewEncoder(w).Encode(v)
	}
	if err := writeJSON(setupW, setup); err != nil {
		s2W.Close()
		child.Kill()
		child.Wait()
		return 0, fmt.Errorf("send pod setup config: %w", err)
	}
	if err := writeJSON(s2W, s2); err != nil {
		child.Kill()
		child.Wait()
		return 0, fmt.Errorf("send stage2 config: %w", err)
	}
	if err := atomicfile.Replace(p.layout().PID(), []byte(strconv.Itoa(child.Pid)), 0o644); err != nil {
		child.Kill()
		child.Wait()
		return 0, err
	}
	return p.supervise(child, readyR, stdio)
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
	netErr := teardownNetwork(context.Background(), p.dir, p.pluginDirs(), p.netDataDir())
	p.log.Debug("network torn down", "pod", p.args.UUID)
	// stage1/ holds the overlays; overlay/ held the idmapped layer binds of
	// a --private-users pod prepared by older versions (now detached).
	return errors.Join(cgErr, netErr, mountinfo.UnmountAll(p.layout().Stage1()),
		mountinfo.UnmountAll(p.layout().Overlay()))
}

// sysctls returns the pod's os/unix/sysctl isolator. Only net.* keys are
// namespaced with the pod's network namespace; anything else would change
// the host, and so would any key under --net=host.
func (p *pod) sysctls() (map[string]string, error) {
	out := map[string]string{}
	for _, iso := range p.manifest.Isolators {
		v, ok := iso.Value().(*types.UnixSysctl)
		if !ok {
			continue
		}
		for k, val := range *v {
			if err := CheckSysctl(k, p.args.Net); err != nil {
				return nil, err
			}
			out[k] = val
		}
	}
	return out, nil
}

// CheckSysctl rejects sysctls that are not confined to the pod's own
// network namespace.
func CheckSysctl(key, net string) error {
	if !strings.HasPrefix(key, "net.") || strings.Contains(key, "..") || strings.Contains(key, "/") {
		return fmt.Errorf("sysctl %q: only namespaced net.* sysctls may be set", key)
	}
	if net == "host" {
		return fmt.Errorf("sysctl %q: not allowed with --net=host (it would change the host)", key)
	}
	return nil
}
