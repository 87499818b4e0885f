package vm

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// cpioEntry is what readCPIO finds in a newc archive.
type cpioEntry struct {
	Name         string
	Mode         uint32
	RMajor       uint32
	RMinor       uint32
	Data         string
	HeaderOffset int
}

// readCPIO is an independent newc reader for the tests: it checks the
// magic, the 4-byte alignment of names and data, and the trailer.
func readCPIO(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	for {
		if off%4 != 0 {
			t.Fatalf("header at %d not 4-byte aligned", off)
		}
		if len(b) < off+110 {
			t.Fatalf("truncated header at %d", off)
		}
		h := string(b[off : off+110])
		if h[:6] != "070701" {
			t.Fatalf("bad magic %q at %d", h[:6], off)
		}
		field := func(i int) uint32 {
			v, err := strconv.ParseUint(h[6+8*i:6+8*i+8], 16, 32)
			if err != nil {
				t.Fatalf("header field %d at %d: %v", i, off, err)
			}
			return uint32(v)
		}
		mode, size, rmaj, rmin, nameSize := field(1), field(6), field(9), field(10), field(11)
		nameEnd := off + 110 + int(nameSize)
		if b[nameEnd-1] != 0 {
			t.Fatalf("name at %d not NUL-terminated", off)
		}
		name := string(b[off+110 : nameEnd-1])
		dataStart := (nameEnd + 3) &^ 3
		dataEnd := dataStart + int(size)
		e := cpioEntry{Name: name, Mode: mode, RMajor: rmaj, RMinor: rmin, Data: string(b[dataStart:dataEnd]), HeaderOffset: off}
		off = (dataEnd + 3) &^ 3
		if name == cpioTrailer {
			if off != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out = append(out, e)
	}
}

func TestCPIOWriter(t *testing.T) {
	var buf bytes.Buffer
	w := NewCPIOWriter(&buf)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.Dir("/bin", 0o755))
	must(w.File("/bin/x", 0o755, strings.NewReader("hello"), 5))
	must(w.File("empty", 0o600, strings.NewReader(""), 0))
	must(w.Symlink("/bin/y", "x"))
	must(w.CharDev("/dev/console", 0o600, 5, 1))
	must(w.Close())
	got := readCPIO(t, buf.Bytes())
	for i := range got {
		got[i].HeaderOffset = 0
	}
	want := []cpioEntry{
		{Name: "bin", Mode: 0o040755},
		{Name: "bin/x", Mode: 0o100755, Data: "hello"},
		{Name: "empty", Mode: 0o100600},
		{Name: "bin/y", Mode: 0o120777, Data: "x"},
		{Name: "dev/console", Mode: 0o020600, RMajor: 5, RMinor: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("archive mismatch (-want +got):\n%s", diff)
	}
}

func TestCPIOWriterRejects(t *testing.T) {
	w := NewCPIOWriter(io.Discard)
	if err := w.Dir("/a", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"dup", w.Dir("a", 0o755)},
		{"dotdot", w.Dir("../x", 0o755)},
		{"root", w.Dir("/", 0o755)},
		{"trailer", w.Dir(cpioTrailer, 0o755)},
		{"short", w.File("b", 0o644, strings.NewReader("ab"), 3)},
	} {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Dir("c", 0o755); err == nil {
		t.Errorf("write after close: no error")
	}
}

// TestWriteInitramfs checks the gzip'd archive with busybox's cpio, an
// implementation of the format independent of this package.
func TestWriteInitramfs(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("#!/bin/sh\n"), 0o750); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "initrd")
	err := WriteInitramfs(img, []File{
		{Path: "/init", Src: src},
		{Path: "/etc/deep/conf", Data: []byte("x=1\n"), Mode: 0o644},
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]cpioEntry{}
	for _, e := range readCPIO(t, raw) {
		e.HeaderOffset = 0
		got[e.Name] = e
	}
	for name, want := range map[string]cpioEntry{
		"init":          {Name: "init", Mode: 0o100750, Data: "#!/bin/sh\n"},
		"etc/deep":      {Name: "etc/deep", Mode: 0o040755},
		"etc/deep/conf": {Name: "etc/deep/conf", Mode: 0o100644, Data: "x=1\n"},
		"dev/console":   {Name: "dev/console", Mode: 0o020600, RMajor: 5, RMinor: 1},
		"sys":           {Name: "sys", Mode: 0o040755},
		"var/lib/rkt":   {Name: "var/lib/rkt", Mode: 0o040755},
		"var/lib":       {Name: "var/lib", Mode: 0o040755},
		"lib/modules":   {Name: "lib/modules", Mode: 0o040755},
		"proc":          {Name: "proc", Mode: 0o040755},
		"etc":           {Name: "etc", Mode: 0o040755},
		"tmp":           {Name: "tmp", Mode: 0o040755},
		"run":           {Name: "run", Mode: 0o040755},
		"bin":           {Name: "bin", Mode: 0o040755},
		"root":          {Name: "root", Mode: 0o040755},
		"dev":           {Name: "dev", Mode: 0o040755},
		"var":           {Name: "var", Mode: 0o040755},
		"lib":           {Name: "lib", Mode: 0o040755},
	} {
		if diff := cmp.Diff(want, got[name]); diff != "" {
			t.Errorf("entry %s mismatch (-want +got):\n%s", name, diff)
		}
	}
	if err := WriteInitramfs(filepath.Join(dir, "bad"), []File{{Path: "rel", Data: nil}}); err == nil {
		t.Errorf("relative path accepted")
	}

	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Skipf("busybox not found (%v): the archive was not checked with busybox cpio; run: apt-get install busybox-static", err)
	}
	cmd := exec.Command(busybox, "cpio", "-t")
	cmd.Stdin = bytes.NewReader(raw)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("busybox cpio -t: %v\n%s", err, out)
	}
	for _, name := range []string{"init", "etc/deep/conf", "dev/console", "var/lib/rkt"} {
		if !strings.Contains("\n"+string(out), "\n"+name+"\n") {
			t.Errorf("busybox cpio -t does not list %s:\n%s", name, out)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"vmlinuz-6.1.0-9-amd64", "vmlinuz-6.1.0-10-amd64", -1},
		{"vmlinuz-6.10.0-1", "vmlinuz-6.9.0-1", 1},
		{"vmlinuz-6.1.0-56-cloud-amd64", "vmlinuz-6.1.0-56-cloud-amd64", 0},
		{"vmlinuz-6.1", "vmlinuz-6.1.0", -1},
	} {
		got := compareVersions(tc.a, tc.b)
		if (got < 0) != (tc.want < 0) || (got > 0) != (tc.want > 0) {
			t.Errorf("compareVersions(%q, %q) = %d, want sign of %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestResolveModule(t *testing.T) {
	dir := t.TempDir()
	dep := "kernel/fs/overlayfs/overlay.ko:\n" +
		"kernel/net/bridge/bridge.ko.xz: kernel/net/802/stp.ko.xz kernel/net/llc/llc.ko.xz\n" +
		"kernel/net/802/stp.ko.xz: kernel/net/llc/llc.ko.xz\n" +
		"kernel/net/llc/llc.ko.xz:\n" +
		"kernel/a/loop-a.ko: kernel/a/loop_b.ko\n" +
		"kernel/a/loop_b.ko: kernel/a/loop-a.ko\n"
	if err := os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/fs/ext4/ext4.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		want []string
		err  string
	}{
		{name: "overlay", want: []string{"kernel/fs/overlayfs/overlay.ko"}},
		{name: "bridge", want: []string{"kernel/net/llc/llc.ko.xz", "kernel/net/802/stp.ko.xz", "kernel/net/bridge/bridge.ko.xz"}},
		{name: "loop_a", want: []string{"kernel/a/loop_b.ko", "kernel/a/loop-a.ko"}},
		{name: "ext4", err: ErrBuiltin.Error()},
		{name: "nope", err: "not in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveModule(dir, tc.name)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ResolveModule(%s) error %v, want %q", tc.name, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, w := range tc.want {
				want = append(want, filepath.Join(dir, w))
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ResolveModule(%s) mismatch (-want +got):\n%s", tc.name, diff)
			}
		})
	}
}

