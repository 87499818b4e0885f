package store

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"github.com/google/go-cmp/cmp"
	"github.com/ulikunitz/xz"

	"github.com/rkt-ng/rkt/manifests"
)

// Environment of the helper process of TestImportProcesses.
const (
	helperStoreEnv = "RKT_STORE_TEST_HELPER_STORE"
	helperACIEnv   = "RKT_STORE_TEST_HELPER_ACI"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperStoreEnv); dir != "" {
		os.Exit(helperImport(dir, os.Getenv(helperACIEnv)))
	}
	os.Exit(m.Run())
}

func helperImport(dir, aci string) int {
	s, err := Open(dir)
	if err == nil {
		var f *os.File
		if f, err = os.Open(aci); err == nil {
			defer f.Close()
			var img Image
			img, err = s.ImportACI(context.Background(), f)
			fmt.Println(img.ID)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

var fixedTime = time.Date(2021, 5, 6, 7, 8, 9, 0, time.UTC)

type imageSpec struct {
	name   string
	labels map[string]string
	deps   []types.Dependency
	pwl    []string
	files  map[string]string // path in rootfs -> content; a trailing / makes a directory
}

func manifestOf(t testing.TB, spec imageSpec) *schema.ImageManifest {
	t.Helper()
	im := schema.BlankImageManifest()
	im.Name = *types.MustACIdentifier(spec.name)
	for k, v := range spec.labels {
		im.Labels = append(im.Labels, types.Label{Name: types.ACIdentifier(k), Value: v})
	}
	im.Dependencies = spec.deps
	im.PathWhitelist = spec.pwl
	return im
}

// buildACI returns an uncompressed ACI made with manifests.WriteACI.
func buildACI(t testing.TB, spec imageSpec) []byte {
	t.Helper()
	rootfs := t.TempDir()
	for p, content := range spec.files {
		full := filepath.Join(rootfs, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := manifests.WriteACI(&b, manifestOf(t, spec), rootfs, manifests.BuildOptions{ModTime: &fixedTime, OwnerRoot: true}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func imageID(aci []byte) string {
	h := sha512.Sum512(aci)
	return "sha512-" + hex.EncodeToString(h[:])
}

type ent struct {
	hdr  tar.Header
	body string
}

func rawTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range ents {
		h := e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func regEnt(name, body string) ent {
	return ent{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg}, body: body}
}

func dirEnt(name string) ent {
	return ent{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}}
}

func manifestJSON(t testing.TB, name string) string {
	t.Helper()
	b, err := manifestOf(t, imageSpec{name: name}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func xzip(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw, err := xz.NewWriter(&out)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func bzip(t testing.TB, b []byte) []byte {
	t.Helper()
	if _, err := exec.LookPath("bzip2"); err != nil {
		t.Skip("requires the bzip2 command to make a bzip2 ACI; run: apt-get install bzip2")
	}
	cmd := exec.Command("bzip2", "-c")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func openStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "cas"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustImport(t testing.TB, s *Store, aci []byte) Image {
	t.Helper()
	img, err := s.ImportACI(t.Context(), bytes.NewReader(aci))
	if err != nil {
		t.Fatalf("ImportACI: %v", err)
	}
	return img
}

// assertEmpty fails if the store holds any file but locks.
func assertEmpty(t testing.TB, s *Store) {
	t.Helper()
	for _, d := range []string{"blob", "images", "manifest", "tmp", "tree"} {
		filepath.WalkDir(filepath.Join(s.dir, d), func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				t.Errorf("walk %s: %v", p, err)
				return nil
			}
			if !e.IsDir() || (d == "tree" && p != filepath.Join(s.dir, d)) {
				t.Errorf("store not empty: %s", p)
			}
			return nil
		})
	}
}

func TestImportFormats(t *testing.T) {
	aci := buildACI(t, imageSpec{name: "example.com/hello", labels: map[string]string{"version": "1.0", "os": "linux", "arch": "amd64"},
		files: map[string]string{"bin/hello": "hi", "etc/": ""}})
	want := imageID(aci)
	formats := []struct {
		name string
		data func(t *testing.T) []byte
	}{
		{"plain", func(*testing.T) []byte { return aci }},
		{"gzip", func(t *testing.T) []byte { return gz(t, aci) }},
		{"bzip2", func(t *testing.T) []byte { return bzip(t, aci) }},
		{"xz", func(t *testing.T) []byte { return xzip(t, aci) }},
	}
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			s := openStore(t)
			img := mustImport(t, s, f.data(t))
			if img.ID != want || img.Name != "example.com/hello" || img.Size != int64(len(aci)) || img.Kind != KindACI {
				t.Errorf("ImportACI = %+v, want ID %s, name example.com/hello, size %d, kind aci", img, want, len(aci))
			}
			if v, _ := img.Labels.Get("version"); v != "1.0" {
				t.Errorf("version label = %q, want 1.0", v)
			}
			again := mustImport(t, s, f.data(t))
			if diff := cmp.Diff(img, again); diff != "" {
				t.Errorf("re-import changed the row (-first +second):\n%s", diff)
			}
			got, err := s.Get(want)
			if err != nil || !got.ImportTime.Equal(img.ImportTime) {
				t.Errorf("Get = %+v, %v", got, err)
			}
			im, err := s.Manifest(want)
			if err != nil || im.Name != "example.com/hello" {
				t.Errorf("Manifest = %v, %v", im, err)
			}
			rc, err := s.OpenBlob(want)
			if err != nil {
				t.Fatal(err)
			}
			blob, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(blob, aci) {
				t.Error("blob differs from the uncompressed ACI")
			}
			list, err := s.List()
			if err != nil || len(list) != 1 {
				t.Errorf("List = %v, %v; want one image", list, err)
			}
			if ents, _ := os.ReadDir(filepath.Join(s.dir, "tmp")); len(ents) != 0 {
				t.Errorf("cas/tmp not empty: %v", ents)
			}
		})
	}
}

func TestImportBad(t *testing.T) {
	m := manifestJSON(t, "example.com/bad")
	good := rawTar(t, regEnt("manifest", m), dirEnt("rootfs/"), regEnt("rootfs/f", strings.Repeat("x", 10000)))
	gzGood := gz(t, good)
	corrupt := bytes.Clone(gzGood)
	corrupt[len(corrupt)/2] ^= 0xff
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"empty input", nil, "no manifest"},
		{"truncated tar", good[:len(good)/2], "read tar"},
		{"truncated gzip", gzGood[:len(gzGood)-10], "unexpected EOF"},
		{"corrupt gzip", corrupt, ""},
		{"corrupt xz", xzip(t, good)[:40], ""},
		{"extra top-level entry", rawTar(t, regEnt("manifest", m), dirEnt("rootfs/"), regEnt("extra", "x")), `"extra": unexpected top-level entry`},
		{"missing manifest", rawTar(t, dirEnt("rootfs/"), regEnt("rootfs/f", "x")), "no manifest"},
		{"missing rootfs", rawTar(t, regEnt("manifest", m)), "no rootfs"},
		{"rootfs not a directory", rawTar(t, regEnt("manifest", m), regEnt("rootfs", "x")), "rootfs is not a directory"},
		{"manifest not a file", rawTar(t, dirEnt("manifest/"), dirEnt("rootfs/")), "not a regular file"},
		{"invalid manifest json", rawTar(t, regEnt("manifest", "{not json"), dirEnt("rootfs/")), "image manifest"},
		{"wrong acKind", rawTar(t, regEnt("manifest", strings.Replace(m, "ImageManifest", "PodManifest", 1)), dirEnt("rootfs/")), "image manifest"},
		{"dotdot entry", rawTar(t, regEnt("manifest", m), dirEnt("rootfs/"), regEnt("../x", "evil")), `"../x"`},
		{"rootfs dotdot entry", rawTar(t, regEnt("manifest", m), dirEnt("rootfs/"), regEnt("rootfs/../../x", "evil")), `"rootfs/../../x"`},
		{"absolute entry", rawTar(t, regEnt("manifest", m), dirEnt("rootfs/"), regEnt("/etc/x", "evil")), `"/etc/x"`},
		{"duplicate entry", rawTar(t, regEnt("manifest", m), dirEnt("rootfs/"), regEnt("rootfs/a", "1"), regEnt("rootfs/./a", "2")), "duplicate"},
		{"hard link outside rootfs", rawTar(t, regEnt("manifest", m), dirEnt("rootfs/"),
			ent{hdr: tar.Header{Name: "rootfs/m", Typeflag: tar.TypeLink, Linkname: "manifest"}}), "outside rootfs"},
		{"entry below a symlink", rawTar(t, regEnt("manifest", m), dirEnt("rootfs/"),
			ent{hdr: tar.Header{Name: "rootfs/etc", Typeflag: tar.TypeSymlink, Linkname: "/etc"}}, regEnt("rootfs/etc/passwd", "evil")), `"rootfs/etc" is a symlink`},
		{"unsupported entry type", rawTar(t, regEnt("manifest", m), dirEnt("rootfs/"),
			ent{hdr: tar.Header{Name: "rootfs/c", Typeflag: tar.TypeCont}}), "unsupported entry type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := openStore(t)
			img, err := s.ImportACI(t.Context(), bytes.NewReader(tc.data))
			if err == nil {
				t.Fatalf("ImportACI succeeded: %+v", img)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ImportACI error = %v, want one containing %s", err, tc.wantErr)
			}
			assertEmpty(t, s)
		})
	}
}

func TestImportCancelled(t *testing.T) {
	s := openStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	aci := buildACI(t, imageSpec{name: "example.com/x", files: map[string]string{"f": "x"}})
	if _, err := s.ImportACI(ctx, bytes.NewReader(aci)); !errors.Is(err, context.Canceled) {
		t.Fatalf("ImportACI with cancelled context = %v, want context.Canceled", err)
	}
	assertEmpty(t, s)
}

func TestImportConcurrent(t *testing.T) {
	s := openStore(t)
	aci := gz(t, buildACI(t, imageSpec{name: "example.com/big", files: map[string]string{"big": strings.Repeat("0123456789", 200000)}}))
	var wg sync.WaitGroup
	ids := make([]string, 8)
	errs := make([]error, 8)
	for i := range 8 {
		wg.Go(func() {
			var img Image
			img, errs[i] = s.ImportACI(t.Context(), bytes.NewReader(aci))
			ids[i] = img.ID
		})
	}
	wg.Wait()
	for i := range 8 {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Errorf("import %d = %s, %v; want %s", i, ids[i], errs[i], ids[0])
		}
	}
	checkOneImage(t, s, ids[0])
}

func checkOneImage(t *testing.T, s *Store, id string) {
	t.Helper()
	list, err := s.List()
	if err != nil || len(list) != 1 || list[0].ID != id {
		t.Errorf("List = %v, %v; want only %s", list, err, id)
	}
	if ents, _ := os.ReadDir(filepath.Join(s.dir, "tmp")); len(ents) != 0 {
		t.Errorf("cas/tmp not empty: %v", ents)
	}
	if _, err := s.Render(t.Context(), id); err != nil {
		t.Errorf("Render: %v", err)
	}
}

func TestImportProcesses(t *testing.T) {
	s := openStore(t)
	aci := buildACI(t, imageSpec{name: "example.com/big", files: map[string]string{"big": strings.Repeat("abcdefghij", 1000000)}})
	p := filepath.Join(t.TempDir(), "img.aci")
	if err := os.WriteFile(p, gz(t, aci), 0o644); err != nil {
		t.Fatal(err)
	}
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for range 2 {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperStoreEnv+"="+s.dir, helperACIEnv+"="+p)
		out := &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	want := imageID(aci)
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("import process %d: %v: %s", i, err, outs[i])
		}
		if got := strings.TrimSpace(outs[i].String()); got != want {
			t.Errorf("import process %d printed %q, want %s", i, got, want)
		}
	}
	checkOneImage(t, s, want)
}

