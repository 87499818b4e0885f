package seccomp

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/stage2/caps"
)

// helperEnv makes the test binary a helper that installs a filter and execs a
// command: the only way to test a filter, which can never be removed.
const helperEnv = "RKTNG_SECCOMP_TEST_HELPER"

type helperConfig struct {
	Mode  Mode
	Names []string
	Errno string
	// NNP sets no_new_privs and drops to UID 65534 (no capabilities) before
	// Install; otherwise Install runs as root with CAP_SYS_ADMIN.
	NNP bool
	// DropOnly drops to UID 65534 without no_new_privs, which must make
	// Install fail.
	DropOnly bool
	// ApplyUID, if set, calls caps.Apply(CAP_NET_BIND_SERVICE, ApplyUID)
	// after Install: the order the package documentation recommends.
	ApplyUID int
	Argv     []string
}

func TestMain(m *testing.M) {
	if cfg := os.Getenv(helperEnv); cfg != "" {
		if err := helper(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
		}
		os.Exit(254)
	}
	os.Exit(m.Run())
}

// helper follows the call order of the package documentation and returns
// only on failure.
func helper(cfg string) error {
	// Filters and no_new_privs are per thread until TSYNC; the exec must
	// happen on this thread, which is deliberately never unlocked.
	runtime.LockOSThread()
	var c helperConfig
	if err := json.Unmarshal([]byte(cfg), &c); err != nil {
		return err
	}
	// A SIGSYS kill would otherwise dump core.
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return err
	}
	f, err := Build(c.Mode, c.Names, c.Errno)
	if err != nil {
		return err
	}
	if c.NNP {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return err
		}
	}
	if c.NNP || c.DropOnly {
		if err := unix.Setgroups(nil); err != nil {
			return err
		}
		if err := unix.Setresgid(65534, 65534, 65534); err != nil {
			return err
		}
		if err := unix.Setresuid(65534, 65534, 65534); err != nil {
			return err
		}
	}
	if c.ApplyUID != 0 {
		// Step 2 of the documented order: before Install.
		if err := unix.Setresgid(c.ApplyUID, c.ApplyUID, c.ApplyUID); err != nil {
			return err
		}
	}
	if err := f.Install(); err != nil {
		return err
	}
	if c.ApplyUID != 0 {
		if err := caps.Apply(caps.NewSet(unix.CAP_NET_BIND_SERVICE), caps.NewSet(unix.CAP_NET_BIND_SERVICE), c.ApplyUID); err != nil {
			return err
		}
	}
	return unix.Exec(c.Argv[0], c.Argv, os.Environ())
}

type result struct {
	stdout, stderr string
	status         unix.WaitStatus
}

func runHelper(t *testing.T, c helperConfig) result {
	t.Helper()
	if _, err := os.Stat(c.Argv[0]); err != nil {
		t.Skipf("requires %s: %v", c.Argv[0], err)
	}
	cfg, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+string(cfg), "LC_ALL=C")
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run helper: %v", err)
	}
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	// os.ProcessState.Sys is a syscall.WaitStatus; both are the raw wait
	// status, so the conversion keeps this file on x/sys/unix.
	r.status = unix.WaitStatus(reflect.ValueOf(cmd.ProcessState.Sys()).Uint())
	return r
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("requires root (uid=%d); run: sudo -E go test ./stage2/seccomp", os.Geteuid())
	}
}

func (r result) String() string {
	return fmt.Sprintf("status %#x, stdout %q, stderr %q", int(r.status), r.stdout, r.stderr)
}

func TestInstallRemoveErrno(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "x")
	r := runHelper(t, helperConfig{Mode: Remove, Names: []string{"mkdir", "mkdirat"}, Errno: "EPERM",
		Argv: []string{"/bin/mkdir", dir}})
	if !r.status.Exited() || r.status.ExitStatus() != 1 || !strings.Contains(r.stderr, "Operation not permitted") {
		t.Errorf("mkdir under remove [mkdir mkdirat] errno EPERM: %v; want exit 1, Operation not permitted", r)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s was created (stat: %v)", dir, err)
	}
}

func TestInstallRemoveKill(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "x")
	r := runHelper(t, helperConfig{Mode: Remove, Names: []string{"mkdir", "mkdirat"},
		Argv: []string{"/bin/mkdir", dir}})
	if !r.status.Signaled() || r.status.Signal() != unix.SIGSYS {
		t.Errorf("mkdir under remove [mkdir mkdirat]: %v; want killed by SIGSYS", r)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s was created (stat: %v)", dir, err)
	}
}

