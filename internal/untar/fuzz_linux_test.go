package untar

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/fuzz seed corpus files")

// fuzzSeeds are hostile archives; FuzzExtract mutates them.
func fuzzSeeds(t testing.TB) map[string][]byte {
	return map[string][]byte{
		"plain":        mkTar(t, dir("a/"), reg("a/f", "hello"), sym("a/s", "f"), link("a/h", "a/f")),
		"dotdot":       mkTar(t, reg("../outside/passwd", "evil")),
		"absolute":     mkTar(t, reg("/etc/x", "evil")),
		"symlink":      mkTar(t, sym("x", "../outside"), reg("x/passwd", "evil")),
		"symlink-abs":  mkTar(t, sym("x", "/etc"), reg("x/passwd", "evil")),
		"hardlink":     mkTar(t, link("h", "../outside/passwd")),
		"hardlink-sym": mkTar(t, sym("s", "../outside"), link("h", "s/passwd")),
		"device":       mkTar(t, ent{hdr: tar.Header{Name: "null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}}),
		"whiteout":     mkTar(t, dir("d/"), reg("d/f", "x"), reg("d/.wh..wh..opq", ""), reg(".wh.outside", ""), reg("s/.wh.passwd", "")),
		"aci": mkTar(t, reg("manifest", "{}"), dir("rootfs/"), sym("rootfs/l", "../../outside"),
			reg("rootfs/l/passwd", "evil"), link("rootfs/m", "manifest")),
	}
}

func FuzzExtract(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		for mode := range byte(4) {
			f.Add(b, mode)
		}
	}
	// One sandbox per worker process, its root emptied before each input: a
	// fresh temp dir per input cost more than the extraction.
	base, root := sandbox(f)
	f.Fuzz(func(t *testing.T, data []byte, mode byte) {
		if len(data) > 1<<16 || expandedSize(data) > 1<<24 {
			return // bounded: sparse entries can declare any size
		}
		o := Options{OCI: mode&1 != 0, RejectDuplicates: mode&4 != 0, KeepOwners: os.Geteuid() == 0}
		if mode&2 != 0 {
			o.StripPrefix = "rootfs/"
		}
		if err := os.RemoveAll(root); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(root, 0o755); err != nil {
			t.Fatal(err)
		}
		// A symlink already in the tree pointing out must not be followed.
		if err := os.Symlink("../outside", filepath.Join(root, "s")); err != nil {
			t.Fatal(err)
		}
		_ = Extract(t.Context(), bytes.NewReader(data), root, o) // errors are fine; escapes are not
		checkOutside(t, base)
	})
}

// expandedSize is the sum of the entry sizes tar.Reader would produce.
func expandedSize(data []byte) int64 {
	tr := tar.NewReader(bytes.NewReader(data))
	var n int64
	for {
		hdr, err := tr.Next()
		if err != nil {
			return n
		}
		if hdr.Size > 0 {
			n += hdr.Size
		}
		if n < 0 || n > 1<<40 {
			return 1 << 40
		}
	}
}

// TestFuzzSeedCorpus keeps testdata/fuzz/FuzzExtract in step with
// fuzzSeeds; refresh with -update.
func TestFuzzSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzExtract")
	for name, b := range fuzzSeeds(t) {
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\nbyte('\\x01')\n", strconv.Quote(string(b)))
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
