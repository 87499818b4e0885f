package testutil

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// modulePath is the module whose checkout RepoRoot looks for.
const modulePath = "github.com/rkt-ng/rkt"

var (
	repoOnce sync.Once
	repoDir  string
	repoErr  error
)

// RepoRoot returns the root of the rkt-ng checkout: the first directory at or
// above the working directory (go test runs in the package directory) whose
// go.mod declares the module, or else the one that holds this source file.
func RepoRoot(t testing.TB) string {
	t.Helper()
	repoOnce.Do(func() { repoDir, repoErr = findRepoRoot() })
	if repoErr != nil {
		t.Fatalf("find the rkt-ng checkout: %v", repoErr)
	}
	return repoDir
}

func findRepoRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	for _, d := range starts {
		for {
			b, err := os.ReadFile(filepath.Join(d, "go.mod"))
			if err == nil && isModule(b) {
				return d, nil
			}
			parent := filepath.Dir(d)
			if parent == d {
				break
			}
			d = parent
		}
	}
	return "", fmt.Errorf("no go.mod of module %s above %v", modulePath, starts)
}

func isModule(gomod []byte) bool {
	for _, line := range bytes.Split(gomod, []byte("\n")) {
		f := bytes.Fields(line)
		if len(f) == 2 && string(f[0]) == "module" && string(f[1]) == modulePath {
			return true
		}
	}
	return false
}

// RktBinary returns the rkt binary under test: $RKT, or <repo>/bin/rkt.
func RktBinary(t testing.TB) string {
	t.Helper()
	return builtFile(t, "RKT", "bin/rkt")
}

// Stage1Image returns the stage1 image under test: $RKT_STAGE1, or
// <repo>/bin/stage1-ns.aci.
func Stage1Image(t testing.TB) string {
	t.Helper()
	return builtFile(t, "RKT_STAGE1", "bin/stage1-ns.aci")
}

func builtFile(t testing.TB, env, rel string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		p = filepath.Join(RepoRoot(t), rel)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatalf("%s %s: %v", env, p, err)
	}
	if _, err := os.Stat(abs); err != nil {
		t.Fatalf("%s: %v; run `make` in the repository root, or set %s", rel, err, env)
	}
	return abs
}

var (
	inspectOnce sync.Once
	inspectPath string
	inspectErr  error
)

// BuildInspect returns a static tests/inspect binary: $INSPECT_BINARY if set,
// else one built once per test binary.
func BuildInspect(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("INSPECT_BINARY"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("INSPECT_BINARY: %v", err)
		}
		return p
	}
	root := RepoRoot(t)
	inspectOnce.Do(func() {
		sum := sha256.Sum256([]byte(root))
		inspectPath, inspectErr = goBuild(root, "./tests/inspect", "inspect-"+hex.EncodeToString(sum[:6]))
	})
	if inspectErr != nil {
		t.Fatalf("build tests/inspect: %v", inspectErr)
	}
	return inspectPath
}

// binCache is where built test programs go. They are shared by the test
// binaries of one user: each build goes to a temporary name and is renamed
// into place, so a concurrent reader sees a whole file, and a running copy
// keeps its inode.
func binCache() (string, error) {
	d := filepath.Join(os.TempDir(), "rkt-ng-testbin-"+strconv.Itoa(os.Geteuid()))
	if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	var st unix.Stat_t
	if err := unix.Lstat(d, &st); err != nil {
		return "", &os.PathError{Op: "lstat", Path: d, Err: err}
	}
	// Refuse a directory that someone else made in the shared temp dir.
	if int(st.Uid) != os.Geteuid() || st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Mode&0o022 != 0 {
		return "", fmt.Errorf("%s: not a private directory of uid %d", d, os.Geteuid())
	}
	return d, nil
}

// goTool returns the go command: from PATH, else from the toolchain that
// built the test (sudo often drops PATH entries).
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// goBuild builds a static binary of pkg (relative to dir) into the binary
// cache under name and returns its path.
func goBuild(dir, pkg, name string, extra ...string) (string, error) {
	cache, err := binCache()
	if err != nil {
		return "", err
	}
	out := filepath.Join(cache, name)
	tmp := fmt.Sprintf("%s.tmp-%d", out, os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := append([]string{"build", "-trimpath", "-ldflags=-s -w", "-o", tmp}, extra...)
	cmd := exec.CommandContext(ctx, goTool(), append(args, pkg)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return out, nil
}

// KVMStage1Image returns the KVM stage1 image: $RKT_STAGE1_KVM, or
// <repo>/bin/stage1-kvm.aci.
func KVMStage1Image(t testing.TB) string {
	t.Helper()
	return builtFile(t, "RKT_STAGE1_KVM", "bin/stage1-kvm.aci")
}
