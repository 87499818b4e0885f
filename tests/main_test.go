package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// inspectACI builds an unsigned ACI holding the inspect program.
func inspectACI(t *testing.T, name string, opts ...testutil.ACIOption) string {
	t.Helper()
	return testutil.NewACI(t, name, append([]testutil.ACIOption{testutil.WithInspect()}, opts...)...)
}

// runInsecure runs an unsigned image; most functional tests are not about
// signatures, as in rkt's suite.
func runInsecure(t *testing.T, c *testutil.Ctx, args ...string) testutil.Result {
	t.Helper()
	return c.Run(t, append([]string{"--insecure-options=image", "run"}, args...)...)
}

// wantExit fails the test unless r exited with code.
func wantExit(t *testing.T, r testutil.Result, code int) {
	t.Helper()
	if r.ExitCode != code {
		t.Fatalf("exit code %d, want %d\n%s", r.ExitCode, code, r)
	}
}

// oneLineError checks rkt's error contract: a single "rkt: ..." line on
// stderr mentioning every word of want.
func oneLineError(t *testing.T, r testutil.Result, want ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "rkt: ") {
		t.Errorf("last stderr line %q does not start with \"rkt: \"\n%s", last, r)
	}
	for _, w := range want {
		if !strings.Contains(last, w) {
			t.Errorf("error %q does not mention %q", last, w)
		}
	}
}

// storeEmpty checks that no image, blob, tree or temporary file is in the store.
func storeEmpty(t *testing.T, c *testutil.Ctx) {
	t.Helper()
	for _, d := range []string{"cas/blob/sha512", "cas/images", "cas/tmp", "cas/tree", "cas/manifest"} {
		ents, _ := os.ReadDir(filepath.Join(c.DataDir, d))
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		if len(names) > 0 {
			t.Errorf("store not empty: %s holds %v", d, names)
		}
	}
}

// podDirs lists every pod directory in every state.
func podDirs(t *testing.T, c *testutil.Ctx) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(c.DataDir, "pods", "*", "*"))
	var out []string
	for _, p := range m {
		if !strings.HasPrefix(filepath.Base(p), ".") {
			out = append(out, p)
		}
	}
	return out
}
