package rktgroup

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFixWithoutGroup checks that without the group a directory an older
// rkt (or a removed group) left open is closed again: root:root, 0700, no
// setgid bit. The group case is tests/TestGroupsNonRoot, which creates it.
func TestFixWithoutGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("requires root (uid=%d); run: sudo -E go test ./internal/rktgroup/", os.Geteuid())
	}
	if _, ok := GID(); ok {
		t.Skipf("requires a host without a group named %s", Name)
	}
	dir := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chown(dir, 0, 5); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(dir, 0o2775); err != nil {
		t.Fatal(err)
	}
	for _, shared := range []bool{true, false} {
		if err := Fix(dir, 0o700, shared); err != nil {
			t.Fatalf("Fix(shared=%v): %v", shared, err)
		}
		var st unix.Stat_t
		if err := unix.Stat(dir, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&0o7777 != 0o700 || st.Uid != 0 || st.Gid != 0 {
			t.Errorf("Fix(shared=%v): mode %o owner %d:%d, want 700 0:0", shared, st.Mode&0o7777, st.Uid, st.Gid)
		}
	}
	f := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Fix(f, 0o700, true); err == nil {
		t.Errorf("Fix of a regular file succeeded")
	}
}
