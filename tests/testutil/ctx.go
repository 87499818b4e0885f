package testutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultTimeout bounds one Run of a Ctx unless Ctx.Timeout says otherwise.
const DefaultTimeout = 5 * time.Minute

// Ctx runs bin/rkt with its own data and config directories, as rkt's
// testutils.RktRunCtx: --dir, --local-config, --system-config and
// --user-config all point into one temporary directory of the test.
type Ctx struct {
	Rkt          string // the rkt binary
	DataDir      string // --dir
	LocalConfig  string // --local-config
	SystemConfig string // --system-config
	UserConfig   string // --user-config
	// Timeout bounds each Run and MustRun; zero means DefaultTimeout.
	Timeout time.Duration
	// Env is added to rkt's environment (the test's own) for every command,
	// as "KEY=value" (for example a pause point, see PausePoint).
	Env []string

	root string
}

// NewCtx makes fresh directories and registers a cleanup that runs
// `rkt gc --grace-period=0s` with the same flags and then reports, as test
// errors, any mount still present under the directories (and detaches it, so
// that removing the temporary directory cannot reach through it).
func NewCtx(t testing.TB) *Ctx {
	t.Helper()
	rkt := RktBinary(t)
	root := t.TempDir()
	c := &Ctx{
		Rkt:          rkt,
		DataDir:      filepath.Join(root, "data"),
		LocalConfig:  filepath.Join(root, "local"),
		SystemConfig: filepath.Join(root, "system"),
		UserConfig:   filepath.Join(root, "user"),
		root:         root,
	}
	// The data dir is private (0700), as rkt recommends for /var/lib/rkt:
	// apps that run as other users, or in a user namespace of their own,
	// reach their rootfs inside the pod, never through this path. Config
	// dirs are readable like /etc/rkt.
	for _, d := range []string{root, c.DataDir, c.LocalConfig, c.SystemConfig, c.UserConfig} {
		mode := os.FileMode(0o755)
		if d == c.DataDir {
			mode = 0o700
		}
		if err := os.MkdirAll(d, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
	}
	// Registered after t.TempDir's removal, so it runs before it.
	t.Cleanup(func() { c.cleanup(t) })
	return c
}

// Args returns the global flags followed by args.
func (c *Ctx) Args(args ...string) []string {
	return append([]string{
		"--dir=" + c.DataDir,
		"--local-config=" + c.LocalConfig,
		"--system-config=" + c.SystemConfig,
		"--user-config=" + c.UserConfig,
	}, args...)
}

// Cmd returns a command running rkt with the global flags and args.
func (c *Ctx) Cmd(args ...string) *exec.Cmd {
	cmd := exec.Command(c.Rkt, c.Args(args...)...)
	c.setEnv(cmd)
	return cmd
}

func (c *Ctx) setEnv(cmd *exec.Cmd) {
	if len(c.Env) > 0 {
		cmd.Env = append(os.Environ(), c.Env...)
	}
}

// CmdContext is Cmd bound to ctx: when ctx ends, rkt gets SIGTERM, and
// SIGKILL 10 seconds later.
func (c *Ctx) CmdContext(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.Rkt, c.Args(args...)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(unix.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	c.setEnv(cmd)
	return cmd
}

// Result is the outcome of one rkt command.
type Result struct {
	Stdout, Stderr string
	// ExitCode is the exit status, or -1 when rkt was killed by a signal.
	ExitCode int
	// MaxRSS is the largest resident set, in KiB, of rkt (which a run
	// execs into the stage1) and of the children it waited for
	// (getrusage(2), ru_maxrss); 0 if unknown.
	MaxRSS int64
}

func (r Result) String() string {
	return fmt.Sprintf("exit code %d\n--- stdout:\n%s\n--- stderr:\n%s", r.ExitCode, r.Stdout, r.Stderr)
}

// Run runs rkt with args and returns its output and exit code. A command that
// cannot start ends the test; one that outlives the timeout is killed and
// reported as a test error.
func (c *Ctx) Run(t testing.TB, args ...string) Result {
	t.Helper()
	return c.run(t, t.Context(), args...)
}

// MustRun is Run, ending the test unless rkt exits 0.
func (c *Ctx) MustRun(t testing.TB, args ...string) Result {
	t.Helper()
	res := c.Run(t, args...)
	if res.ExitCode != 0 {
		t.Fatalf("rkt %s: %s", quoteArgs(args), res)
	}
	return res
}

func (c *Ctx) run(t testing.TB, parent context.Context, args ...string) Result {
	t.Helper()
	timeout := c.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	cmd := c.CmdContext(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t.Logf("run: rkt %s", quoteArgs(args))
	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: -1}
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			res.MaxRSS = ru.Maxrss
		}
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) && cmd.ProcessState == nil {
		t.Fatalf("run rkt %s: %v", quoteArgs(args), err)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Errorf("rkt %s: killed after %v: %s", quoteArgs(args), timeout, res)
	}
	return res
}

