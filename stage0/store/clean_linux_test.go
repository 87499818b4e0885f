package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestCleanTempOrphans: what a killed import leaves (a temporary in
// cas/tmp; a blob and manifest without a row) is removed by CleanTemp, but
// a temporary is kept while an import runs, and a complete image is kept.
func TestCleanTempOrphans(t *testing.T) {
	s := openStore(t)
	kept := mustImport(t, s, buildACI(t, imageSpec{name: "example.com/kept", files: map[string]string{"k": "k"}}))
	gone := mustImport(t, s, buildACI(t, imageSpec{name: "example.com/gone", files: map[string]string{"g": "g"}}))
	// A killed import: its row was never written.
	if err := os.Remove(s.rowPath(gone.ID)); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(s.dir, "tmp", importTempPrefix+"123")
	partial := filepath.Join(s.dir, "tmp", "dl-0123.aci") // a resumable download
	for _, p := range []string{tmp, partial} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// While an import runs, its temporaries stay.
	running, err := s.lock(t.Context(), importsLock, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CleanTemp(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Errorf("CleanTemp removed a temporary while an import ran: %v", err)
	}
	running.Close()

	if err := s.CleanTemp(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{tmp, s.blobPath(gone.ID), s.manifestPath(gone.ID)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("CleanTemp left %s: %v", p, err)
		}
	}
	for _, p := range []string{partial, s.blobPath(kept.ID), s.manifestPath(kept.ID), s.rowPath(kept.ID)} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("CleanTemp removed %s: %v", p, err)
		}
	}
	if _, err := s.Manifest(kept.ID); err != nil {
		t.Errorf("the complete image is broken: %v", err)
	}
}
