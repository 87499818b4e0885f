package stage0

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/mountinfo"
	"github.com/rkt-ng/rkt/internal/pausepoint"
	"github.com/rkt-ng/rkt/manifests"
	"github.com/rkt-ng/rkt/pods"
	"github.com/rkt-ng/rkt/stage0/store"
	"github.com/rkt-ng/rkt/stage1"
)

// GCOptions are `rkt gc`'s flags.
type GCOptions struct {
	GracePeriod    time.Duration
	ExpirePrepared time.Duration
	MarkOnly       bool
}

// GC marks pods that have exited or will never run as garbage and, past the
// grace period, sweeps them: the stage1 gc entrypoint releases what the pod
// held on the host, then every mount under the pod is unmounted and the
// directory removed. It never touches a pod that is locked (running,
// preparing, or being collected by another gc), so it is safe to run at any
// time and any number of times. Last, it removes the rendered trees that no
// remaining pod records (see images.Config.CollectTrees), as rkt's gc did.
func (c *Config) GC(ctx context.Context, o GCOptions, out io.Writer) error {
	pd, err := c.Pods()
	if err != nil {
		return err
	}
	list, err := pd.List()
	if err != nil {
		return err
	}
	now := time.Now()
	var errs []error
	for _, p := range list {
		mark := false
		switch p.State() {
		case pods.Exited, pods.AbortedPrepare:
			mark = true
		case pods.Prepared:
			mark = now.Sub(p.MarkedAt()) >= o.ExpirePrepared
		case pods.Embryo:
			// An embryo is only ever unlocked when its creator died.
			mark = now.Sub(p.Created()) >= pods.EmbryoTimeout || now.Sub(p.MarkedAt()) >= pods.EmbryoTimeout
		}
		if !mark {
			continue
		}
		if err := markGarbage(p); err != nil {
			errs = append(errs, fmt.Errorf("gc pod %s: %w", p.UUID, err))
		}
	}
	if o.MarkOnly {
		return errors.Join(errs...)
	}
	if list, err = pd.List(); err != nil {
		return err
	}
	// Marking just now set the ctimes the grace period counts from, and
	// ctime comes from the kernel's coarse clock: an earlier time.Now()
	// can be before them, and then even --grace-period=0s skips the pods.
	now = time.Now()
	for _, p := range list {
		if p.State() != pods.ExitedGarbage && p.State() != pods.Garbage {
			continue
		}
		if now.Sub(p.MarkedAt()) < o.GracePeriod {
			continue
		}
		if err := c.sweep(ctx, p); err != nil {
			errs = append(errs, fmt.Errorf("gc pod %s: %w", p.UUID, err))
			continue
		}
		fmt.Fprintf(out, "Garbage collecting pod %q\n", p.UUID)
	}
	s, err := c.Store()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	if err := c.Images().CollectTrees(ctx, s, io.Discard); err != nil {
		errs = append(errs, fmt.Errorf("gc tree store: %w", err))
	}
	return errors.Join(errs...)
}

