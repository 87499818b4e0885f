package discovery

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFileCache(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "cas", "remote")
	c, err := NewFileCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	const u1, u2 = "https://example.com/a.aci", "https://example.com/b.aci"
	if _, ok := c.Get(u1); ok {
		t.Fatal("Get on an empty cache found a record")
	}
	r1 := Record{ETag: `"1"`, MaxAge: 90 * time.Second, Fetched: time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC), BlobID: "sha512-aa"}
	r2 := Record{ETag: `"2"`}
	if err := c.Put(u1, r1); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(u2, r2); err != nil {
		t.Fatal(err)
	}
	// A new instance reads what the first wrote.
	c2, err := NewFileCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	for u, want := range map[string]Record{u1: r1, u2: r2} {
		got, ok := c2.Get(u)
		if !ok {
			t.Fatalf("Get(%s): no record", u)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Get(%s) mismatch (-want +got):\n%s", u, diff)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("cache dir has %d entries, want 2 (no temp files left)", len(entries))
	}

	// A corrupt file, or one recording another URL, reads as no record.
	if err := os.WriteFile(c.path(u1), []byte("{corrupt"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get(u1); ok {
		t.Error("corrupt record was returned")
	}
	data, err := os.ReadFile(c.path(u2))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.path(u1), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get(u1); ok {
		t.Error("record of another URL was returned")
	}

	if err := c.Delete(u2); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(u2); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if _, ok := c.Get(u2); ok {
		t.Error("deleted record was returned")
	}
}
