package tests

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// tarEnt is one entry of a test layer: a directory if name ends in "/".
type tarEnt struct {
	name, body string
	mode       int64
}

func layerTar(t testing.TB, ents ...tarEnt) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		if strings.HasSuffix(e.name, "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if e.mode != 0 {
			h.Mode = e.mode
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func ociLayer(t testing.TB, zstd bool, ents ...tarEnt) v1.Layer {
	t.Helper()
	b := layerTar(t, ents...)
	opts := []tarball.LayerOption{tarball.WithMediaType(types.OCILayer)}
	if zstd {
		opts = []tarball.LayerOption{tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd)}
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// inspectLayer is a base layer holding the static inspect program.
func inspectLayer(t testing.TB) v1.Layer {
	t.Helper()
	b, err := os.ReadFile(testutil.BuildInspect(t))
	if err != nil {
		t.Fatal(err)
	}
	return ociLayer(t, false, tarEnt{name: "inspect", body: string(b), mode: 0o755}, tarEnt{name: "etc/"}, tarEnt{name: "tmp/", mode: 0o1777})
}

func ociImg(t testing.TB, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = "linux", hostGOARCH(), cfg
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

func layerDigest(t testing.TB, l v1.Layer) string {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func fetchOCI(t *testing.T, c *testutil.Ctx, ref string) string {
	t.Helper()
	return strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", ref).Stdout)
}

// layerDirs lists cas/layers/sha256, temporaries included.
func layerDirs(c *testutil.Ctx) []string {
	ents, _ := os.ReadDir(filepath.Join(c.DataDir, "cas", "layers", "sha256"))
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestOCIRunWhiteouts(t *testing.T) {
	testutil.RequireRoot(t)
	reg := testutil.NewRegistry(t)
	mid := ociLayer(t, true, // zstd; the opaque marker after the entry it must keep
		tarEnt{name: "etc/.wh.a"}, tarEnt{name: ".wh.gone-dir"},
		tarEnt{name: "opq/"}, tarEnt{name: "opq/z", body: "content-z\n"}, tarEnt{name: "opq/.wh..wh..opq"})
	img := ociImg(t, v1.Config{Entrypoint: []string{"/inspect"}, Env: []string{"FOO=bar"}, StopSignal: "SIGINT", ExposedPorts: map[string]struct{}{"80/tcp": {}}},
		inspectLayer(t),
		ociLayer(t, false, tarEnt{name: "etc/a", body: "content-a\n"}, tarEnt{name: "etc/keep", body: "content-keep\n"},
			tarEnt{name: "opq/"}, tarEnt{name: "opq/y", body: "content-y\n"}, tarEnt{name: "gone-dir/"}, tarEnt{name: "gone-dir/f", body: "content-f\n"}),
		mid,
		ociLayer(t, false, tarEnt{name: "etc/new", body: "content-new\n"}))
	reg.Push(t, "test/img:1", img)
	ref := reg.Ref("test/img:1")
	c := testutil.NewCtx(t)

	res := c.Run(t, "run", "--net=host", ref)
	wantExit(t, res, 254)
	oneLineError(t, res, ref, "--insecure-options=image")
	storeEmpty(t, c)

	res = runInsecure(t, c, "--net=host", ref, "--", "--print-env=FOO",
		"--print-file=/etc/a", "--print-file=/etc/keep", "--print-file=/opq/y", "--print-file=/opq/z",
		"--print-file=/etc/new", "--print-file=/gone-dir/f")
	wantExit(t, res, 0)
	for _, want := range []string{"content-keep", "content-z", "content-new"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("%s missing from the pod's view:\n%s", want, res)
		}
	}
	for _, gone := range []string{"content-a", "content-y", "content-f"} {
		if strings.Contains(res.Stdout, gone) {
			t.Errorf("%s still visible: a whiteout did not take effect:\n%s", gone, res)
		}
	}
	if n := len(layerDirs(c)); n != 4 {
		t.Errorf("%d layer directories, want 4: %v", n, layerDirs(c))
	}
	list := c.MustRun(t, "image", "list").Stdout
	if !strings.Contains(list, strings.ReplaceAll(reg.Host, ":", "-")+"/test/img") {
		t.Errorf("image list does not show the OCI image:\n%s", list)
	}
	// The image's stop signal reached stage1.
	found := false
	for _, p := range podDirs(t, c) {
		if b, err := os.ReadFile(filepath.Join(p, "stage1-options.json")); err == nil && strings.Contains(string(b), `"SIGINT"`) {
			found = true
		}
	}
	if !found {
		t.Error("no pod's stage1-options.json carries the image's StopSignal")
	}
}

func TestOCISharedLayers(t *testing.T) {
	testutil.RequireRoot(t)
	reg := testutil.NewRegistry(t)
	l1, l2 := inspectLayer(t), ociLayer(t, false, tarEnt{name: "two", body: "2"})
	l3, l4 := ociLayer(t, false, tarEnt{name: "three", body: "3"}), ociLayer(t, true, tarEnt{name: "four", body: "4"})
	cfg := v1.Config{Entrypoint: []string{"/inspect"}}
	reg.Push(t, "test/shared:1", ociImg(t, cfg, l1, l2, l3))
	reg.Push(t, "test/shared:2", ociImg(t, cfg, l1, l2, l4))
	c := testutil.NewCtx(t)
	id1 := fetchOCI(t, c, reg.Ref("test/shared:1"))
	for _, l := range []v1.Layer{l1, l2, l3} {
		if n := reg.BlobGets(layerDigest(t, l)); n != 1 {
			t.Errorf("layer %s downloaded %d times, want 1", layerDigest(t, l), n)
		}
	}
	id2 := fetchOCI(t, c, reg.Ref("test/shared:2"))
	if id1 == id2 {
		t.Fatal("two different manifests got one image ID")
	}
	for l, want := range map[v1.Layer]int{l1: 1, l2: 1, l3: 1, l4: 1} {
		if n := reg.BlobGets(layerDigest(t, l)); n != want {
			t.Errorf("after the second tag, layer %s downloaded %d times, want %d", layerDigest(t, l), n, want)
		}
	}
	if n := len(layerDirs(c)); n != 4 {
		t.Errorf("%d layer directories, want 4 (shared layers stored once): %v", n, layerDirs(c))
	}
	// The same manifest is the same image, with a stable ID.
	if again := fetchOCI(t, c, reg.Ref("test/shared:1")); again != id1 {
		t.Errorf("refetch gave %s, want %s", again, id1)
	}
	wantExit(t, runInsecure(t, c, "--net=host", reg.Ref("test/shared:2"), "--", "--read-file=/four", "--exit-code=6"), 6)

	// The same image from an OCI layout.
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(ociImg(t, cfg, l1, l2, l3), layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}
	if id := fetchOCI(t, c, "oci:"+dir+":v1"); id != id1 {
		t.Errorf("layout image got ID %s, want the registry's %s", id, id1)
	}
}

func TestOCIBadInputs(t *testing.T) {
	testutil.RequireRoot(t)
	reg := testutil.NewRegistry(t)
	good := ociLayer(t, false, tarEnt{name: "file", body: "x"})
	cfg := v1.Config{Cmd: []string{"/x"}}

	reg.PushRaw(t, "bad/unknown", "1", "application/vnd.example.unknown+json", []byte(`{"schemaVersion":2}`))

	other := ociImg(t, cfg, good)
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "s390x-nonexistent"}}})
	reg.PushIndex(t, "bad/platform:1", idx)

	trunc := ociLayer(t, false, tarEnt{name: "big", body: strings.Repeat("0123456789", 100000)})
	reg.Push(t, "bad/truncated:1", ociImg(t, cfg, trunc))
	reg.Truncate(layerDigest(t, trunc), true)

	img := ociImg(t, cfg, good)
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.RootFS.DiffIDs[0] = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	badDiff, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	reg.Push(t, "bad/diffid:1", badDiff)

	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(ociImg(t, cfg, good), layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "1"})); err != nil {
		t.Fatal(err)
	}
	h, _ := good.Digest()
	rc, _ := ociLayer(t, false, tarEnt{name: "file", body: "y"}).Compressed()
	evil, _ := io.ReadAll(rc)
	if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", h.Hex), evil, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, ref string
		want      []string
	}{
		{"unknown media type", reg.Ref("bad/unknown:1"), []string{"unknown media type", "application/vnd.example.unknown+json"}},
		{"index without host platform", reg.Ref("bad/platform:1"), []string{"no image for this platform", "linux/" + hostGOARCH()}},
		{"truncated download", reg.Ref("bad/truncated:1"), []string{layerDigest(t, trunc)}},
		{"diff_id mismatch", reg.Ref("bad/diffid:1"), []string{"diff_id mismatch"}},
		{"digest mismatch", "oci:" + dir + ":1", []string{"digest mismatch", h.String()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testutil.NewCtx(t)
			res := c.Run(t, "--insecure-options=image", "fetch", tc.ref)
			wantExit(t, res, 254)
			t.Logf("stderr: %s", res.Stderr)
			oneLineError(t, res, tc.want...)
			storeEmpty(t, c)
			if l := layerDirs(c); len(l) != 0 {
				t.Errorf("layers left in the store: %v", l)
			}
		})
	}
}

func hostGOARCH() string { return runtime.GOARCH }
