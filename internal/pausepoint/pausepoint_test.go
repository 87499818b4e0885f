package pausepoint

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestReachOtherPoint(t *testing.T) {
	t.Setenv(EnvAt, "elsewhere")
	t.Setenv(EnvDir, t.TempDir())
	if err := Reach(t.Context(), TreeHeld); err != nil {
		t.Fatalf("Reach of a point not named: %v", err)
	}
}

func TestReachWaitsForRelease(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvAt, TreeHeld)
	t.Setenv(EnvDir, dir)
	done := make(chan error, 1)
	go func() { done <- Reach(t.Context(), TreeHeld) }()
	reached := filepath.Join(dir, TreeHeld+".reached")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(reached); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Reach did not create the .reached file")
		}
	}
	select {
	case err := <-done:
		t.Fatalf("Reach returned %v before the release", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := os.WriteFile(filepath.Join(dir, TreeHeld+".release"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Reach: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Reach did not return after the release")
	}
}

func TestReachWithoutDir(t *testing.T) {
	t.Setenv(EnvAt, TreeHeld)
	t.Setenv(EnvDir, "")
	if err := Reach(t.Context(), TreeHeld); err == nil {
		t.Fatal("Reach without RKT_PAUSE_DIR: no error")
	}
}
