package ns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/appc/spec/schema"
	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/cni"
	"github.com/rkt-ng/rkt/internal/atomicfile"
	"github.com/rkt-ng/rkt/internal/pty"
	"github.com/rkt-ng/rkt/pods/layout"
	"github.com/rkt-ng/rkt/stage1"
	"github.com/rkt-ng/rkt/stage1/cgroups"
	"github.com/rkt-ng/rkt/stage1/plan"
	"github.com/rkt-ng/rkt/stage1/podsetup"
	"github.com/rkt-ng/rkt/stage1/podspec"
	"github.com/rkt-ng/rkt/stage2"
)

// mutableRecord is stage1-mutable-args.json: a mutable pod's run arguments
// (the RunArgs fields, without the metadata token) and the metadata
// service URL for added apps (it carries the token; the file is root's,
// mode 0600, in the pod directory, like the token file).
type mutableRecord struct {
	stage1.RunArgs
	MDSURL string `json:",omitempty"`
}

// saveMutableArgs records a mutable pod's run arguments and metadata
// service URL ("" without one) for its app entrypoints: they plan apps as
// run does, and give each AC_METADATA_URL.
func (p *pod) saveMutableArgs(mdsURL string) error {
	r := mutableRecord{RunArgs: p.args, MDSURL: mdsURL}
	r.MDSToken = ""
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return atomicfile.Replace(p.layout().MutableArgs(), b, 0o600)
}

// loadApp loads the mutable pod in the cwd for an app entrypoint and checks
// that the app is in its manifest and passes validation (2.1.1).
func loadApp(args []string, log *slog.Logger) (*pod, *schema.RuntimeApp, error) {
	aa, err := stage1.ParseAppArgs(args)
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.Getwd()
	if err != nil {
		return nil, nil, err
	}
	b, err := os.ReadFile(layout.Dir(dir).MutableArgs())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("pod %s is not a running mutable pod", aa.UUID)
	}
	if err != nil {
		return nil, nil, err
	}
	var rec mutableRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, nil, fmt.Errorf("mutable pod arguments: %w", err)
	}
	ra := rec.RunArgs
	if ra.UUID != aa.UUID {
		return nil, nil, fmt.Errorf("pod directory is pod %s, not %s", ra.UUID, aa.UUID)
	}
	ra.Debug = ra.Debug || aa.Debug
	argv, _ := ra.Argv(stage1.InterfaceVersion)
	p, err := loadPod(argv, log)
	if err != nil {
		return nil, nil, err
	}
	if err := p.validate(); err != nil {
		return nil, nil, err
	}
	p.mdsURL = rec.MDSURL
	for i := range p.manifest.Apps {
		if p.manifest.Apps[i].Name.String() == aa.App {
			return p, &p.manifest.Apps[i], nil
		}
	}
	return nil, nil, fmt.Errorf("no app %s in pod %s", aa.App, aa.UUID)
}

// AppAdd is the app/add entrypoint: stage0 added the app to the pod
// manifest and laid down its rootfs; this checks that the app can run here
// (its isolators, 2.1.1) before it counts as created. It starts nothing.
func AppAdd(args []string, log *slog.Logger) error {
	_, _, err := loadApp(args, log)
	return err
}

