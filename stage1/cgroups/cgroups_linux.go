package cgroups

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/eintr"
)

const (
	// podPrefix starts the name of every pod cgroup. Open insists on it so a
	// damaged "subcgroup" file cannot make gc kill the host's processes.
	podPrefix = "rkt-"
	// InitLeaf is the leaf cgroup of the pod's own processes.
	InitLeaf = "init.scope"

	// removeTimeout bounds how long Remove waits for killed processes to
	// leave the cgroups, when the context has no earlier deadline.
	removeTimeout = 10 * time.Second
)

// ErrNoController is matched (errors.Is) by a [*ControllerError].
var ErrNoController = errors.New("cgroup controller not available")

// ControllerError reports that a limit needs a controller that the pod's
// cgroup does not have.
type ControllerError struct {
	Controller string
	// Cgroup is the cgroup that lacks the controller.
	Cgroup string
	// Err says why, when known (for example the EBUSY of enabling it in
	// the parent's cgroup.subtree_control).
	Err error
}

func (e *ControllerError) Error() string {
	s := "cgroup controller " + e.Controller + " not available in " + e.Cgroup
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *ControllerError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrNoController}
	}
	return []error{ErrNoController, e.Err}
}

// Option configures [NewPod] and [Open].
type Option func(*config)

type config struct {
	log     *slog.Logger
	unified string
	pid     int
}

// WithLogger sets the logger; by default nothing is logged.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithUnifiedMount makes the package use the cgroup2 hierarchy mounted at dir
// in Unified mode, whatever the detected layout.
func WithUnifiedMount(dir string) Option { return func(c *config) { c.unified = dir } }

// WithParentOf makes [NewPod] create the pod below the cgroups of process pid
// instead of those of the calling process.
func WithParentOf(pid int) Option { return func(c *config) { c.pid = pid } }

func newConfig(opts []Option) (*config, *Layout, error) {
	c := &config{}
	for _, o := range opts {
		o(c)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	var (
		l   *Layout
		err error
	)
	if c.unified != "" {
		l, err = detectUnifiedAt(c.unified)
	} else {
		l, err = Detect()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("detect cgroup layout: %w", err)
	}
	return c, l, nil
}

// cgDir is the pod cgroup in one hierarchy.
type cgDir struct {
	h Hierarchy
	// rel is the pod cgroup's path from the hierarchy root.
	rel string
	// dir is rel under h.Mountpoint.
	dir string
}

// Pod is the cgroup (v2) or the set of cgroups (v1, one per hierarchy) of one
// pod.
type Pod struct {
	log  *slog.Logger
	mode Mode
	dirs []cgDir
	// missing holds, on v2, the controllers the parent could not delegate
	// to the pod and why. It is only known for pods made by NewPod.
	missing map[string]error
	// children are the child cgroups made by this Pod value: InitLeaf and
	// the apps, in creation order.
	children []string
	// closedDevices is set by RestrictDevices on v1: apps made later get
	// the closed device policy too.
	closedDevices bool
	// enabled is set once EnableControllers has run.
	enabled bool
	// planned are the apps PlanApp declared before EnableControllers, which
	// creates them, in order.
	planned []plannedApp
}

type plannedApp struct {
	name string
	l    Limits
}

// NewPod creates the cgroup(s) of pod name ("rkt-<name>", with the leaf
// [InitLeaf]) below the cgroup(s) of the calling process. On v2 it first
// enables the controllers in the parent's cgroup.subtree_control where it can
// (see the package doc). It fails if the pod cgroup exists.
func NewPod(name string, opts ...Option) (*Pod, error) {
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("pod cgroup name: %w", err)
	}
	c, layout, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	self, err := readProcCgroups(c.pid)
	if err != nil {
		return nil, fmt.Errorf("read own cgroups: %w", err)
	}
	p := &Pod{log: c.log, mode: layout.Mode, missing: map[string]error{}, children: []string{InitLeaf}}
	v := p.version()
	for _, h := range layout.Hierarchies {
		if !v.uses(h) {
			continue
		}
		parent, ok := self[h.key()]
		if !ok {
			if err := v.notIn(h); err != nil {
				return nil, err
			}
			continue
		}
		rel := path.Join(parent, podPrefix+name)
		dir, err := h.dirOf(rel)
		if err != nil {
			return nil, err
		}
		p.dirs = append(p.dirs, cgDir{h: h, rel: rel, dir: dir})
	}
	if len(p.dirs) == 0 {
		return nil, ErrNoCgroups
	}
	v.delegate()
	var made []string
	undo := func() {
		for _, d := range slices.Backward(made) {
			_ = rmdir(d)
		}
	}
	for _, d := range p.dirs {
		for _, dir := range []string{d.dir, filepath.Join(d.dir, InitLeaf)} {
			if err := mkdir(dir); err != nil {
				undo()
				return nil, fmt.Errorf("create pod cgroup: %w", err)
			}
			made = append(made, dir)
			if err := initCpuset(d.h, dir); err != nil {
				undo()
				return nil, err
			}
		}
	}
	p.log.Debug("pod cgroup created", "cgroup", p.Path(), "mode", p.mode.String())
	return p, nil
}

