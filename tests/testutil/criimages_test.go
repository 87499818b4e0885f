package testutil

import (
	"archive/tar"
	"io"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestCRIImages pulls every name critest uses from the local registry,
// through the mirror the helper names for its registry, and checks the
// configs and which names share an image.
func TestCRIImages(t *testing.T) {
	r := NewRegistry(t)
	imgs := PushCRIImages(t, r)
	get := func(n string) (v1.Image, v1.Hash) {
		t.Helper()
		host, path, _ := strings.Cut(n, "/")
		m := imgs.Mirrors[host]
		if len(m) != 1 || m[0] != "http://"+r.Host {
			t.Fatalf("%s: mirrors %q", n, m)
		}
		ref, err := name.ParseReference(r.Host + "/" + path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := remote.Image(ref)
		if err != nil {
			t.Fatalf("pull %s: %v", n, err)
		}
		d, err := img.ConfigName()
		if err != nil {
			t.Fatal(err)
		}
		return img, d
	}
	users := map[string]string{
		"test-image-user-uid":            "1002",
		"test-image-user-username":       "www-data",
		"test-image-user-uid-group":      "1003:1004",
		"test-image-user-username-group": "www-data:1004",
		"test-image-predefined-group":    "1000",
	}
	for u, want := range users {
		img, _ := get(criToolsRegistry + u + ":latest")
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Config.User != want {
			t.Errorf("%s: user %q, want %q", u, cf.Config.User, want)
		}
		if cf.OS != "linux" || cf.Architecture == "" {
			t.Errorf("%s: platform %s/%s", u, cf.OS, cf.Architecture)
		}
	}
	same := func(names ...string) {
		t.Helper()
		_, first := get(names[0])
		for _, n := range names[1:] {
			if _, d := get(n); d != first {
				t.Errorf("%s and %s differ", names[0], n)
			}
		}
	}
	same(criToolsRegistry+"test-image-tags:1", criToolsRegistry+"test-image-tags:2", criToolsRegistry+"test-image-tags:3")
	same(criToolsRegistry+"test-image-tag:test", criToolsRegistry+"test-image-tag:all")
	same(CRIPauseImage, "k8s.gcr.io/pause:3.9")
	seen := map[v1.Hash]string{}
	for _, n := range []string{"1", "2", "3", "latest", "tags", "tag"} {
		tag := ":latest"
		if n == "tags" {
			tag = ":1"
		} else if n == "tag" {
			tag = ":test"
		}
		_, d := get(criToolsRegistry + "test-image-" + n + tag)
		if o, ok := seen[d]; ok {
			t.Errorf("test-image-%s is the same image as %s", n, o)
		}
		seen[d] = n
	}

	// The default image has a shell and the applets the specs run; the
	// web servers serve an index.
	img, _ := get(CRIDefaultImage)
	files := layerFiles(t, img)
	for _, f := range []string{"bin/busybox", "bin/sh", "bin/sleep", "bin/echo", "bin/ls", "bin/hostname", "bin/top", "bin/pgrep", "bin/wget", "bin/httpd", "bin/ipcs", "etc/passwd", "tmp/"} {
		if !files[f] {
			t.Errorf("default image lacks %s", f)
		}
	}
	for _, n := range []string{CRIWebServerImage, CRIHttpdImage} {
		img, _ := get(n)
		if !layerFiles(t, img)["www/index.html"] {
			t.Errorf("%s has no www/index.html", n)
		}
		cf, _ := img.ConfigFile()
		if _, ok := cf.Config.ExposedPorts["80/tcp"]; !ok || !strings.Contains(strings.Join(cf.Config.Entrypoint, " "), "httpd") {
			t.Errorf("%s: config %+v", n, cf.Config)
		}
	}
	// nonewprivs: nnp, setuid root.
	img, _ = get(CRINoNewPrivsImage)
	if mode := layerModes(t, img)["usr/local/bin/nnp"]; mode&0o4000 == 0 || mode&0o111 == 0 {
		t.Errorf("nonewprivs: nnp mode %o, want setuid and executable", mode)
	}
	if !strings.Contains(CRITestImagesFile(), "defaultTestContainerImage: "+CRIDefaultImage) {
		t.Error(CRITestImagesFile())
	}
}

func layerFiles(t *testing.T, img v1.Image) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for n := range layerModes(t, img) {
		out[n] = true
	}
	return out
}

// layerModes maps each path of img's layers to its tar mode.
func layerModes(t *testing.T, img v1.Image) map[string]int64 {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, l := range ls {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			out[h.Name] = h.Mode
		}
		rc.Close()
	}
	return out
}