// markGarbage moves an unlocked pod to its garbage state under its lock,
// as every transition is made (docs/design.md). A pod that another process
// locked since it was listed (run-prepared, export, another gc) or that
// moved meanwhile is left alone.
func markGarbage(p *pods.Pod) error {
	if err := p.TakeLock(); err != nil {
		if errors.Is(err, pods.ErrLocked) || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	defer p.Close()
	err := p.ToGarbage()
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

func (c *Config) sweep(ctx context.Context, p *pods.Pod) error {
	if err := p.TakeLock(); err != nil {
		if errors.Is(err, pods.ErrLocked) {
			return nil // another gc has it
		}
		return err
	}
	defer p.Close()
	if _, err := os.Stat(p.CleanedPath()); err != nil {
		if err := c.runStage1Entrypoint(ctx, p, entryGC, "--local-config="+c.LocalConfig, p.UUID); err != nil {
			c.logger().Warn("stage1 gc entrypoint failed; removing the pod anyway", "pod", p.UUID, "err", err)
		}
	}
	if err := pausepoint.Reach(ctx, pausepoint.PodSweep); err != nil {
		return err
	}
	if err := mountinfo.UnmountAll(p.Path()); err != nil {
		return err
	}
	return os.RemoveAll(p.Path())
}

type entrypoint int

const (
	entryGC entrypoint = iota
	entryStop
	entryEnter
	entryRun
)

// stage1Entrypoint finds a pod's stage1 entrypoint program on the host. It
// is always the program in the stage1 tree in the store, never the copy in
// the pod's stage1 rootfs: that rootfs is an overlay (or a copy) that the
// pod's own processes run on, so the host must not execute or trust
// anything in it (image gc keeps the trees of existing pods).
func (c *Config) stage1Entrypoint(p *pods.Pod, which entrypoint) (string, error) {
	ep, err := c.stage1Entrypoints(p)
	if err != nil {
		return "", err
	}
	rel := map[entrypoint]string{entryGC: ep.GC, entryStop: ep.Stop, entryEnter: ep.Enter, entryRun: ep.Run}[which]
	if rel == "" {
		return "", nil
	}
	return c.stage1Program(p, rel)
}

func (c *Config) stage1Entrypoints(p *pods.Pod) (stage1.Entrypoints, error) {
	b, err := os.ReadFile(p.Stage1ManifestPath())
	if err != nil {
		return stage1.Entrypoints{}, err
	}
	im, err := manifests.DecodeImage(b)
	if err != nil {
		return stage1.Entrypoints{}, fmt.Errorf("stage1 manifest: %w", err)
	}
	return stage1.EntrypointsOf(im)
}

// stage1Program is the stage1 program rel (an entrypoint annotation) in the
// pod's stage1 tree in the store.
func (c *Config) stage1Program(p *pods.Pod, rel string) (string, error) {
	b, err := os.ReadFile(p.Stage1TreeStoreIDPath())
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(b))
	if !store.ValidTreeID(id) {
		return "", fmt.Errorf("pod %s: invalid stage1 tree ID %q", p.UUID, id)
	}
	rootfs := filepath.Join(c.Dir, "cas", "tree", id, "rootfs")
	path, err := securejoin.SecureJoin(rootfs, rel)
	if err != nil {
		return "", err
	}
	if !fileExists(path) {
		return "", fmt.Errorf("stage1 entrypoint %s: its tree %s is gone from the store", rel, id)
	}
	return path, nil
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// runStage1Entrypoint runs an entrypoint with the pod directory as cwd.
func (c *Config) runStage1Entrypoint(ctx context.Context, p *pods.Pod, which entrypoint, args ...string) error {
	path, err := c.stage1Entrypoint(p, which)
	if err != nil || path == "" {
		return err
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = p.Path()
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.WaitDelay = 10 * time.Second
	return cmd.Run()
}

// Stop asks running pods to stop (SIGTERM to their init) or kills them.
func (c *Config) Stop(ctx context.Context, ref string, force bool) (*pods.Pod, error) {
	p, err := c.pod(ref)
	if err != nil {
		return nil, err
	}
	if p.State() != pods.Running {
		return p, fmt.Errorf("pod %s is not running (%s)", p.UUID, p.State())
	}
	args := []string{p.UUID}
	if force {
		args = []string{"--force", p.UUID}
	}
	return p, c.runStage1Entrypoint(ctx, p, entryStop, args...)
}

// Remove deletes exited or never-run pods now, as gc would after its grace
// period; it refuses running pods.
func (c *Config) Remove(ctx context.Context, ref string) (*pods.Pod, error) {
	p, err := c.pod(ref)
	if err != nil {
		return nil, err
	}
	switch p.State() {
	case pods.Running, pods.Preparing, pods.ExitedDeleting, pods.Deleting:
		return p, fmt.Errorf("pod %s: %w (%s)", p.UUID, pods.ErrRunning, p.State())
	}
	if err := p.TakeLock(); err != nil {
		return p, err
	}
	if err := p.ToGarbage(); err != nil {
		p.Close()
		return p, err
	}
	p.Close()
	return p, c.sweep(ctx, p)
}

// Enter runs cmd inside an app of a running pod through the stage1 enter
// entrypoint, which this process becomes (so the command's exit status is
// rkt's). app may be empty for a pod of one app.
func (c *Config) Enter(ctx context.Context, ref, app string, cmd []string) error {
	p, err := c.pod(ref)
	if err != nil {
		return err
	}
	if p.State() != pods.Running {
		return fmt.Errorf("pod %s is not running (%s)", p.UUID, p.State())
	}
	st := StatusOf(p)
	if app == "" {
		if len(st.Apps) != 1 {
			names := make([]string, 0, len(st.Apps))
			for _, a := range st.Apps {
				names = append(names, a.Name)
			}
			return fmt.Errorf("pod %s has several apps (%s): choose one with --app", p.UUID, strings.Join(names, ", "))
		}
		app = st.Apps[0].Name
	}
	found := false
	for _, a := range st.Apps {
		found = found || a.Name == app
	}
	if !found {
		return fmt.Errorf("pod %s has no app %q", p.UUID, app)
	}
	if len(cmd) == 0 {
		cmd = []string{"/bin/sh"}
	}
	path, err := c.stage1Entrypoint(p, entryEnter)
	if err != nil {
		return err
	}
	if path == "" {
		return fmt.Errorf("pod %s: its stage1 has no enter entrypoint", p.UUID)
	}
	if err := os.Chdir(p.Path()); err != nil {
		return err
	}
	argv := append([]string{path, fmt.Sprintf("--pid=%d", st.PID), "--appname=" + app, "--"}, cmd...)
	err = unix.Exec(path, argv, os.Environ())
	return fmt.Errorf("exec stage1 enter %s: %w", path, err)
}

// Kill sends a signal to the main process of one app, or of every app, of a
// running pod, through its stage1's stop entrypoint.
func (c *Config) Kill(ctx context.Context, ref, app, signal string) error {
	sig, err := ParseSignal(signal)
	if err != nil {
		return err
	}
	p, err := c.pod(ref)
	if err != nil {
		return err
	}
	if p.State() != pods.Running {
		return fmt.Errorf("pod %s is not running (%s)", p.UUID, p.State())
	}
	args := []string{fmt.Sprintf("--signal=%d", sig)}
	if app != "" {
		args = append(args, "--app="+app)
	}
	return c.runStage1Entrypoint(ctx, p, entryStop, append(args, p.UUID)...)
}

// ParseSignal accepts "TERM", "SIGTERM", "sigterm" or a number.
func ParseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}