// Open returns the pod whose cgroups were recorded by [Pod.Path], for gc. It
// does not check that the cgroups exist.
func Open(subcgroup string, opts ...Option) (*Pod, error) {
	c, layout, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	rels, err := parseSubcgroup(subcgroup)
	if err != nil {
		return nil, err
	}
	p := &Pod{log: c.log, mode: layout.Mode}
	for _, h := range layout.Hierarchies {
		rel, ok := rels[h.key()]
		if !ok {
			rel, ok = rels["*"]
		}
		if !ok {
			continue
		}
		dir, err := h.dirOf(rel)
		if err != nil {
			return nil, err
		}
		p.dirs = append(p.dirs, cgDir{h: h, rel: rel, dir: dir})
	}
	if len(p.dirs) == 0 {
		return nil, fmt.Errorf("subcgroup %q names no mounted %s hierarchy", subcgroup, layout.Mode)
	}
	return p, nil
}

// parseSubcgroup parses the format written by Pod.Path: either one absolute
// path (key "*": the same in every hierarchy) or lines "CONTROLLERS:PATH".
// Every path must be clean and end in a pod cgroup name.
func parseSubcgroup(s string) (map[string]string, error) {
	s = strings.TrimSpace(s)
	rels := map[string]string{}
	if strings.HasPrefix(s, "/") {
		if err := checkPodRel(s); err != nil {
			return nil, err
		}
		rels["*"] = s
		return rels, nil
	}
	for line := range strings.SplitSeq(s, "\n") {
		key, rel, ok := strings.Cut(line, ":")
		if !ok || key == "" {
			return nil, fmt.Errorf("invalid subcgroup line %q: want CONTROLLERS:PATH", line)
		}
		if err := checkPodRel(rel); err != nil {
			return nil, err
		}
		cs := strings.Split(key, ",")
		slices.Sort(cs)
		rels[strings.Join(cs, ",")] = rel
	}
	return rels, nil
}

func checkPodRel(rel string) error {
	if !strings.HasPrefix(rel, "/") || path.Clean(rel) != rel {
		return fmt.Errorf("invalid pod cgroup path %q: not a clean absolute path", rel)
	}
	if base := path.Base(rel); len(base) <= len(podPrefix) || !strings.HasPrefix(base, podPrefix) || checkName(base) != nil {
		return fmt.Errorf("invalid pod cgroup path %q: last element is not %s<name>", rel, podPrefix)
	}
	return nil
}

