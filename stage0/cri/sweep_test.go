package cri

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/rkt-ng/rkt/internal/flock"
	"github.com/rkt-ng/rkt/stage0"
)

// A run directory of a killed rkt-cri (lock free) goes; one of a
// RunPodSandbox under way (locked) stays.
func TestSweepRunDirs(t *testing.T) {
	s := &Server{stage0: &stage0.Config{Dir: t.TempDir()}, log: slog.New(slog.DiscardHandler)}
	left, live := filepath.Join(s.stateDir(), "run-left"), filepath.Join(s.stateDir(), "run-live")
	for _, d := range []string{left, live} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "uuid"), []byte("6a4b4c4d-0000-4000-8000-000000000000\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l, err := flock.OpenDir(live)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Exclusive(); err != nil {
		t.Fatal(err)
	}
	s.sweepRunDirs()
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("%s left behind by a dead server still there (%v)", left, err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("%s of a call under way removed: %v", live, err)
	}
}
