package tests

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// Scenarios where rkt-ng gave wrong results that no error reported.

// A mount with an empty source anywhere on the host (mount -t tmpfs "" /x)
// must not stop pods from starting: mountinfo has an empty field then.
func TestHostMountWithEmptySource(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	dir := filepath.Join(t.TempDir(), "empty-source")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs with an empty source: %v", err)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	aci := inspectACI(t, "rkt-ng.test/emptysrc")
	r := runInsecure(t, c, "--net=host", aci, "--memory=64Mi", "--", "--print-msg=started", "--print-memorylimit")
	wantExit(t, r, 0)
	if got := field(t, r.Stdout, "MEMORY_LIMIT"); got != "67108864" {
		t.Errorf("MEMORY_LIMIT = %s, want 67108864", got)
	}
}
