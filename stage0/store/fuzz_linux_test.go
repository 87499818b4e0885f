package store

import (
	"archive/tar"
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/fuzz seed corpus files")

func fuzzSeeds(t testing.TB) map[string][]byte {
	m := manifestJSON(t, "example.com/fuzz")
	good := buildACI(t, imageSpec{name: "example.com/fuzz", files: map[string]string{"bin/sh": "sh", "etc/": ""}})
	return map[string][]byte{
		"good":     good,
		"good-gz":  gz(t, good),
		"good-xz":  xzip(t, good),
		"dotdot":   rawTar(t, regEnt("manifest", m), dirEnt("rootfs/"), regEnt("rootfs/../../x", "evil")),
		"extra":    rawTar(t, regEnt("manifest", m), dirEnt("rootfs/"), regEnt("extra", "x")),
		"symlink":  rawTar(t, regEnt("manifest", m), dirEnt("rootfs/"), ent{hdr: tar.Header{Name: "rootfs/l", Typeflag: tar.TypeSymlink, Linkname: "/"}}, regEnt("rootfs/l/x", "evil")),
		"hardlink": rawTar(t, regEnt("manifest", m), dirEnt("rootfs/"), ent{hdr: tar.Header{Name: "rootfs/h", Typeflag: tar.TypeLink, Linkname: "rootfs/../manifest"}}),
	}
}

// fuzzMaxSize bounds what one input may decompress to: bzip2 and xz expand
// a 64 KiB input by far more than a fuzzer iteration should write, and the
// store's own limit stops them after this much, as it stops a real bomb.
const fuzzMaxSize = 1 << 20

func FuzzImportACI(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	// One store for every input of this process, emptied after each: opening
	// a store and a temp dir per input, and fsyncing each import, is what
	// kept this target at a few inputs a minute.
	base := f.TempDir()
	s, err := Open(filepath.Join(base, "cas"), WithMaxImageSize(fuzzMaxSize))
	if err != nil {
		f.Fatal(err)
	}
	s.noSync = true
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		img, err := s.ImportACI(t.Context(), bytes.NewReader(data))
		if err != nil {
			assertEmpty(t, s)
			return
		}
		defer func() {
			if err := s.Remove(t.Context(), img.ID); err != nil {
				t.Fatalf("remove %s: %v", img.ID, err)
			}
			assertEmpty(t, s)
		}()
		if img.Size > fuzzMaxSize {
			t.Fatalf("image of %d bytes imported past the limit %d", img.Size, fuzzMaxSize)
		}
		rc, err := s.OpenBlob(img.ID)
		if err != nil {
			t.Fatal(err)
		}
		h := sha512.New()
		n, err := io.Copy(h, rc)
		rc.Close()
		if err != nil || "sha512-"+hex.EncodeToString(h.Sum(nil)) != img.ID || n != img.Size {
			t.Fatalf("blob of %s: %d bytes hashing to %x, %v; want size %d", img.ID, n, h.Sum(nil), err, img.Size)
		}
		if _, err := s.Manifest(img.ID); err != nil {
			t.Fatal(err)
		}
		tree, err := s.Render(t.Context(), img.ID)
		if err != nil {
			if trees, _ := os.ReadDir(filepath.Join(s.dir, "tree")); len(trees) != 0 {
				t.Fatalf("failed render left %v", trees)
			}
			return
		}
		// Everything rendered is inside the tree: base holds only cas.
		if ents, _ := os.ReadDir(base); len(ents) != 1 {
			t.Fatalf("render of %s created %v next to the store", img.ID, ents)
		}
		if _, err := os.Stat(tree.Rootfs); err != nil {
			t.Fatal(err)
		}
	})
}

// TestFuzzSeedCorpus keeps testdata/fuzz/FuzzImportACI in step with
// fuzzSeeds; refresh with -update.
func TestFuzzSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzImportACI")
	for name, b := range fuzzSeeds(t) {
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
		p := filepath.Join(dir, name)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != want {
			t.Errorf("seed corpus file %s is stale or missing (%v); run go test -run TestFuzzSeedCorpus -update", p, err)
		}
	}
}
