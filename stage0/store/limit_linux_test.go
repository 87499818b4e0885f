package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestImportTooLarge: a small compressed ACI whose tar is far larger than the
// store's limit (a decompression bomb in miniature) is refused with
// ErrTooLarge, on one line naming the limit, and leaves nothing behind.
func TestImportTooLarge(t *testing.T) {
	const limit = 1 << 20
	zeros := strings.Repeat("\x00", 8<<20)
	aci := buildACI(t, imageSpec{name: "example.com/bomb", files: map[string]string{"zeros": zeros}})
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"tar", aci},
		{"gzip", gz(t, aci)},
		{"xz", xzip(t, aci)},
		{"bzip2", bzip(t, aci)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := Open(filepath.Join(t.TempDir(), "cas"), WithMaxImageSize(limit))
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.ImportACI(t.Context(), bytes.NewReader(tc.data))
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("ImportACI of %d bytes (%d uncompressed) with limit %d: %v, want ErrTooLarge", len(tc.data), len(aci), limit, err)
			}
			if msg := err.Error(); !strings.Contains(msg, "1048576 bytes") || strings.Contains(msg, "\n") {
				t.Errorf("error %q does not name the limit on one line", msg)
			}
			assertEmpty(t, s)
		})
	}
	// Under the limit the same image imports.
	s, err := Open(filepath.Join(t.TempDir(), "cas"), WithMaxImageSize(int64(len(aci))))
	if err != nil {
		t.Fatal(err)
	}
	mustImport(t, s, gz(t, aci))
}

// TestImportOCITooLarge: an OCI layer whose tar is larger than the limit is
// refused and no layer directory, partial or whole, is left.
func TestImportOCITooLarge(t *testing.T) {
	requireRoot(t)
	big := tarLayer(t, regEnt("zeros", strings.Repeat("\x00", 4<<20)))
	img := ociImage(t, v1.Config{}, big)
	s, err := Open(filepath.Join(t.TempDir(), "cas"), WithMaxImageSize(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.ImportOCI(t.Context(), img, OCIRef{Name: "example.com/bomb", Original: "bomb"}, OCIOptions{})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("ImportOCI: %v, want ErrTooLarge", err)
	}
	if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "1048576") {
		t.Errorf("error %q does not name the limit on one line", err)
	}
	assertEmpty(t, s)
	if ents, _ := os.ReadDir(filepath.Join(s.dir, layersDir)); len(ents) != 0 {
		t.Errorf("layers left: %v", ents)
	}
}