// The default profile must run ordinary programs, including a shell that
// forks a pipeline, under the SIGSYS action.
func TestInstallRetainDefault(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	for _, argv := range [][]string{
		{"/bin/true"},
		{"/bin/ls", "-la", "/"},
		{"/bin/sh", "-c", "ls -l /proc/self/ | head -n 3 && cat /proc/self/status | grep -q Seccomp:.2"},
	} {
		for _, g := range []string{GroupRktWhitelist, GroupDockerWhitelist} {
			r := runHelper(t, helperConfig{Mode: Retain, Names: []string{g}, Argv: argv})
			if !r.status.Exited() || r.status.ExitStatus() != 0 {
				t.Errorf("%q under retain %s: %v; want exit 0", argv, g, r)
			}
		}
	}
}

func TestInstallRetainTiny(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	r := runHelper(t, helperConfig{Mode: Retain, Names: []string{"getpid"}, Argv: []string{"/bin/true"}})
	if !r.status.Signaled() || r.status.Signal() != unix.SIGSYS {
		t.Errorf("/bin/true under retain [getpid]: %v; want killed by SIGSYS", r)
	}
	// With an errno the exec'd ld.so gets far enough to exit 127 when it
	// cannot open libc, which shows the helper reached the exec with the
	// filter installed.
	r = runHelper(t, helperConfig{Mode: Retain, Names: []string{"getpid"}, Errno: "EPERM", Argv: []string{"/bin/true"}})
	if !r.status.Exited() || r.status.ExitStatus() != 127 {
		t.Errorf("/bin/true under retain [getpid] errno EPERM: %v; want exit 127 from ld.so", r)
	}
}

// With no_new_privs, an unprivileged process can install the filter.
func TestInstallNoNewPrivs(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "x")
	r := runHelper(t, helperConfig{Mode: Remove, Names: []string{"mkdir", "mkdirat"}, Errno: "EPERM", NNP: true,
		Argv: []string{"/bin/mkdir", target}})
	if !r.status.Exited() || r.status.ExitStatus() != 1 || !strings.Contains(r.stderr, "Operation not permitted") {
		t.Errorf("mkdir as uid 65534 with no_new_privs under remove mkdir: %v; want exit 1, Operation not permitted", r)
	}
	// Control: the same helper without the syscall removed can create it.
	r = runHelper(t, helperConfig{Mode: Remove, Names: []string{"rmdir"}, Errno: "EPERM", NNP: true,
		Argv: []string{"/bin/mkdir", target}})
	if !r.status.Exited() || r.status.ExitStatus() != 0 {
		t.Errorf("mkdir as uid 65534 with no_new_privs under remove rmdir: %v; want exit 0", r)
	}
}

// Without CAP_SYS_ADMIN and without no_new_privs the kernel refuses.
func TestInstallUnprivileged(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	r := runHelper(t, helperConfig{Mode: Remove, Names: []string{"mkdir"}, DropOnly: true, Argv: []string{"/bin/true"}})
	if r.status.ExitStatus() != 254 || !strings.Contains(r.stderr, "needs CAP_SYS_ADMIN or no_new_privs") ||
		!strings.Contains(r.stderr, "permission denied") {
		t.Errorf("Install as uid 65534: %v; want exit 254 with EACCES", r)
	}
}

// The recommended order: Install as root, then caps.Apply, which the filter
// must let through even when the set does not name its syscalls.
func TestInstallThenApplyCaps(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	r := runHelper(t, helperConfig{Mode: Retain, Names: []string{GroupRktWhitelist}, ApplyUID: 1000,
		Argv: []string{"/bin/cat", "/proc/self/status"}})
	for _, want := range []string{"Seccomp:\t2\n", "Uid:\t1000\t1000\t1000\t1000\n", "CapEff:\t0000000000000400\n", "CapAmb:\t0000000000000400\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status after Install then caps.Apply lacks %q: %v", want, r)
		}
	}
	// A set without prctl, capset and setresuid: the helper still reaches
	// the exec, and ld.so exits 127 when it cannot open libc (its message
	// is lost: writev is blocked too).
	r = runHelper(t, helperConfig{Mode: Retain, Names: []string{"getpid"}, Errno: "EPERM", ApplyUID: 1000,
		Argv: []string{"/bin/true"}})
	if !r.status.Exited() || r.status.ExitStatus() != 127 {
		t.Errorf("/bin/true under retain [getpid] after caps.Apply: %v; want exit 127 from ld.so", r)
	}
}