func TestReadModule(t *testing.T) {
	dir := t.TempDir()
	content := []byte("\x7fELF module")
	plain := filepath.Join(dir, "m.ko")
	gz := filepath.Join(dir, "m.ko.gz")
	if err := os.WriteFile(plain, content, 0o644); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(content)
	zw.Close()
	if err := os.WriteFile(gz, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{plain, gz} {
		got, err := ReadModule(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, content) {
			t.Errorf("ReadModule(%s) = %q, want %q", p, got, content)
		}
	}
	if _, err := ReadModule(filepath.Join(dir, "m.ko.lz4")); err == nil {
		t.Errorf("unknown compression accepted")
	}
}

// TestWriteInitramfsUncompressed: the same archive as WriteInitramfs's,
// without the gzip layer.
func TestWriteInitramfsUncompressed(t *testing.T) {
	dir := t.TempDir()
	files := []File{{Path: "/init", Data: []byte("#!/bin/sh\n"), Mode: 0o755}, {Path: "/a/b", Data: []byte("b"), Mode: 0o644}}
	gz, plain := filepath.Join(dir, "gz"), filepath.Join(dir, "plain")
	if err := WriteInitramfs(gz, files); err != nil {
		t.Fatal(err)
	}
	if err := WriteInitramfsUncompressed(plain, files); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(gz)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	want, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("uncompressed archive (%d bytes) differs from the gzip'd one inflated (%d bytes)", len(got), len(want))
	}
	if len(readCPIO(t, got)) == 0 {
		t.Error("no entries")
	}
}
