package tests

import (
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// diffIDHex is the directory name of layer l in cas/layers/sha256.
func diffIDHex(t *testing.T, l v1.Layer) string {
	t.Helper()
	d, err := l.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	return d.Hex
}

// TestImageRmCollectsLayers: `rkt image rm` and `rkt image gc` remove the
// OCI layers that no remaining image uses, keep shared ones, and never
// those of an image a pod uses (issue 17).
func TestImageRmCollectsLayers(t *testing.T) {
	testutil.RequireRoot(t)
	reg := testutil.NewRegistry(t)
	l1, l2, l3 := inspectLayer(t), ociLayer(t, false, tarEnt{name: "two", body: "2"}), ociLayer(t, false, tarEnt{name: "three", body: "3"})
	cfg := v1.Config{Entrypoint: []string{"/inspect"}}
	reg.Push(t, "test/gc:1", ociImg(t, cfg, l1, l2))
	reg.Push(t, "test/gc:2", ociImg(t, cfg, l1, l3))
	c := testutil.NewCtx(t)
	id1 := fetchOCI(t, c, reg.Ref("test/gc:1"))
	id2 := fetchOCI(t, c, reg.Ref("test/gc:2"))
	if n := len(layerDirs(c)); n != 3 {
		t.Fatalf("%d layer directories, want 3: %v", n, layerDirs(c))
	}
	c.MustRun(t, "image", "rm", id1)
	want := []string{diffIDHex(t, l1), diffIDHex(t, l3)}
	slices.Sort(want)
	if got := layerDirs(c); !slices.Equal(got, want) {
		t.Errorf("layers after image rm of the first image = %v, want %v (shared and second image's kept)", got, want)
	}
	// A pod that exists keeps the image and its layers through image gc.
	wantExit(t, runInsecure(t, c, "--net=host", id2, "--", "--read-file=/three", "--exit-code=5"), 5)
	c.MustRun(t, "image", "gc", "--grace-period=0s")
	if got := layerDirs(c); !slices.Equal(got, want) {
		t.Errorf("layers after image gc beside a pod = %v, want %v", got, want)
	}
	c.MustRun(t, "gc", "--grace-period=0s")
	c.MustRun(t, "image", "gc", "--grace-period=0s")
	if got := layerDirs(c); len(got) != 0 {
		t.Errorf("layers after gc and image gc = %v, want none", got)
	}
	if list := c.MustRun(t, "image", "list", "--no-legend").Stdout; strings.TrimSpace(list) != "" {
		t.Errorf("image list after image gc:\n%s", list)
	}
}

// TestLayerGCBesideFetch: an OCI fetch has stored its layers and not yet
// written its image row when `rkt image gc` runs; gc must leave the layers
// alone, and the image then runs (issue 17).
func TestLayerGCBesideFetch(t *testing.T) {
	testutil.RequireRoot(t)
	reg := testutil.NewRegistry(t)
	l2 := ociLayer(t, false, tarEnt{name: "two", body: "2"})
	reg.Push(t, "test/race:1", ociImg(t, v1.Config{Entrypoint: []string{"/inspect"}}, inspectLayer(t), l2))
	c := testutil.NewCtx(t)
	fc, pause := c.PausePoint(t, "oci-layers-stored")
	fetch := fc.Start(t, "--insecure-options=image", "fetch", reg.Ref("test/race:1"))
	pause.Wait(t, 2*time.Minute)
	c.MustRun(t, "image", "gc", "--grace-period=0s")
	if n := len(layerDirs(c)); n != 2 {
		t.Errorf("image gc beside a fetch left %d layer directories, want 2: %v", n, layerDirs(c))
	}
	pause.Release(t)
	res := fetch.Wait(t, 2*time.Minute)
	if res.ExitCode != 0 {
		t.Fatalf("fetch beside image gc: %s", res)
	}
	id := strings.TrimSpace(res.Stdout)
	wantExit(t, runInsecure(t, c, "--net=host", id, "--", "--read-file=/two", "--exit-code=7"), 7)
}