// Path is the pod's cgroup path relative to the hierarchy root, for the pod
// directory's "subcgroup" file. It is a single absolute path when the pod has
// the same path in every hierarchy (always on v2); otherwise (v1 with
// processes in different cgroups per controller) it is one
// "CONTROLLERS:PATH" line per hierarchy, as in /proc/<pid>/cgroup without
// the hierarchy ID.
func (p *Pod) Path() string {
	uniform := true
	for _, d := range p.dirs {
		uniform = uniform && d.rel == p.dirs[0].rel
	}
	if uniform {
		return p.dirs[0].rel
	}
	lines := make([]string, len(p.dirs))
	for i, d := range p.dirs {
		lines[i] = d.h.key() + ":" + d.rel
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// Mode returns the layout the pod lives in.
func (p *Pod) Mode() Mode { return p.mode }

// Dirs returns the pod cgroup directories on the host, one per hierarchy.
func (p *Pod) Dirs() []string {
	out := make([]string, len(p.dirs))
	for i, d := range p.dirs {
		out[i] = d.dir
	}
	return out
}

// Controllers returns the controllers usable for limits on the pod cgroup,
// sorted, and on v2 the ones NewPod could not delegate with the reason.
func (p *Pod) Controllers() (have []string, missing map[string]error) {
	have = p.version().controllers()
	slices.Sort(have)
	return have, maps.Clone(p.missing)
}

// SetLimits applies l to the pod cgroup.
func (p *Pod) SetLimits(l Limits) error {
	if err := p.setLimits("", l); err != nil {
		return fmt.Errorf("set limits of pod cgroup %s: %w", p.dirs[0].rel, err)
	}
	return nil
}

// Enter moves process pid into the pod cgroup itself rather than a leaf. On
// v2 this only works before [Pod.EnableControllers]; it exists so that a
// process can create the pod's cgroup namespace rooted at the pod cgroup
// (see the package doc). Use [Pod.Init] for the pod's processes otherwise.
func (p *Pod) Enter(pid int) error {
	for _, d := range p.dirs {
		if err := writeFile(filepath.Join(d.dir, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("move pid %d into pod cgroup: %w", pid, err)
		}
	}
	return nil
}

// EnableControllers moves every process in the pod cgroup itself to
// [InitLeaf], on v2 enables the pod's controllers for its children in
// cgroup.subtree_control, and creates the apps declared by [Pod.PlanApp].
// It is idempotent and [Pod.NewApp] calls it.
func (p *Pod) EnableControllers() error {
	for _, d := range p.dirs {
		// Moving can race with a process that forks; repeat until empty.
		for range 100 {
			pids, err := readPids(filepath.Join(d.dir, "cgroup.procs"))
			if err != nil {
				return fmt.Errorf("enable pod cgroup controllers: %w", err)
			}
			if len(pids) == 0 {
				break
			}
			for _, pid := range pids {
				err := writeFile(filepath.Join(d.dir, InitLeaf, "cgroup.procs"), strconv.Itoa(pid))
				if err != nil && !errors.Is(err, unix.ESRCH) {
					return fmt.Errorf("move pid %d to pod init cgroup: %w", pid, err)
				}
			}
		}
	}
	if err := p.version().enable(); err != nil {
		return err
	}
	p.enabled = true
	for len(p.planned) > 0 {
		a := p.planned[0]
		if err := p.makeApp(a.name, a.l); err != nil {
			return err
		}
		p.planned = p.planned[1:]
	}
	return nil
}

// App is the cgroup of one app of a pod (or the pod's init leaf).
type App struct {
	p    *Pod
	name string
}

// Init returns the pod's init leaf, [InitLeaf].
func (p *Pod) Init() *App { return &App{p: p, name: InitLeaf} }

// App returns app name's cgroup without creating it (for example to ask
// [App.OOMKilled] after [Open]).
func (p *Pod) App(name string) (*App, error) {
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("app cgroup name: %w", err)
	}
	return &App{p: p, name: name}, nil
}

// NewApp creates (or reuses) the cgroup of app name below the pod and applies
// l to it.
func (p *Pod) NewApp(name string, l Limits) (*App, error) {
	a, err := p.App(name)
	if err != nil {
		return nil, err
	}
	if err := p.EnableControllers(); err != nil {
		return nil, err
	}
	if err := p.makeApp(name, l); err != nil {
		return nil, err
	}
	return a, nil
}

// PlanApp is [Pod.NewApp] for a pod whose cgroup namespace is still to be
// made (see the package doc): on v2, until [Pod.EnableControllers] it only
// records the app (so that [Pod.Mounts] and [App.JoinFiles] know it) and
// checks that the pod has the controllers l needs; EnableControllers creates
// it and applies l. Creating it at once would enable controllers in the pod's
// cgroup.subtree_control, after which no process can [Pod.Enter] the pod
// cgroup (EBUSY). On v1, or after EnableControllers, it is NewApp.
func (p *Pod) PlanApp(name string, l Limits) (*App, error) {
	v := p.version()
	if !v.defersApps() || p.enabled {
		return p.NewApp(name, l)
	}
	a, err := p.App(name)
	if err != nil {
		return nil, err
	}
	if err := v.checkControllers(l); err != nil {
		return nil, fmt.Errorf("set limits of app %s: %w", name, err)
	}
	if !slices.ContainsFunc(p.planned, func(pa plannedApp) bool { return pa.name == name }) {
		p.planned = append(p.planned, plannedApp{name: name, l: l})
	}
	if !slices.Contains(p.children, name) {
		p.children = append(p.children, name)
	}
	return a, nil
}

// makeApp creates the cgroup of app name, once the pod's controllers are
// enabled, and applies l to it.
func (p *Pod) makeApp(name string, l Limits) error {
	for _, d := range p.dirs {
		dir := filepath.Join(d.dir, name)
		if err := mkdir(dir); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create cgroup of app %s: %w", name, err)
		}
		if err := initCpuset(d.h, dir); err != nil {
			return err
		}
	}
	if !slices.Contains(p.children, name) {
		p.children = append(p.children, name)
	}
	if err := p.version().appMade(name); err != nil {
		return err
	}
	if err := p.setLimits(name, l); err != nil {
		return fmt.Errorf("set limits of app %s: %w", name, err)
	}
	return nil
}

// Name returns the app's name (its cgroup's last element).
func (a *App) Name() string { return a.name }

// AddProc moves process pid (all its threads) into the app's cgroup, in every
// hierarchy on v1.
func (a *App) AddProc(pid int) error {
	for _, d := range a.p.dirs {
		if err := writeFile(filepath.Join(d.dir, a.name, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("move pid %d into cgroup of app %s: %w", pid, a.name, err)
		}
	}
	return nil
}

// OOMKilled reports whether the kernel OOM killer killed a process in the
// app's cgroup (v1 memory.oom_control, v2 memory.events: the oom_kill
// counter). It fails with [ErrNoController] without a memory controller.
func (a *App) OOMKilled() (bool, error) {
	b, file, err := a.p.version().readOOM(a.name)
	if err != nil {
		return false, err
	}
	n, ok := keyedValue(b, "oom_kill")
	if !ok {
		return false, fmt.Errorf("%s has no oom_kill counter (kernel older than 4.13)", file)
	}
	return n > 0, nil
}

// keyedValue returns the value of key in a flat keyed cgroup file ("key value"
// lines).
func keyedValue(b []byte, key string) (uint64, bool) {
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(" "))
		if ok && string(k) == key {
			n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// setLimits applies l to the pod cgroup (sub "") or its child sub.
func (p *Pod) setLimits(sub string, l Limits) error {
	if l.IsZero() {
		return nil
	}
	v := p.version()
	for _, w := range v.limitWrites(l) {
		dir, err := v.controllerDir(w.controller, sub)
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dir, w.file), w.value); err != nil {
			return err
		}
	}
	return nil
}

func maxOr(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

// ErrInsidePod is returned by [Pod.Remove] when the calling process is itself
// in one of the pod's cgroups.
var ErrInsidePod = errors.New("calling process is inside the pod cgroup")

// Remove kills every process in the pod's cgroups, waits for them to leave
// (until ctx is done or 10s have passed) and removes the cgroup directories,
// children first. Cgroups that do not exist count as removed.
func (p *Pod) Remove(ctx context.Context) error {
	self, err := readProcCgroups(0)
	if err != nil {
		return fmt.Errorf("read own cgroups: %w", err)
	}
	for _, d := range p.dirs {
		if s, ok := self[d.h.key()]; ok && (s == d.rel || strings.HasPrefix(s, d.rel+"/")) {
			return fmt.Errorf("remove pod cgroup %s: %w (in %s)", d.rel, ErrInsidePod, s)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, removeTimeout)
	defer cancel()
	if err := p.killAll(ctx); err != nil {
		return fmt.Errorf("remove pod cgroup %s: %w", p.dirs[0].rel, err)
	}
	for _, d := range p.dirs {
		if err := rmdirTree(ctx, d.dir); err != nil {
			return fmt.Errorf("remove pod cgroup %s: %w", d.rel, err)
		}
	}
	p.log.Debug("pod cgroup removed", "cgroup", p.Path())
	return nil
}

// killAll kills the pod's processes until none is left.
func (p *Pod) killAll(ctx context.Context) error {
	killFile := p.version().killFile()
	delay := time.Millisecond
	for {
		procsFiles, err := p.procsFiles()
		if err != nil {
			return err
		}
		var left []int
		for _, f := range procsFiles {
			pids, err := readPids(f)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			left = append(left, pids...)
			if killFile == "" {
				for _, pid := range pids {
					if err := killIn(pid, f); err != nil {
						return err
					}
				}
			}
		}
		if len(left) == 0 {
			return nil
		}
		if killFile != "" {
			if err := writeFile(killFile, "1"); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		p.log.Debug("waiting for pod processes to die", "cgroup", p.dirs[0].rel, "pids", left)
		select {
		case <-ctx.Done():
			slices.Sort(left)
			return fmt.Errorf("processes %v still alive: %w", slices.Compact(left), context.Cause(ctx))
		case <-time.After(delay):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// procsFiles lists the cgroup.procs files of every cgroup of the pod subtree,
// in every hierarchy.
func (p *Pod) procsFiles() ([]string, error) {
	var out []string
	for _, d := range p.dirs {
		dirs, err := subtree(d.dir)
		if err != nil {
			return nil, err
		}
		for _, dir := range dirs {
			out = append(out, filepath.Join(dir, "cgroup.procs"))
		}
	}
	return out, nil
}

// killIn sends SIGKILL to pid if it is still listed in procsFile. The pidfd
// pins the process, so a recycled PID outside the pod is never signalled.
func killIn(pid int, procsFile string) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if errors.Is(err, unix.ENOSYS) {
		// Linux < 5.3: no pidfds; fall back to kill(2).
		if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
			return os.NewSyscallError("kill", err)
		}
		return nil
	}
	if err != nil {
		return os.NewSyscallError("pidfd_open", err)
	}
	defer unix.Close(fd)
	pids, err := readPids(procsFile)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	if !slices.Contains(pids, pid) {
		return nil
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return os.NewSyscallError("pidfd_send_signal", err)
	}
	return nil
}

// subtree returns dir and every cgroup below it, parents before children. A
// missing dir gives nothing.
func subtree(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

// rmdirTree removes the cgroup dir and its children, deepest first, retrying
// EBUSY (a cgroup stays busy for a moment after its last process exits) until
// ctx is done.
func rmdirTree(ctx context.Context, dir string) error {
	delay := time.Millisecond
	for {
		dirs, err := subtree(dir)
		if err != nil {
			return err
		}
		var busy error
		for _, d := range slices.Backward(dirs) {
			err := rmdir(d)
			switch {
			case err == nil, errors.Is(err, fs.ErrNotExist):
			case errors.Is(err, unix.EBUSY):
				busy = err
			default:
				return err
			}
		}
		if busy == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%w)", busy, context.Cause(ctx))
		case <-time.After(delay):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// checkName accepts a single, non-special path element as a cgroup name.
func checkName(name string) error {
	switch {
	case name == "", name == ".", name == "..":
		return fmt.Errorf("invalid name %q", name)
	case strings.ContainsAny(name, "/\n\x00"):
		return fmt.Errorf("invalid name %q: contains '/', newline or NUL", name)
	case len(name) > 255:
		return fmt.Errorf("invalid name %q: longer than 255 bytes", name)
	}
	return nil
}

func writeFile(p, value string) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func readFields(p string) ([]string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(b)), nil
}

func readPids(p string) ([]int, error) {
	fields, err := readFields(p)
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(fields))
	for _, f := range fields {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%s: bad pid %q", p, f)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func mkdir(dir string) error {
	return eintr.Retry(func() error { return os.Mkdir(dir, 0o755) })
}

func rmdir(dir string) error {
	err := eintr.Retry(func() error { return unix.Rmdir(dir) })
	if err != nil {
		return &os.PathError{Op: "rmdir", Path: dir, Err: err}
	}
	return nil
}

// Remove removes the app's cgroup in every hierarchy once its processes are
// gone (an app removed from a running mutable pod), retrying EBUSY until ctx
// is done. A missing cgroup is not an error.
func (a *App) Remove(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for _, d := range a.p.dirs {
		dir := filepath.Join(d.dir, a.name)
		if !exists(dir) {
			continue
		}
		if err := rmdirTree(ctx, dir); err != nil {
			return fmt.Errorf("remove cgroup of app %s: %w", a.name, err)
		}
	}
	a.p.children = slices.DeleteFunc(a.p.children, func(n string) bool { return n == a.name })
	return nil
}
