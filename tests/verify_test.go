package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// flipByte changes the byte at offset off of file p (negative: from the end).
func flipByte(t *testing.T, p string, off int64) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if off < 0 {
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		off += fi.Size()
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestImageVerify corrupts a stored blob, a rendered tree and an unpacked
// OCI layer: `rkt image verify` reports each, a corrupt blob is refused at
// its next render (never run), and --repair removes them so that a fetch
// and a run restore the store (issue 17).
func TestImageVerify(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/verify", testutil.WithFile("/data.txt", "original", 0o644))
	other := testutil.NewACI(t, "rkt-ng.test/verify-tree", testutil.WithoutApp(), testutil.WithFile("/t.txt", "tree", 0o644))
	reg := testutil.NewRegistry(t)
	reg.Push(t, "test/verify:1", ociImg(t, v1.Config{Entrypoint: []string{"/inspect"}}, inspectLayer(t),
		ociLayer(t, false, tarEnt{name: "layer.txt", body: "layer"})))
	id := strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", aci).Stdout)
	otherID := strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", other).Stdout)
	ociID := fetchOCI(t, c, reg.Ref("test/verify:1"))
	c.MustRun(t, "image", "render", "--rootfs-only", "rkt-ng.test/verify-tree", filepath.Join(t.TempDir(), "r"))
	if res := c.MustRun(t, "image", "verify"); !strings.Contains(res.Stdout, "no corrupt entries") {
		t.Errorf("verify of an intact store: %s", res)
	}

	// 1. A blob: one byte of the stored tar (inside data.txt's content).
	blob := filepath.Join(c.DataDir, "cas", "blob", "sha512", strings.TrimPrefix(id, "sha512-"))
	b, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	off := strings.Index(string(b), "original")
	if off < 0 {
		t.Fatal("data.txt's content not found in the blob")
	}
	flipByte(t, blob, int64(off))
	// 2. A rendered tree: a file of its rootfs.
	trees := globAll(t, c, "cas/tree/deps-*/rootfs/t.txt")
	if len(trees) != 1 {
		t.Fatalf("rendered trees with t.txt: %v", trees)
	}
	if err := os.WriteFile(trees[0], []byte("TREE"), 0o644); err != nil {
		t.Fatal(err)
	}
	// 3. An OCI layer: its file.
	layers := globAll(t, c, "cas/layers/sha256/*/rootfs/layer.txt")
	if len(layers) != 1 {
		t.Fatalf("layers with layer.txt: %v", layers)
	}
	if err := os.WriteFile(layers[0], []byte("LAYER"), 0o644); err != nil {
		t.Fatal(err)
	}

	res := c.Run(t, "image", "verify")
	wantExit(t, res, 254)
	oneLineError(t, res, "corrupt store entries: 3", "--repair")
	for _, want := range []string{"corrupt image " + id, "corrupt tree deps-sha512-", "corrupt layer sha256:"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("verify output lacks %q:\n%s", want, res)
		}
	}
	// Only the named image is checked.
	res = c.Run(t, "image", "verify", otherID[:19])
	wantExit(t, res, 254)
	if !strings.Contains(res.Stdout, "corrupt tree") || strings.Contains(res.Stdout, "corrupt image") || strings.Contains(res.Stdout, "corrupt layer") {
		t.Errorf("verify of the tree's image must report its tree only:\n%s", res)
	}

	// A corrupt blob is refused at its next use; nothing runs.
	r := runInsecure(t, c, "--net=host", id, "--", "--print-msg=MUST-NOT-RUN")
	wantExit(t, r, 254)
	oneLineError(t, r, id, "corrupt")
	if strings.Contains(r.Stdout, "MUST-NOT-RUN") {
		t.Errorf("an image with a corrupt blob ran:\n%s", r)
	}

	res = c.MustRun(t, "image", "verify", "--repair")
	for _, want := range []string{"removed image " + id, "removed tree deps-sha512-", "removed layer sha256:"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("verify --repair output lacks %q:\n%s", want, res)
		}
	}
	if res := c.MustRun(t, "image", "verify"); !strings.Contains(res.Stdout, "no corrupt entries") {
		t.Errorf("verify after --repair: %s", res)
	}
	// Fetching and running restore everything.
	c.MustRun(t, "--insecure-options=image", "fetch", aci)
	wantExit(t, runInsecure(t, c, "--net=host", id, "--", "--read-file=/data.txt", "--exit-code=3"), 3)
	if again := fetchOCI(t, c, reg.Ref("test/verify:1")); again != ociID {
		t.Errorf("refetched OCI image %s, want %s", again, ociID)
	}
	r = runInsecure(t, c, "--net=host", ociID, "--", "--read-file=/layer.txt")
	wantExit(t, r, 0)
	if !strings.Contains(r.Stdout, "layer") || strings.Contains(r.Stdout, "LAYER") {
		t.Errorf("OCI image after repair and refetch: %s", r)
	}
	c.MustRun(t, "image", "render", "--rootfs-only", "--overwrite", "rkt-ng.test/verify-tree", filepath.Join(t.TempDir(), "r2"))
	if res := c.MustRun(t, "image", "verify"); !strings.Contains(res.Stdout, "no corrupt entries") {
		t.Errorf("verify after the refetch: %s", res)
	}
}

// TestImageVerifyRepairKeepsPodEntries: --repair does not remove a corrupt
// tree that a pod records (its overlay may be mounted on it); it says so and
// exits 254, and gc collects the tree with the pod.
func TestImageVerifyRepairKeepsPodEntries(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/verify-pod", testutil.WithFile("/data.txt", "original", 0o644))
	id := strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", aci).Stdout)
	uuid := strings.TrimSpace(c.MustRun(t, "prepare", "--quiet", id).Stdout)
	files := globAll(t, c, "cas/tree/deps-*/rootfs/data.txt")
	if len(files) != 1 {
		t.Fatalf("rendered trees with data.txt: %v", files)
	}
	if err := os.WriteFile(files[0], []byte("CHANGED"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := c.Run(t, "image", "verify", "--repair", id)
	wantExit(t, res, 254)
	oneLineError(t, res, "corrupt store entries: 1")
	if !strings.Contains(res.Stdout, "not removed tree deps-sha512-") || !strings.Contains(res.Stdout, "in use") {
		t.Errorf("verify --repair of a pod's tree:\n%s", res)
	}
	if _, err := os.Stat(files[0]); err != nil {
		t.Errorf("the pod's tree was removed: %v", err)
	}
	c.MustRun(t, "rm", uuid)
	c.MustRun(t, "gc", "--grace-period=0s")
	if trees := globAll(t, c, "cas/tree/*"); len(trees) != 0 {
		t.Errorf("gc left trees %v", trees)
	}
	c.MustRun(t, "image", "verify")
}
