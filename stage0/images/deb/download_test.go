package deb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseURIs(t *testing.T) {
	out := `'http://deb.debian.org/debian/pool/main/b/busybox/busybox-static_1.35.0-4%2bb3_amd64.deb' busybox-static_1%3a1.35.0-4+b3_amd64.deb 928188 SHA256:3D3FDBE91D4660C873E14B092C213FE81C1DA6362DAA236EB25D0171EB108744
`
	got, err := parseURIs(out)
	if err != nil {
		t.Fatal(err)
	}
	w := fileSum{928188, "3d3fdbe91d4660c873e14b092c213fe81c1da6362daa236eb25d0171eb108744"}
	if got["busybox-static_1%3a1.35.0-4+b3_amd64.deb"] != w {
		t.Errorf("got %+v", got)
	}
	for _, bad := range []string{"'u' f 12 MD5Sum:abc", "'u' f x SHA256:" + strings.Repeat("a", 64), "'u' f 12"} {
		if _, err := parseURIs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCopyChecked(t *testing.T) {
	dir := t.TempDir()
	content := []byte("a debian package")
	sum := sha256.Sum256(content)
	want := fileSum{int64(len(content)), hex.EncodeToString(sum[:])}
	src := filepath.Join(dir, "p.deb")
	if err := os.WriteFile(src, content, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := copyChecked(src, filepath.Join(dir, "ok"), want); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "ok")); string(b) != string(content) {
		t.Errorf("copy holds %q", b)
	}
	// Swapped content, longer content, a symlink: refused.
	os.WriteFile(src, []byte("a debian packagE"), 0o644)
	if err := copyChecked(src, filepath.Join(dir, "c1"), want); err == nil {
		t.Error("changed content accepted")
	}
	os.WriteFile(src, append(content, 'x'), 0o644)
	if err := copyChecked(src, filepath.Join(dir, "c2"), want); err == nil {
		t.Error("longer content accepted")
	}
	os.WriteFile(filepath.Join(dir, "real"), content, 0o644)
	os.Remove(src)
	os.Symlink("real", src)
	if err := copyChecked(src, filepath.Join(dir, "c3"), want); err == nil {
		t.Error("symlink followed")
	}
}

func TestNoLists(t *testing.T) {
	listsOverride = t.TempDir()
	defer func() { listsOverride = "" }()
	out := filepath.Join(t.TempDir(), "x.aci")
	_, err := Build(context.Background(), out, BuildOptions{Packages: []string{"busybox-static"}})
	if !errors.Is(err, ErrNoLists) || !strings.Contains(err.Error(), "apt-get update") {
		t.Errorf("err %v, want ErrNoLists", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("output written")
	}
}

func TestManifestOptions(t *testing.T) {
	pkgs := []Package{{"busybox-static", "1:1.35.0-4", "amd64"}}
	o := BuildOptions{Packages: []string{"busybox-static"}, Exec: []string{"/bin/busybox", "httpd", "-f"},
		Env: []string{"A=b=c"}, Ports: []string{"http:tcp:80"}, User: "33"}
	im, err := o.manifest(pkgs)
	if err != nil {
		t.Fatal(err)
	}
	if im.Name != "debian.org/busybox-static" || im.App.User != "33" || im.App.Group != "0" {
		t.Errorf("manifest %+v", im)
	}
	if v, _ := im.App.Environment.Get("A"); v != "b=c" {
		t.Errorf("env A=%q", v)
	}
	if len(im.App.Ports) != 1 || im.App.Ports[0].Port != 80 {
		t.Errorf("ports %+v", im.App.Ports)
	}
	if v, _ := im.Labels.Get("version"); !strings.HasPrefix(v, "1:1.35.0-4-") {
		t.Errorf("version %q", v)
	}
	for _, bad := range []BuildOptions{
		{Exec: []string{"bin/sh"}},
		{Exec: []string{"/bin/sh"}, Env: []string{"NOVALUE"}},
		{Exec: []string{"/bin/sh"}, Ports: []string{"http:sctp:80"}},
		{Exec: []string{"/bin/sh"}, Ports: []string{"http:tcp:0"}},
		{Name: "Not An Identifier"},
		{Env: []string{"A=b"}},
	} {
		bad.Packages = []string{"busybox-static"}
		if _, err := bad.manifest(nil); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}

	// A rebuild keeps everything but the record and the version label.
	base, _ := o.manifest(pkgs)
	base.Labels = append(base.Labels, base.Labels[0])
	base.Labels[len(base.Labels)-1].Name, base.Labels[len(base.Labels)-1].Value = "channel", "stable"
	ro, err := RebuildOptions(base)
	if err != nil {
		t.Fatal(err)
	}
	newer := []Package{{"busybox-static", "1:1.36.0-1", "amd64"}}
	im, err = ro.manifest(newer)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := im.Labels.Get("channel"); v != "stable" {
		t.Errorf("label channel lost: %v", im.Labels)
	}
	if v, _ := im.Labels.Get("version"); !strings.HasPrefix(v, "1:1.36.0-1-") {
		t.Errorf("version %q", v)
	}
	if got, _ := Recorded(im); len(got) != 1 || got[0] != newer[0] {
		t.Errorf("record %+v", got)
	}
	if im.App == nil || im.App.Exec[1] != "httpd" {
		t.Errorf("app lost: %+v", im.App)
	}
}