// AppStart is the app/start entrypoint: it plans the app as the run
// entrypoint plans the pod's first apps, makes its cgroup with its limits,
// and hands stage2 the app with its mount trees (open_tree(2)): the pod's
// init mounts them in the pod's mount namespace and starts the app with
// every confinement of a first app.
func AppStart(args []string, log *slog.Logger) (retErr error) {
	p, ra, err := loadApp(args, log)
	if err != nil {
		return err
	}
	name := ra.Name.String()
	in := plan.Input{
		Manifest: onlyApp(p.manifest, ra), Images: p.images, Options: p.opts, Args: p.args,
		Users: rootfsUsers{p},
	}
	if p.mdsURL != "" {
		in.ExtraEnv = []string{"AC_METADATA_URL=" + p.mdsURL}
	}
	if info, err := cni.LoadInfo(p.layout().NetInfo()); err == nil {
		d := info.DNS()
		in.DNS = plan.DNS{Nameservers: d.Nameservers, Domain: d.Domain, Search: d.Search, Options: d.Options}
	}
	if b, err := os.ReadFile(p.layout().Subcgroup()); err == nil {
		if p.cg, err = cgroups.Open(strings.TrimSpace(string(b)), cgroups.WithLogger(log)); err != nil {
			return fmt.Errorf("pod cgroup: %w", err)
		}
		in.Cgroups = true
	}
	pl, err := plan.Build(in)
	if err != nil {
		return err
	}
	if len(pl.Apps) != 1 {
		return fmt.Errorf("app %s: planned %d apps", name, len(pl.Apps))
	}
	a := pl.Apps[0]
	if err := p.asPodRoot(func() error { return p.writeFiles(pl) }); err != nil {
		return err
	}
	vols := map[string]plan.Volume{}
	for _, v := range pl.Volumes {
		vols[v.Name] = v
	}
	binds, err := p.binds(a.Binds, vols)
	if err != nil {
		return fmt.Errorf("app %s: %w", name, err)
	}
	criLog, tty := p.opts.Apps[name].CRILogPath, p.opts.Apps[name].TTY
	reserved := 1 // the rootfs
	if criLog != "" {
		reserved++
	}
	if tty {
		reserved += 2
	}
	if len(binds)+reserved > stage2.MaxAppFds {
		return fmt.Errorf("app %s: %d mounts, at most %d for an app added to a running pod", name, len(binds), stage2.MaxAppFds-reserved)
	}
	app := a.Stage2
	app.Stdin, app.StdinOnce = p.opts.Apps[name].Stdin, p.opts.Apps[name].StdinOnce
	var cgMounts []podsetup.Mount
	if p.cg != nil {
		cg, err := p.cg.NewApp(name, a.Limits)
		if err != nil {
			return fmt.Errorf("app %s: %w", name, err)
		}
		app.Proc.CgroupProcs = cg.JoinFiles()
		for _, m := range cg.Mounts() {
			cgMounts = append(cgMounts, podsetup.Mount{Source: m.Source, Target: m.Target, FSType: m.FSType, Flags: m.Flags, Data: m.Data})
		}
	}
	for _, iso := range a.Ignored {
		fmt.Fprintf(os.Stderr, "rkt: app %s: isolator %s is not supported by this stage1 and was ignored\n", name, iso)
	}
	mounts, err := json.Marshal(podsetup.Added{
		App:          podsetup.App{Name: name, Rootfs: podspec.AppRootfs(name), ReadOnly: a.ReadOnly, Binds: binds},
		DisablePaths: p.args.DisablePaths,
		Cgroups:      cgMounts,
	})
	if err != nil {
		return err
	}
	fds, err := openTrees(p.appRootfs(name), binds)
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	if err != nil {
		return fmt.Errorf("app %s: %w", name, err)
	}
	if tty {
		// The app's terminal: stage2 keeps the master, the app gets the
		// slave (as `rkt enter` does, the pty is the host's: the pod
		// gets only these two fds).
		master, slave, err := pty.Open()
		if err != nil {
			return fmt.Errorf("app %s: terminal: %w", name, err)
		}
		defer master.Close()
		defer slave.Close()
		for _, f := range []*os.File{master, slave} {
			fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("app %s: terminal: %w", name, os.NewSyscallError("fcntl", err))
			}
			fds = append(fds, fd) // closed with the others
		}
	}
	if criLog != "" {
		fd, err := openCRILog(criLog)
		if err != nil {
			return fmt.Errorf("app %s: %w", name, err)
		}
		fds = append(fds, fd) // last, as stage2.AppStart.CRILog says
	}
	_, err = callStage2(stage2.EnterRequest{Op: stage2.OpStart, App: name, Start: &stage2.AppStart{App: app, Mounts: mounts, CRILog: criLog != "", TTY: tty}},
		unix.UnixRights(fds...))
	return err
}

// onlyApp is pm with ra as its one app.
func onlyApp(pm *schema.PodManifest, ra *schema.RuntimeApp) *schema.PodManifest {
	one := *pm
	one.Apps = schema.AppList{*ra}
	return &one
}

// openTrees clones the app's rootfs mount and each bind source as detached
// mount trees (podsetup.MountAdded). It returns the fds opened so far even
// on error, for the caller to close.
func openTrees(rootfs string, binds []podsetup.Bind) ([]int, error) {
	fd, err := podsetup.OpenTree(rootfs, true)
	if err != nil {
		return nil, err
	}
	fds := []int{fd}
	for _, b := range binds {
		fd, err := podsetup.OpenTree(b.Source, b.Recursive)
		if err != nil {
			return fds, err
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

// AppStop is the app/stop entrypoint: stage2 sends the app its stop signal
// (SIGKILL with --force, or after the stop timeout) and replies once the
// app exited; its exit status is in /rkt/status/<app>.
func AppStop(args []string) error {
	aa, err := stage1.ParseAppArgs(args)
	if err != nil {
		return err
	}
	_, err = callStage2(stage2.EnterRequest{Op: stage2.OpStop, App: aa.App, Force: aa.Force}, nil)
	return err
}

// AppRm is the app/rm entrypoint for an app that is not running: stage2
// unmounts it in the pod, then its cgroup is removed. stage0 then removes
// the app from the pod manifest and releases its rootfs.
func AppRm(args []string) error {
	aa, err := stage1.ParseAppArgs(args)
	if err != nil {
		return err
	}
	if _, err := callStage2(stage2.EnterRequest{Op: stage2.OpRm, App: aa.App}, nil); err != nil {
		return err
	}
	b, err := os.ReadFile(layout.Dir(".").Subcgroup())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	cg, err := cgroups.Open(strings.TrimSpace(string(b)))
	if err != nil {
		return err
	}
	app, err := cg.App(aa.App)
	if err != nil {
		return err
	}
	return app.Remove(context.Background())
}
