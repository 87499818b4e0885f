package agent

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestMirrorOnce(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "status"), 0o755))
	must(os.WriteFile(filepath.Join(src, "status", "app"), []byte("7"), 0o644))
	must(os.Symlink("ready", filepath.Join(src, "supervisor-status")))
	l, err := net.Listen("unix", filepath.Join(src, "stage2.sock"))
	must(err)
	defer l.Close()
	seen := map[string]fileState{}
	mirrorOnce(src, dst, seen)
	if b, err := os.ReadFile(filepath.Join(dst, "status", "app")); err != nil || string(b) != "7" {
		t.Errorf("status/app in the copy: %q, %v", b, err)
	}
	if target, err := os.Readlink(filepath.Join(dst, "supervisor-status")); err != nil || target != "ready" {
		t.Errorf("supervisor-status in the copy: %q, %v", target, err)
	}
	if _, err := os.Lstat(filepath.Join(dst, "stage2.sock")); err == nil {
		t.Errorf("the socket was copied")
	}
	// A changed file is copied again; the copy never follows a symlink the
	// destination holds.
	must(os.WriteFile(filepath.Join(src, "status", "app"), []byte("42"), 0o644))
	future := time.Now().Add(time.Hour)
	must(os.Chtimes(filepath.Join(src, "status", "app"), future, future))
	outside := filepath.Join(t.TempDir(), "outside")
	must(os.WriteFile(outside, []byte("host file"), 0o644))
	must(os.WriteFile(filepath.Join(src, "log"), []byte("line\n"), 0o644))
	must(os.Symlink(outside, filepath.Join(dst, "log")))
	mirrorOnce(src, dst, seen)
	if b, _ := os.ReadFile(filepath.Join(dst, "status", "app")); string(b) != "42" {
		t.Errorf("changed status/app in the copy: %q, want 42", b)
	}
	if b, _ := os.ReadFile(outside); string(b) != "host file" {
		t.Errorf("the copy wrote through a symlink: %q", b)
	}
}
