package stage0

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/untrusted"
	"github.com/rkt-ng/rkt/pods"
	"github.com/rkt-ng/rkt/stage1"
)

// EnterCmd returns, unstarted, the command that runs cmd inside a running
// app of a running pod with exactly that app's confinement, through the
// pod's stage1 enter entrypoint: what `rkt enter` execs, for callers that run
// it as a child (the CRI server's exec). The caller sets its Stdin, Stdout
// and Stderr. Its exit status is the command's; a failure of the stage1
// itself exits 254 with a "rkt: ..." line on stderr. When its stdin is a
// terminal, the entrypoint relays it through a pseudo-terminal of its own
// and copies its size on SIGWINCH. Cancelling ctx sends it SIGTERM; the pod
// then kills the command (its client went away).
func (c *Config) EnterCmd(ctx context.Context, ref, app string, cmd []string) (*exec.Cmd, error) {
	if len(cmd) == 0 {
		return nil, fmt.Errorf("enter: no command given")
	}
	p, err := c.pod(ref)
	if err != nil {
		return nil, err
	}
	if p.State() != pods.Running {
		return nil, fmt.Errorf("pod %s: %w: %s, want running", p.UUID, pods.ErrBadState, p.State())
	}
	st := StatusOf(p)
	found := false
	for _, a := range st.Apps {
		found = found || a.Name == app
	}
	if !found {
		return nil, fmt.Errorf("pod %s: app %s: %w", p.UUID, app, ErrNoApp)
	}
	if r := p.AppRecord(app); r.Started.IsZero() || !r.Finished.IsZero() {
		return nil, fmt.Errorf("pod %s: app %s: %w", p.UUID, app, ErrAppNotRunning)
	}
	path, err := c.stage1Entrypoint(p, entryEnter)
	if err != nil {
		return nil, err
	}
	if path == "" {
		return nil, fmt.Errorf("pod %s: its stage1 has no enter entrypoint", p.UUID)
	}
	argv := append([]string{fmt.Sprintf("--pid=%d", st.PID), "--appname=" + app, "--"}, cmd...)
	ec := exec.CommandContext(ctx, path, argv...)
	ec.Dir = p.Path()
	ec.Cancel = func() error { return ec.Process.Signal(unix.SIGTERM) }
	ec.WaitDelay = 5 * time.Second
	return ec, nil
}

// ErrAppNotRunning means an app exists but does not run (never started, or
// exited).
var ErrAppNotRunning = errors.New("app is not running")

// PodNetNS returns the network namespace file of a running pod, for work
// inside it from the host (the CRI server's port forward), or "" for a pod
// on the host's network.
func (c *Config) PodNetNS(ref string) (string, error) {
	p, err := c.pod(ref)
	if err != nil {
		return "", err
	}
	if p.State() != pods.Running {
		return "", fmt.Errorf("pod %s: %w: %s, want running", p.UUID, pods.ErrBadState, p.State())
	}
	b, err := untrusted.ReadFile(p.NetNSPath(), 4096)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("pod %s: netns: %w", p.UUID, err)
	}
	path := strings.TrimSpace(string(b))
	var st unix.Statfs_t
	if !filepath.IsAbs(path) || unix.Statfs(path, &st) != nil || st.Type != unix.NSFS_MAGIC {
		return "", fmt.Errorf("pod %s: netns %q is not a network namespace file", p.UUID, path)
	}
	return path, nil
}

// ErrNotAttachable means an app's output and stdin cannot be reached after
// it started: it was added without AppSpec.Stdin or a CRI log.
var ErrNotAttachable = errors.New("app cannot be attached to")

// AttachCmd returns, unstarted, the command that attaches to a running app
// of a sandbox through the stage1's app/attach entrypoint: its stdout and
// stderr get the app's output from then on, and with stdin its stdin goes
// to the app's (an app added with AppSpec.Stdin; for another app it is
// dropped). Only apps added with AppSpec.Stdin, AppSpec.TTY or a CRI log
// can be attached to (ErrNotAttachable otherwise). With tty (the app's
// AppSpec.TTY, required to match), the caller gives the command fd 3
// (ExtraFiles[0]), on which it writes "ROWS COLS\n" for each size of the
// client's terminal. It exits with the app's
// exit status when the app exits; killing it detaches. The app's logs are
// written as before. It does not take the pod's apps lock.
func (c *Config) AttachCmd(ctx context.Context, ref, app string, stdin, tty bool) (*exec.Cmd, error) {
	p, err := c.pod(ref)
	if err != nil {
		return nil, err
	}
	if p.State() != pods.Running {
		return nil, fmt.Errorf("pod %s: %w: %s, want running", p.UUID, pods.ErrBadState, p.State())
	}
	if r := p.AppRecord(app); r.Started.IsZero() || !r.Finished.IsZero() {
		return nil, fmt.Errorf("pod %s: app %s: %w", p.UUID, app, ErrAppNotRunning)
	}
	ep, err := c.stage1Entrypoints(p)
	if err != nil {
		return nil, err
	}
	if ep.AppAttach == "" {
		return nil, fmt.Errorf("pod %s: its stage1 cannot attach to apps (annotation %s missing)", p.UUID, stage1.AnnotationAppAttach)
	}
	opts, err := stage1.ReadOptions(p.OptionsPath())
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", p.UUID, err)
	}
	ao := opts.Apps[app]
	if !ao.Stdin && !ao.TTY && ao.CRILogPath == "" {
		return nil, fmt.Errorf("pod %s: app %s: %w: it was added without stdin, a terminal or a CRI log", p.UUID, app, ErrNotAttachable)
	}
	if tty != ao.TTY {
		return nil, fmt.Errorf("pod %s: app %s: %w: attach with tty=%v to an app with tty=%v", p.UUID, app, ErrNotAttachable, tty, ao.TTY)
	}
	// An attach's stdin to an app without one is dropped, as other
	// runtimes do.
	stdin = stdin && (ao.Stdin || ao.TTY)
	path, err := c.stage1Program(p, ep.AppAttach)
	if err != nil {
		return nil, err
	}
	ac := exec.CommandContext(ctx, path, stage1.AppArgs{App: app, Stdin: stdin, TTY: tty, UUID: p.UUID, Debug: c.Debug}.Argv()...)
	ac.Dir = p.Path()
	ac.Cancel = func() error { return ac.Process.Signal(unix.SIGTERM) }
	ac.WaitDelay = 5 * time.Second
	return ac, nil
}
