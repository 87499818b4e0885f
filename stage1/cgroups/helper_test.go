package cgroups

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary re-executes itself as a helper when helperEnv is set: the
// helper creates namespaces through SysProcAttr (never unshare in a running Go
// process) and applies a mount plan there.
const helperEnv = "RKT_CGROUPS_TEST_HELPER"

// helperConfig is passed to the helper as JSON in helperEnv.
type helperConfig struct {
	// Mode is "apply" (apply Mounts under Root, then run Checks) or "spawn"
	// (wait for a line on stdin, then run an "apply" helper in new mount and
	// cgroup namespaces, so the namespace is rooted at the spawner's
	// cgroup).
	Mode   string
	Root   string
	Mounts []MountSpec
	// WaitStdin makes "apply" print "ready" and wait for a line on stdin
	// before mounting: a JSON array there replaces Mounts.
	WaitStdin bool
	Checks    []helperCheck
}

type helperCheck struct {
	Op    string // "mkdir" (then rmdir), "write", "read", "ls" (directories)
	Path  string
	Value string
}

func TestMain(m *testing.M) {
	if cfg := os.Getenv(helperEnv); cfg != "" {
		if err := runHelper(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runHelper(js string) error {
	var c helperConfig
	if err := json.Unmarshal([]byte(js), &c); err != nil {
		return err
	}
	in := bufio.NewReader(os.Stdin)
	switch c.Mode {
	case "spawn":
		if _, err := in.ReadString('\n'); err != nil {
			return err
		}
		c.Mode = "apply"
		b, err := json.Marshal(c)
		if err != nil {
			return err
		}
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), helperEnv+"="+string(b))
		// in has not read past the first line: stdin is unbuffered here.
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		cmd.SysProcAttr = &unix.SysProcAttr{Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP}
		return cmd.Run()
	case "apply":
		// Keep every mount below in this namespace.
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			return fmt.Errorf("make / private: %w", err)
		}
		if c.WaitStdin {
			fmt.Println("ready")
			line, err := in.ReadString('\n')
			if err != nil {
				return err
			}
			if strings.HasPrefix(line, "[") {
				if err := json.Unmarshal([]byte(line), &c.Mounts); err != nil {
					return err
				}
			}
		}
		for _, m := range c.Mounts {
			target := filepath.Join(c.Root, m.Target)
			src := m.Source
			if m.Flags&unix.MS_BIND != 0 && m.Flags&unix.MS_REMOUNT == 0 {
				src = filepath.Join(c.Root, m.Source)
			}
			if m.Flags&unix.MS_REMOUNT == 0 {
				if err := os.MkdirAll(target, 0o755); err != nil {
					return err
				}
			}
			if err := unix.Mount(src, target, m.FSType, m.Flags, m.Data); err != nil {
				return fmt.Errorf("mount %+v: %w", m, err)
			}
		}
		res := make([]string, len(c.Checks))
		for i, ch := range c.Checks {
			res[i] = runCheck(ch)
		}
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	return fmt.Errorf("unknown helper mode %q", c.Mode)
}

// runCheck returns "ok", the content read or listed, or the errno name.
func runCheck(ch helperCheck) string {
	var err error
	switch ch.Op {
	case "mkdir":
		if err = os.Mkdir(ch.Path, 0o755); err == nil {
			err = unix.Rmdir(ch.Path)
		}
	case "write":
		err = os.WriteFile(ch.Path, []byte(ch.Value), 0)
	case "read":
		var b []byte
		if b, err = os.ReadFile(ch.Path); err == nil {
			return strings.TrimSpace(string(b))
		}
	case "ls":
		var es []os.DirEntry
		if es, err = os.ReadDir(ch.Path); err == nil {
			var names []string
			for _, e := range es {
				if e.IsDir() {
					names = append(names, e.Name())
				}
			}
			slices.Sort(names)
			return strings.Join(names, " ")
		}
	default:
		return "unknown op " + ch.Op
	}
	if err == nil {
		return "ok"
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	return err.Error()
}

// startHelper starts the helper with cfg; the returned writer is its stdin and
// the reader its stdout.
func startHelper(t *testing.T, cfg helperConfig, attr *unix.SysProcAttr) (*exec.Cmd, io.WriteCloser, *bufio.Reader) {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+string(b))
	cmd.SysProcAttr = attr
	cmd.Stderr = &testWriter{t: t}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, stdin, bufio.NewReader(stdout)
}

func readResults(t *testing.T, r *bufio.Reader) []string {
	t.Helper()
	var res []string
	if err := json.NewDecoder(r).Decode(&res); err != nil {
		t.Fatalf("read helper results: %v", err)
	}
	return res
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(b []byte) (int, error) {
	w.t.Logf("helper stderr: %s", strings.TrimSpace(string(b)))
	return len(b), nil
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("requires root (uid=%d); run: sudo -E go test ./stage1/cgroups/", os.Geteuid())
	}
}

func uniqueName(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "test-" + hex.EncodeToString(b)
}

// waited is a started child reaped in the background.
type waited struct {
	done chan struct{} // closed once err is set
	err  error
}

// startWaited starts cmd and reaps it in the background; cleanup kills it.
func startWaited(t *testing.T, cmd *exec.Cmd) *waited {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	w := &waited{done: make(chan struct{})}
	go func() {
		w.err = cmd.Wait()
		close(w.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-w.done
	})
	return w
}

// waitExit returns the child's Wait error.
func waitExit(t *testing.T, w *waited) error {
	t.Helper()
	select {
	case <-w.done:
		return w.err
	case <-time.After(30 * time.Second):
		t.Fatal("child did not exit within 30s")
	}
	return nil
}

// killedBy reports whether err is the exit of a process killed by sig.
func killedBy(err error, sig unix.Signal) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	// os/exec exposes the status only as a syscall.WaitStatus.
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && unix.Signal(ws.Signal()) == sig
}

func removeOnCleanup(t *testing.T, p *Pod) {
	t.Helper()
	t.Cleanup(func() {
		if err := p.Remove(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

func readTrim(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func waitABit() { time.Sleep(10 * time.Millisecond) }
