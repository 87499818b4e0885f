package manifests

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const hostSecret = "HOST SECRET: never in an archive"

// hostileTree makes base/rootfs with a regular file, a symlink to a host
// file, a symlink to a host directory, and base/secret outside the tree.
func hostileTree(t *testing.T) (rootfs, secret string) {
	t.Helper()
	base := t.TempDir()
	secret = filepath.Join(base, "secret")
	rootfs = filepath.Join(base, "rootfs")
	if err := os.WriteFile(secret, []byte(hostSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc", "app.conf"), []byte("conf"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"etc/passwd": secret, "hostdir": base, "rel": "../secret"} {
		if err := os.Symlink(target, filepath.Join(rootfs, name)); err != nil {
			t.Fatal(err)
		}
	}
	return rootfs, secret
}

func testManifest(t *testing.T) []byte {
	return []byte(`{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/export"}`)
}

func writeTestACI(t *testing.T, rootfs string) ([]byte, error) {
	t.Helper()
	im, err := DecodeImage(testManifest(t))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	err = WriteACI(&b, im, rootfs, BuildOptions{})
	return b.Bytes(), err
}

// entries reads an archive into name -> header and content.
func entries(t *testing.T, b []byte) (map[string]*tar.Header, map[string]string) {
	t.Helper()
	hdrs, bodies := map[string]*tar.Header{}, map[string]string{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hdrs, bodies
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		hdrs[h.Name], bodies[h.Name] = h, string(body)
	}
}

// TestWriteACISymlinksNotFollowed: symlinks that a hostile app left in its
// rootfs, pointing at host files and directories, are archived as symlinks.
func TestWriteACISymlinksNotFollowed(t *testing.T) {
	rootfs, secret := hostileTree(t)
	b, err := writeTestACI(t, rootfs)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(hostSecret)) {
		t.Fatal("the archive holds a host file's content")
	}
	hdrs, bodies := entries(t, b)
	for name, target := range map[string]string{"rootfs/etc/passwd": secret, "rootfs/rel": "../secret"} {
		h := hdrs[name]
		if h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != target {
			t.Errorf("%s: header %+v, want a symlink to %s", name, h, target)
		}
	}
	if h := hdrs["rootfs/hostdir"]; h == nil || h.Typeflag != tar.TypeSymlink {
		t.Errorf("rootfs/hostdir: header %+v, want a symlink", h)
	}
	for name := range hdrs {
		if strings.HasPrefix(name, "rootfs/hostdir/") {
			t.Errorf("the walk went through the symlink to a host directory: %s", name)
		}
	}
	if bodies["rootfs/etc/app.conf"] != "conf" {
		t.Errorf("rootfs/etc/app.conf = %q", bodies["rootfs/etc/app.conf"])
	}
}

// TestWriteACISwappedForSymlink: a regular file replaced by a symlink to a
// host file after it was Lstat'ed (a writer racing the build) must not
// bring the host file into the archive.
func TestWriteACISwappedForSymlink(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target func(rootfs, secret string) string
	}{
		{"absolute host path", func(_, secret string) string { return secret }},
		{"relative path out", func(_, _ string) string { return "../../secret" }},
		{"other file in the tree", func(rootfs, _ string) string { return "passwd" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rootfs, secret := hostileTree(t)
			swapped := false
			openHook = func(rel string) {
				if rel != "etc/app.conf" {
					return
				}
				p := filepath.Join(rootfs, rel)
				tmp := p + ".swap"
				if err := os.Symlink(tc.target(rootfs, secret), tmp); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(tmp, p); err != nil {
					t.Fatal(err)
				}
				swapped = true
			}
			t.Cleanup(func() { openHook = nil })
			b, err := writeTestACI(t, rootfs)
			if !swapped {
				t.Fatal("hook did not run")
			}
			// The old header's size (4 bytes) bounds what a followed
			// symlink could leak: look for that much of the secret.
			if bytes.Contains(b, []byte(hostSecret[:4])) {
				t.Fatal("the archive holds the host file's content")
			}
			if err == nil {
				t.Fatal("WriteACI succeeded although a file changed under it")
			}
			if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "app.conf") {
				t.Errorf("error %q does not name the file on one line", err)
			}
		})
	}
}

// TestWriteACIFileSwapped: a file replaced by another regular file between
// Lstat and open is an error (its header no longer describes it).
func TestWriteACIFileSwapped(t *testing.T) {
	rootfs, _ := hostileTree(t)
	openHook = func(rel string) {
		if rel == "etc/app.conf" {
			p := filepath.Join(rootfs, rel)
			os.WriteFile(p+".new", []byte("other content"), 0o644)
			os.Rename(p+".new", p)
		}
	}
	t.Cleanup(func() { openHook = nil })
	if _, err := writeTestACI(t, rootfs); !errors.Is(err, errChanged) {
		t.Fatalf("WriteACI: %v, want errChanged", err)
	}
}

func TestBuildOptionsUnshift(t *testing.T) {
	t.Parallel()
	const shift, count = 1 << 28, 1 << 16
	tests := []struct {
		name string
		o    BuildOptions
		in   int
		want int
	}{
		{name: "no shift", o: BuildOptions{}, in: shift + 5, want: shift + 5},
		{name: "pod root", o: BuildOptions{IDShift: shift, IDCount: count}, in: shift, want: 0},
		{name: "pod user", o: BuildOptions{IDShift: shift, IDCount: count}, in: shift + 1000, want: 1000},
		{name: "last of range", o: BuildOptions{IDShift: shift, IDCount: count}, in: shift + count - 1, want: count - 1},
		{name: "above range", o: BuildOptions{IDShift: shift, IDCount: count}, in: shift + count, want: shift + count},
		{name: "already pod ID", o: BuildOptions{IDShift: shift, IDCount: count}, in: 1000, want: 1000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.o.unshift(tc.in); got != tc.want {
				t.Errorf("unshift(%d) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}