func TestResolve(t *testing.T) {
	s := openStore(t)
	v1 := mustImport(t, s, buildACI(t, imageSpec{name: "example.com/app", labels: map[string]string{"version": "1.0", "os": "linux", "arch": "amd64"}}))
	v2 := mustImport(t, s, buildACI(t, imageSpec{name: "example.com/app", labels: map[string]string{"version": "2.0", "os": "linux", "arch": "aarch64"}}))
	other := mustImport(t, s, buildACI(t, imageSpec{name: "example.com/other"}))
	// Two rows sharing a 12-digit prefix cannot come from real sha512s.
	fakeA := "sha512-" + strings.Repeat("a", 12) + "0" + strings.Repeat("b", 115)
	fakeB := "sha512-" + strings.Repeat("a", 12) + "1" + strings.Repeat("b", 115)
	for _, id := range []string{fakeA, fakeB} {
		if err := s.writeRow(Image{ID: id, Name: "example.com/fake", ImportTime: fixedTime, Kind: KindACI}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		ref     string
		want    string
		wantErr error
		errText string
	}{
		{ref: v1.ID, want: v1.ID},
		{ref: v1.ID[:7+12], want: v1.ID},
		{ref: strings.ToUpper(other.ID[7:7+20]) + "", errText: "name"}, // not sha512-: a name, and invalid
		{ref: "sha512-" + strings.ToUpper(other.ID[7:7+20]), want: other.ID},
		{ref: v1.ID[:7+1], errText: "image ID too short"},
		{ref: "sha512-" + strings.Repeat("c", 2), wantErr: ErrNotFound, errText: "no image IDs found"},
		{ref: "sha512-xyz123456789abc", errText: "invalid"},
		{ref: "sha512-" + strings.Repeat("a", 12), wantErr: ErrAmbiguous},
		{ref: fakeA[:7+13], want: fakeA},
		{ref: "sha512-" + strings.Repeat("c", 20), wantErr: ErrNotFound},
		{ref: "sha512-" + strings.Repeat("c", 128), wantErr: ErrNotFound},
		{ref: "example.com/app", want: v2.ID},
		{ref: "example.com/app:1.0", want: v1.ID},
		{ref: "example.com/app,version=1.0", want: v1.ID},
		{ref: "example.com/app,os=linux,arch=amd64", want: v1.ID},
		{ref: "example.com/app:2.0,arch=aarch64", want: v2.ID},
		{ref: "example.com/app:3.0", wantErr: ErrNotFound},
		{ref: "example.com/app,arch=riscv64", wantErr: ErrNotFound},
		{ref: "example.com/nope", wantErr: ErrNotFound},
		{ref: "example.com/app,os", errText: "want name=value"},
		{ref: "example.com/app:", errText: "empty version"},
		{ref: "Bad Name", errText: "name"},
	}
	for _, tc := range tests {
		got, err := s.Resolve(tc.ref)
		switch {
		case tc.wantErr != nil || tc.errText != "":
			if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) || !strings.Contains(err.Error(), tc.errText) {
				t.Errorf("Resolve(%q) = %v, %v; want error %v %q", tc.ref, got.ID, err, tc.wantErr, tc.errText)
			}
			if tc.wantErr != nil && !strings.Contains(err.Error(), tc.ref) {
				t.Errorf("Resolve(%q) error %q does not name the reference", tc.ref, err)
			}
		case err != nil || got.ID != tc.want:
			t.Errorf("Resolve(%q) = %s, %v; want %s", tc.ref, got.ID, err, tc.want)
		}
	}
}

func TestTouchRemove(t *testing.T) {
	s := openStore(t)
	img := mustImport(t, s, buildACI(t, imageSpec{name: "example.com/app", files: map[string]string{"f": "x"}}))
	time.Sleep(10 * time.Millisecond)
	if err := s.Touch(t.Context(), img.ID); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(img.ID)
	if err != nil || !got.LastUsed.After(img.LastUsed) || !got.ImportTime.Equal(img.ImportTime) {
		t.Errorf("after Touch: %+v, %v; want LastUsed after %v", got, err, img.LastUsed)
	}
	tree, err := s.Render(t.Context(), img.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(t.Context(), img.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(img.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Remove = %v, want ErrNotFound", err)
	}
	if err := s.Remove(t.Context(), img.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Remove = %v, want ErrNotFound", err)
	}
	if err := s.RemoveTree(t.Context(), tree.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("RemoveTree of a removed image's tree = %v, want ErrNotFound", err)
	}
	assertEmpty(t, s)
	if err := s.Touch(t.Context(), "sha512-../../x"); err == nil {
		t.Error("Touch of an invalid ID succeeded")
	}
}