// Process is rkt running in the background.
type Process struct {
	Cmd *exec.Cmd

	stdout, stderr syncBuffer
	done           chan struct{} // closed when Cmd.Wait returned
}

// Start starts rkt with args in the background. When the test ends, rkt gets
// SIGTERM (SIGKILL 10 seconds later) and is waited for before the Ctx's own
// cleanup runs.
func (c *Ctx) Start(t testing.TB, args ...string) *Process {
	t.Helper()
	p := &Process{Cmd: c.CmdContext(t.Context(), args...), done: make(chan struct{})}
	p.Cmd.Stdout, p.Cmd.Stderr = &p.stdout, &p.stderr
	t.Logf("start: rkt %s", quoteArgs(args))
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start rkt %s: %v", quoteArgs(args), err)
	}
	go func() {
		// The exit status is in Cmd.ProcessState; other errors of Wait
		// (an output copy failing) leave nothing to report.
		_ = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { <-p.done })
	return p
}

// Pid is the PID of the rkt process.
func (p *Process) Pid() int { return p.Cmd.Process.Pid }

// Stdout returns what rkt printed on stdout so far.
func (p *Process) Stdout() string { return p.stdout.String() }

// Stderr returns what rkt printed on stderr so far.
func (p *Process) Stderr() string { return p.stderr.String() }

// Signal sends sig to rkt.
func (p *Process) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

// Exited reports whether rkt has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// WaitOutput waits until rkt's stdout or stderr contains s, and ends the test
// if rkt exits first or timeout passes.
func (p *Process) WaitOutput(t testing.TB, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if strings.Contains(p.Stdout(), s) || strings.Contains(p.Stderr(), s) {
			return
		}
		select {
		case <-p.done:
			if strings.Contains(p.Stdout(), s) || strings.Contains(p.Stderr(), s) {
				return
			}
			t.Fatalf("rkt exited before printing %q: %s", s, p.result())
		case <-deadline.C:
			t.Fatalf("rkt did not print %q within %v\n--- stdout:\n%s\n--- stderr:\n%s", s, timeout, p.Stdout(), p.Stderr())
		case <-tick.C:
		}
	}
}

// Wait waits for rkt to exit and returns its result; it ends the test if that
// takes longer than timeout.
func (p *Process) Wait(t testing.TB, timeout time.Duration) Result {
	t.Helper()
	select {
	case <-p.done:
		return p.result()
	case <-time.After(timeout):
		t.Fatalf("rkt did not exit within %v\n--- stdout:\n%s\n--- stderr:\n%s", timeout, p.Stdout(), p.Stderr())
		return Result{}
	}
}

// result must only be called after done is closed.
func (p *Process) result() Result {
	res := Result{Stdout: p.Stdout(), Stderr: p.Stderr(), ExitCode: -1}
	if p.Cmd.ProcessState != nil {
		res.ExitCode = p.Cmd.ProcessState.ExitCode()
	}
	return res
}

// syncBuffer is a bytes.Buffer that a Process's output copier writes while
// the test reads it.
type syncBuffer struct {
	// mu guards b.
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (c *Ctx) cleanup(t testing.TB) {
	t.Helper()
	report := t.Errorf
	if t.Skipped() {
		report = t.Logf
	}
	// t.Context is already cancelled when cleanups run.
	res := c.run(t, context.Background(), "gc", "--grace-period=0s", "--expire-prepared=0s")
	if res.ExitCode != 0 {
		report("cleanup: rkt gc --grace-period=0s: %s", res)
	}
	leaks, err := mountsUnder(c.root)
	if err != nil {
		report("cleanup: %v", err)
		return
	}
	for _, m := range leaks {
		report("cleanup: mount leaked after gc: %s", m)
	}
	// Deepest first, so no removal below can reach into a mount.
	for _, m := range slices.Backward(leaks) {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			t.Errorf("cleanup: detach leaked mount %s: %v", m, err)
		}
	}
}

// mountsUnder lists the mount points at or below dir in this process's
// mount namespace, parents before children.
func mountsUnder(dir string) ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	roots := []string{filepath.Clean(dir)}
	if r, err := filepath.EvalSymlinks(dir); err == nil && r != roots[0] {
		roots = append(roots, r)
	}
	var out []string
	for _, mp := range parseMountPoints(string(b)) {
		for _, r := range roots {
			if mp == r || strings.HasPrefix(mp, r+"/") {
				out = append(out, mp)
				break
			}
		}
	}
	return out, nil
}

// parseMountPoints returns the unescaped mount point (field 5) of every line
// of a mountinfo file (proc(5)), in file order, which lists a parent mount
// before the mounts on top of it.
func parseMountPoints(mountinfo string) []string {
	var out []string
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		out = append(out, unescapeOctal(f[4]))
	}
	return out
}

// unescapeOctal undoes the kernel's \ooo escapes (space, tab, newline,
// backslash) in mountinfo paths.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`") {
			a = strconv.Quote(a)
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
