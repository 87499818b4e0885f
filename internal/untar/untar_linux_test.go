package untar

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

var mtime = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

// ent is one tar entry of a test archive.
type ent struct {
	hdr  tar.Header
	body string
}

func reg(name, body string) ent {
	return ent{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), ModTime: mtime}, body: body}
}

func regMode(name, body string, mode int64) ent {
	e := reg(name, body)
	e.hdr.Mode = mode
	return e
}

func dir(name string) ent {
	return ent{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime}}
}

func dirMode(name string, mode int64) ent {
	e := dir(name)
	e.hdr.Mode = mode
	return e
}

func sym(name, target string) ent {
	return ent{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777, ModTime: mtime}}
}

func link(name, target string) ent {
	return ent{hdr: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target, ModTime: mtime}}
}

func mkTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range ents {
		h := e.hdr
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("write header %q: %v", h.Name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatalf("write %q: %v", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// sandbox returns base (with a sentinel file and directory that must never
// change) and the extraction directory base/root.
func sandbox(t testing.TB) (base, root string) {
	t.Helper()
	base = t.TempDir()
	root = filepath.Join(base, "root")
	for _, d := range []string{root, filepath.Join(base, "outside")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(base, "outside", "passwd"), []byte("sentinel"), 0o644); err != nil {
		t.Fatal(err)
	}
	return base, root
}

// checkOutside fails if anything in base but root differs from sandbox's.
func checkOutside(t testing.TB, base string) {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		if rel == "root" {
			return fs.SkipDir
		}
		got[rel] = describe(t, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{".": "d", "outside": "d", "outside/passwd": "f 644 sentinel"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("outside of the extraction directory changed (-want +got):\n%s", diff)
	}
}

func describe(t testing.TB, p string) string {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	switch m := fi.Mode(); {
	case m.IsDir():
		return "d"
	case m&fs.ModeSymlink != 0:
		target, _ := os.Readlink(p)
		return "l " + target
	case m.IsRegular():
		b, _ := os.ReadFile(p)
		perm := uint32(m.Perm())
		if m&fs.ModeSetuid != 0 {
			perm |= 0o4000
		}
		if m&fs.ModeSetgid != 0 {
			perm |= 0o2000
		}
		return fmt.Sprintf("f %o %s", perm, b)
	case m&fs.ModeCharDevice != 0:
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("c %d,%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	case m&fs.ModeDevice != 0:
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("b %d,%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	case m&fs.ModeNamedPipe != 0:
		return "p"
	}
	return "?"
}

// tree describes every path below root, "" being root itself.
func tree(t testing.TB, root string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root {
			rel, _ := filepath.Rel(root, p)
			got[rel] = describe(t, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("requires root (uid=%d) for ownership and device nodes; run: sudo -E go test ./internal/untar/", os.Geteuid())
	}
}

func TestExtract(t *testing.T) {
	tests := []struct {
		name string
		// layers are extracted in order into one directory.
		layers  [][]ent
		opts    Options
		want    map[string]string
		wantErr string // substring; it must also name the entry
		unsafe  bool   // the error wraps ErrUnsafePath
	}{
		{
			name:   "plain files dirs links",
			layers: [][]ent{{dir("a/"), reg("a/f", "hello"), sym("a/s", "f"), link("a/h", "a/f"), regMode("x", "exe", 0o755)}},
			want:   map[string]string{"a": "d", "a/f": "f 644 hello", "a/s": "l f", "a/h": "f 644 hello", "x": "f 755 exe"},
		},
		{
			name:   "missing parents are created",
			layers: [][]ent{{reg("p/q/r", "deep"), reg("./dot/x", "d")}},
			want:   map[string]string{"p": "d", "p/q": "d", "p/q/r": "f 644 deep", "dot": "d", "dot/x": "f 644 d"},
		},
		{
			name:    "dotdot traversal",
			layers:  [][]ent{{reg("../x", "evil")}},
			wantErr: `"../x"`,
			unsafe:  true,
		},
		{
			name:    "inner dotdot",
			layers:  [][]ent{{dir("a/"), reg("a/../../x", "evil")}},
			wantErr: `"a/../../x"`,
			unsafe:  true,
		},
		{
			name:    "absolute name",
			layers:  [][]ent{{reg("/etc/x", "evil")}},
			wantErr: `"/etc/x"`,
			unsafe:  true,
		},
		{
			name:    "symlink escape absolute",
			layers:  [][]ent{{sym("x", "/etc"), reg("x/passwd", "evil")}},
			wantErr: `"x/passwd"`,
			unsafe:  true,
		},
		{
			name:    "symlink escape relative",
			layers:  [][]ent{{sym("x", "../outside"), reg("x/passwd", "evil")}},
			wantErr: `"x/passwd"`,
			unsafe:  true,
		},
		{
			name:    "symlink escape in a deeper component",
			layers:  [][]ent{{dir("a/"), sym("a/b", "../../outside"), reg("a/b/c/passwd", "evil")}},
			wantErr: `"a/b/c/passwd"`,
			unsafe:  true,
		},
		{
			name:    "hardlink escape dotdot",
			layers:  [][]ent{{link("h", "../outside/passwd")}},
			wantErr: `"h"`,
			unsafe:  true,
		},
		{
			name:    "hardlink escape absolute",
			layers:  [][]ent{{link("h", "/etc/passwd")}},
			wantErr: `"h"`,
			unsafe:  true,
		},
		{
			name:    "hardlink escape through symlink",
			layers:  [][]ent{{sym("s", "../outside"), link("h", "s/passwd")}},
			wantErr: `"h"`,
			unsafe:  true,
		},
		{
			name:    "hardlink to missing target",
			layers:  [][]ent{{link("h", "nope")}},
			wantErr: `"h"`,
		},
		{
			name:   "hardlink to itself",
			layers: [][]ent{{reg("a", "x"), link("a", "a")}},
			want:   map[string]string{"a": "f 644 x"},
		},
		{
			name:   "symlink to directory is replaced by a file, not followed",
			layers: [][]ent{{sym("x", "../outside"), reg("x", "new")}},
			want:   map[string]string{"x": "f 644 new"},
		},
		{
			name:   "symlink over file is replaced",
			layers: [][]ent{{reg("passwd", "old")}, {sym("passwd", "../outside/passwd")}},
			want:   map[string]string{"passwd": "l ../outside/passwd"},
		},
		{
			name:   "dir over dir keeps contents and takes attributes",
			layers: [][]ent{{dir("d/"), reg("d/f", "lower")}, {dirMode("d/", 0o700), reg("d/g", "upper")}},
			want:   map[string]string{"d": "d", "d/f": "f 644 lower", "d/g": "f 644 upper"},
		},
		{
			name:   "symlink over dir replaces it",
			layers: [][]ent{{dir("d/"), reg("d/f", "lower")}, {sym("d", "../outside")}},
			want:   map[string]string{"d": "l ../outside"},
		},
		{
			name:   "dir over symlink to dir replaces the symlink",
			layers: [][]ent{{dir("real/"), sym("d", "real")}, {dir("d/"), reg("d/f", "x")}},
			want:   map[string]string{"real": "d", "d": "d", "d/f": "f 644 x"},
		},
		{
			name:   "file over dir removes the dir",
			layers: [][]ent{{dir("d/"), dir("d/e/"), reg("d/e/f", "x")}, {reg("d", "file")}},
			want:   map[string]string{"d": "f 644 file"},
		},
		{
			name:   "file over hardlinked file does not write through",
			layers: [][]ent{{reg("a", "old"), link("b", "a")}, {reg("b", "new")}},
			want:   map[string]string{"a": "f 644 old", "b": "f 644 new"},
		},
		{
			name:   "fifo",
			layers: [][]ent{{{hdr: tar.Header{Name: "p", Typeflag: tar.TypeFifo, Mode: 0o600, ModTime: mtime}}}},
			want:   map[string]string{"p": "p"},
		},
		{
			name:   "device skipped without KeepOwners",
			layers: [][]ent{{{hdr: tar.Header{Name: "null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: mtime}}}},
			want:   map[string]string{},
		},
		{
			name:   "setuid stripped without KeepOwners",
			layers: [][]ent{{regMode("su", "x", 0o4755)}},
			want:   map[string]string{"su": "f 755 x"},
		},
		{
			name: "strip prefix",
			layers: [][]ent{{reg("manifest", "{}"), dirMode("rootfs/", 0o750), dir("rootfs/etc/"), reg("rootfs/etc/hosts", "h"),
				link("rootfs/etc/h2", "rootfs/etc/hosts"), reg("other", "skipped")}},
			opts: Options{StripPrefix: "rootfs/"},
			want: map[string]string{"etc": "d", "etc/hosts": "f 644 h", "etc/h2": "f 644 h"},
		},
		{
			name:    "strip prefix hardlink outside prefix",
			layers:  [][]ent{{reg("manifest", "{}"), link("rootfs/m", "manifest")}},
			opts:    Options{StripPrefix: "rootfs/"},
			wantErr: `"rootfs/m"`,
			unsafe:  true,
		},
		{
			name:    "strip prefix dotdot",
			layers:  [][]ent{{dir("rootfs/"), reg("rootfs/../x", "evil")}},
			opts:    Options{StripPrefix: "rootfs/"},
			wantErr: `"rootfs/../x"`,
			unsafe:  true,
		},
		{
			name:   "keep filter keeps directories",
			layers: [][]ent{{dir("bin/"), reg("bin/sh", "sh"), reg("bin/ls", "ls"), dir("empty/")}},
			opts:   Options{Keep: func(n string) bool { return n == "bin/sh" }},
			want:   map[string]string{"bin": "d", "bin/sh": "f 644 sh", "empty": "d"},
		},
		{
			name:    "duplicate rejected",
			layers:  [][]ent{{reg("a", "1"), reg("./a", "2")}},
			opts:    Options{RejectDuplicates: true},
			wantErr: `"./a": duplicate entry`,
		},
		{
			name:   "duplicate allowed: last wins",
			layers: [][]ent{{reg("a", "1"), reg("a", "2")}},
			want:   map[string]string{"a": "f 644 2"},
		},
		{
			name:    "unsupported type",
			layers:  [][]ent{{{hdr: tar.Header{Name: "c", Typeflag: tar.TypeCont, ModTime: mtime}}}},
			wantErr: `"c": unsupported entry type`,
		},
		{
			name:   "whiteout removes lower file and dir",
			layers: [][]ent{{reg("a", "1"), dir("d/"), reg("d/f", "x"), reg("keep", "k")}, {reg(".wh.a", ""), reg(".wh.d", ""), reg(".wh.missing", "")}},
			opts:   Options{OCI: true},
			want:   map[string]string{"keep": "f 644 k"},
		},
		{
			name:   "whiteout does not remove same-layer entry",
			layers: [][]ent{{reg("a", "1")}, {reg("a", "2"), reg(".wh.a", "")}},
			opts:   Options{OCI: true},
			want:   map[string]string{"a": "f 644 2"},
		},
		{
			name:   "whiteout then recreate",
			layers: [][]ent{{dir("d/"), reg("d/old", "1")}, {reg(".wh.d", ""), dir("d/"), reg("d/new", "2")}},
			opts:   Options{OCI: true},
			want:   map[string]string{"d": "d", "d/new": "f 644 2"},
		},
		{
			name:   "whiteout does not follow symlink",
			layers: [][]ent{{sym("s", "../outside")}, {reg("s/.wh.passwd", "")}},
			opts:   Options{OCI: true},
			want:   map[string]string{"s": "l ../outside"},
		},
		{
			name: "opaque before children",
			layers: [][]ent{{dir("d/"), reg("d/old", "1"), dir("d/sub/"), reg("d/sub/x", "1"), reg("e", "e")},
				{dir("d/"), reg("d/.wh..wh..opq", ""), reg("d/new", "2")}},
			opts: Options{OCI: true},
			want: map[string]string{"d": "d", "d/new": "f 644 2", "e": "f 644 e"},
		},
		{
			name: "opaque after its children",
			layers: [][]ent{{dir("d/"), reg("d/old", "1"), dir("d/sub/"), reg("d/sub/lower", "1"), reg("d/sub2/lower", "1")},
				{dir("d/"), reg("d/new", "2"), dir("d/sub/"), reg("d/sub/upper", "2"), reg("d/sub2/deep/upper", "3"), reg("d/.wh..wh..opq", "")}},
			opts: Options{OCI: true},
			want: map[string]string{"d": "d", "d/new": "f 644 2", "d/sub": "d", "d/sub/upper": "f 644 2",
				"d/sub2": "d", "d/sub2/deep": "d", "d/sub2/deep/upper": "f 644 3"},
		},
		{
			name:   "opaque root",
			layers: [][]ent{{reg("a", "1"), dir("d/")}, {reg("b", "2"), reg(".wh..wh..opq", "")}},
			opts:   Options{OCI: true},
			want:   map[string]string{"b": "f 644 2"},
		},
		{
			name:   "other aufs metadata ignored",
			layers: [][]ent{{dir(".wh..wh.plnk/"), reg("a", "1")}},
			opts:   Options{OCI: true},
			want:   map[string]string{"a": "f 644 1"},
		},
		{
			name:    "bare whiteout",
			layers:  [][]ent{{reg("d/.wh.", "")}},
			opts:    Options{OCI: true},
			wantErr: `"d/.wh.": invalid whiteout`,
		},
		{
			name:   "whiteout names are plain files without OCI",
			layers: [][]ent{{reg(".wh.a", "")}},
			want:   map[string]string{".wh.a": "f 644 "},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			base, root := sandbox(t)
			var err error
			for _, l := range tc.layers {
				if err = Extract(t.Context(), bytes.NewReader(mkTar(t, l...)), root, tc.opts); err != nil {
					break
				}
			}
			checkOutside(t, base)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Extract error = %v, want one containing %s", err, tc.wantErr)
				}
				if tc.unsafe && !errors.Is(err, ErrUnsafePath) {
					t.Errorf("Extract error %v is not ErrUnsafePath", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			if diff := cmp.Diff(tc.want, tree(t, root)); diff != "" {
				t.Errorf("extracted tree mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExtractAttributes(t *testing.T) {
	_, root := sandbox(t)
	dirTime := time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC)
	fileTime := time.Date(2002, 2, 3, 4, 5, 6, 0, time.UTC)
	symTime := time.Date(2003, 2, 3, 4, 5, 6, 0, time.UTC)
	d := dirMode("ro/", 0o555)
	d.hdr.ModTime = dirTime
	f := regMode("ro/f", "x", 0o600)
	f.hdr.ModTime = fileTime
	f.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.test": "v"}
	s := sym("ro/s", "f")
	s.hdr.ModTime = symTime
	root0 := dirMode("./", 0o711)
	if err := Extract(t.Context(), bytes.NewReader(mkTar(t, root0, d, f, s, reg("ro/later", "y"))), root, Options{}); err != nil {
		t.Fatal(err)
	}
	check := func(p string, want time.Time, mode fs.FileMode) {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().Equal(want) {
			t.Errorf("%s mtime = %v, want %v", p, fi.ModTime(), want)
		}
		if mode != 0 && fi.Mode().Perm() != mode {
			t.Errorf("%s mode = %v, want %v", p, fi.Mode().Perm(), mode)
		}
	}
	check("ro", dirTime, 0o555)
	check("ro/f", fileTime, 0o600)
	check("ro/s", symTime, 0)
	check(".", mtime, 0o711)
	buf := make([]byte, 16)
	n, err := unix.Getxattr(filepath.Join(root, "ro/f"), "user.test", buf)
	if errors.Is(err, unix.ENOTSUP) {
		t.Logf("user xattrs not supported on %s; skipping that check", root)
	} else if err != nil || string(buf[:n]) != "v" {
		t.Errorf("xattr user.test = %q, %v; want \"v\"", buf[:n], err)
	}
}

func TestExtractKeepOwners(t *testing.T) {
	requireRoot(t)
	_, root := sandbox(t)
	// struct vfs_cap_data v2: magic, then permitted/inheritable pairs;
	// permitted = CAP_NET_BIND_SERVICE (10).
	capData := string([]byte{0, 0, 0, 2, 1 << 2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	su := regMode("bin/su", "su", 0o4755)
	su.hdr.Uid, su.hdr.Gid = 0, 0
	owned := regMode("home/u/f", "f", 0o640)
	owned.hdr.Uid, owned.hdr.Gid = 1234, 5678
	capped := regMode("bin/ping", "ping", 0o755)
	capped.hdr.Uid, capped.hdr.Gid = 1234, 0
	capped.hdr.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": capData}
	home := dirMode("home/u/", 0o700)
	home.hdr.Uid, home.hdr.Gid = 1234, 5678
	ls := sym("home/u/l", "f")
	ls.hdr.Uid, ls.hdr.Gid = 1234, 5678
	null := ent{hdr: tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: mtime}}
	blk := ent{hdr: tar.Header{Name: "dev/loop9", Typeflag: tar.TypeBlock, Mode: 0o660, Devmajor: 7, Devminor: 9, ModTime: mtime}}
	err := Extract(t.Context(), bytes.NewReader(mkTar(t, su, home, owned, ls, capped, null, blk)), root, Options{KeepOwners: true})
	if err != nil {
		t.Fatal(err)
	}
	got := tree(t, root)
	want := map[string]string{
		"bin": "d", "bin/su": "f 4755 su", "bin/ping": "f 755 ping", "home": "d", "home/u": "d", "home/u/f": "f 640 f",
		"home/u/l": "l f", "dev": "d", "dev/null": "c 1,3", "dev/loop9": "b 7,9",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tree mismatch (-want +got):\n%s", diff)
	}
	owner := func(p string) [2]uint32 {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, p), &st); err != nil {
			t.Fatal(err)
		}
		return [2]uint32{st.Uid, st.Gid}
	}
	for p, w := range map[string][2]uint32{"home/u": {1234, 5678}, "home/u/f": {1234, 5678}, "home/u/l": {1234, 5678}, "bin/ping": {1234, 0}} {
		if got := owner(p); got != w {
			t.Errorf("owner of %s = %v, want %v", p, got, w)
		}
	}
	buf := make([]byte, 64)
	n, err := unix.Getxattr(filepath.Join(root, "bin/ping"), "security.capability", buf)
	if err != nil || string(buf[:n]) != capData {
		t.Errorf("security.capability = %x, %v; want %x", buf[:n], err, capData)
	}
}

func TestExtractCancelled(t *testing.T) {
	_, root := sandbox(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := Extract(ctx, bytes.NewReader(mkTar(t, reg("a", "x"))), root, Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Extract with cancelled context = %v, want context.Canceled", err)
	}
}

func TestExtractTruncated(t *testing.T) {
	_, root := sandbox(t)
	b := mkTar(t, reg("a", strings.Repeat("x", 4096)))
	if err := Extract(t.Context(), bytes.NewReader(b[:1500]), root, Options{}); err == nil {
		t.Fatal("Extract of a truncated archive succeeded")
	}
}

func TestCleanName(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "a/b/", want: "a/b"},
		{in: "./a//b", want: "a/b"},
		{in: "./", want: "."},
		{in: "", want: "."},
		{in: "a..b/..c", want: "a..b/..c"},
		{in: "..", wantErr: true},
		{in: "a/..", wantErr: true},
		{in: "/a", wantErr: true},
	}
	for _, tc := range tests {
		got, err := CleanName(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("CleanName(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

// BenchmarkExtract extracts about 100 MB in 1600 files, the size of the
// tar -x comparison in the design notes.
func BenchmarkExtract(b *testing.B) {
	var ents []ent
	body := strings.Repeat("0123456789abcdef", 4096) // 64 KiB
	for d := range 40 {
		ents = append(ents, dir(fmt.Sprintf("d%02d/", d)))
		for f := range 40 {
			ents = append(ents, reg(fmt.Sprintf("d%02d/f%02d", d, f), body))
		}
	}
	data := mkTar(b, ents...)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		root := b.TempDir()
		if err := Extract(b.Context(), bytes.NewReader(data), root, Options{KeepOwners: os.Geteuid() == 0}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestExtractSparse extracts GNU and PAX sparse archives of a 256 MiB file
// holding 8 bytes of data (made with GNU tar --sparse): holes must stay holes.
func TestExtractSparse(t *testing.T) {
	for _, name := range []string{"sparse-gnu.tar", "sparse-posix.tar"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f, err := os.Open(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			root := t.TempDir()
			if err := Extract(t.Context(), f, root, Options{}); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(root, "big")
			var st unix.Stat_t
			if err := unix.Stat(p, &st); err != nil {
				t.Fatal(err)
			}
			if st.Size != 256<<20 || st.Blocks*512 > 4<<20 {
				t.Errorf("big: size %d, %d bytes allocated; want %d and at most 4 MiB", st.Size, st.Blocks*512, 256<<20)
			}
			g, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			head, tail := make([]byte, 4), make([]byte, 4)
			g.ReadAt(head, 0)
			g.ReadAt(tail, st.Size-4)
			if string(head) != "head" || string(tail) != "tail" {
				t.Errorf("big: head %q tail %q, want \"head\" \"tail\"", head, tail)
			}
		})
	}
}
