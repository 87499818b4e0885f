package store

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

func tarLayer(t testing.TB, ents ...ent) v1.Layer {
	t.Helper()
	b := rawTar(t, ents...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func ociImage(t testing.TB, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = "linux", "amd64", cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return mutate.MediaType(img, types.OCIManifestSchema1)
}

// corruptImage serves one layer's blob altered.
type corruptImage struct {
	v1.Image
	alter func([]byte) []byte
}

type corruptLayer struct {
	v1.Layer
	alter func([]byte) []byte
}

func (c corruptImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := c.Image.LayerByDigest(h)
	return corruptLayer{l, c.alter}, err
}

func (c corruptLayer) Compressed() (io.ReadCloser, error) {
	rc, err := c.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	return io.NopCloser(bytes.NewReader(c.alter(b))), err
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("requires root (uid=%d) for device whiteouts and trusted xattrs; run: sudo -E go test ./stage0/store/", os.Geteuid())
	}
}

func TestImportOCI(t *testing.T) {
	requireRoot(t)
	s := openStore(t)
	base := tarLayer(t, dirEnt("etc/"), regEnt("etc/passwd", "root:x:0:0::/root:/bin/sh\napp:x:1000:1234::/home/app:/bin/sh\n"),
		dirEnt("data/"), regEnt("data/old", "old"), regEnt("gone", "x"), dirEnt("opq/"), regEnt("opq/hidden", "h"))
	top := tarLayer(t, regEnt(".wh.gone", ""), regEnt("data/new", "new"), regEnt("opq/kept", "k"), regEnt("opq/.wh..wh..opq", ""),
		regEnt("data/.wh.absent", ""))
	img := ociImage(t, v1.Config{Entrypoint: []string{"/bin/app"}, Cmd: []string{"-v"}, User: "app", StopSignal: "SIGINT"}, base, top)
	ref := OCIRef{Name: "127.0.0.1-5000/test/app", Version: "1.0", Original: "docker://127.0.0.1:5000/test/app:1.0"}
	row, err := s.ImportOCI(t.Context(), img, ref, OCIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := img.RawManifest()
	if want := imageID(raw); row.ID != want {
		t.Errorf("ID %s, want sha512 of the manifest %s", row.ID, want)
	}
	if row.Kind != KindOCI || row.Name != ref.Name {
		t.Errorf("row %+v", row)
	}
	im, err := s.Manifest(row.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"/bin/app", "-v"}, []string(im.App.Exec)); diff != "" {
		t.Errorf("exec (-want +got):\n%s", diff)
	}
	if im.App.User != "app" || im.App.Group != "1234" {
		t.Errorf("user/group %s/%s, want app/1234 from /etc/passwd", im.App.User, im.App.Group)
	}
	tree, err := s.Render(t.Context(), row.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(tree.Layers) != 2 || tree.Rootfs != "" {
		t.Fatalf("tree %+v, want two layers", tree)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(tree.Layers[1], "gone"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("gone: want a 0:0 whiteout device, got mode %o rdev %d err %v", st.Mode, st.Rdev, err)
	}
	buf := make([]byte, 4)
	if n, err := unix.Getxattr(filepath.Join(tree.Layers[1], "opq"), opaqueXattr, buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("opq: opaque xattr %q, %v", buf[:n], err)
	}
	for _, p := range []string{".wh.gone", "opq/.wh..wh..opq"} {
		if _, err := os.Lstat(filepath.Join(tree.Layers[1], p)); err == nil {
			t.Errorf("%s left in the layer", p)
		}
	}

	// The merged view, as a pod sees it.
	mnt := t.TempDir()
	if err := mountOverlay(mnt, tree.Lowers(), "", ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	got := files(t, mnt)
	want := map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\napp:x:1000:1234::/home/app:/bin/sh\n", "data/old": "old", "data/new": "new", "opq/kept": "k", "data/": "", "etc/": "", "opq/": ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("merged view (-want +got):\n%s", diff)
	}

	// A second image sharing the base layer unpacks only its new layer.
	img2 := ociImage(t, v1.Config{Cmd: []string{"/x"}}, base, tarLayer(t, regEnt("third", "3")))
	var read int64
	row2, err := s.ImportOCI(t.Context(), img2, OCIRef{Name: "example.com/two", Original: "two"}, OCIOptions{Progress: func(n int64) { read += n }})
	if err != nil {
		t.Fatal(err)
	}
	l3, _ := img2.Layers()
	size3, _ := l3[1].Size()
	if read != size3 {
		t.Errorf("second image read %d compressed bytes, want only the new layer's %d", read, size3)
	}
	if err := s.Remove(t.Context(), row2.ID); err != nil {
		t.Fatal(err)
	}
	if !s.HasLayer(mustDiffID(t, base)) {
		t.Error("removing an image removed a shared layer")
	}
}

// mountOverlay mounts lowers read-only at target.
func mountOverlay(target string, lowers []string, _, _ string) error {
	return unix.Mount("overlay", target, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(lowers, ":"))
}

func mustDiffID(t *testing.T, l v1.Layer) string {
	t.Helper()
	h, err := l.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func TestImportOCIBad(t *testing.T) {
	requireRoot(t)
	good := tarLayer(t, regEnt("a", "a"))
	for _, tc := range []struct {
		name string
		img  func(t *testing.T) v1.Image
		want string
	}{
		{"digest mismatch", func(t *testing.T) v1.Image {
			return corruptImage{ociImage(t, v1.Config{}, good), func(b []byte) []byte {
				// Another valid gzip stream of different bytes.
				l := tarLayer(t, regEnt("b", "b"))
				rc, _ := l.Compressed()
				o, _ := io.ReadAll(rc)
				return o
			}}
		}, "digest mismatch"},
		{"truncated", func(t *testing.T) v1.Image {
			return corruptImage{ociImage(t, v1.Config{}, good), func(b []byte) []byte { return b[:len(b)/2] }}
		}, "unexpected EOF"},
		{"diff_id mismatch", func(t *testing.T) v1.Image {
			img := ociImage(t, v1.Config{}, good)
			cf, _ := img.ConfigFile()
			cf = cf.DeepCopy()
			cf.RootFS.DiffIDs[0] = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
			img, _ = mutate.ConfigFile(img, cf)
			return img
		}, "diff_id mismatch"},
		{"unknown layer media type", func(t *testing.T) v1.Image {
			img, _ := mutate.Append(empty.Image, mutate.Addendum{Layer: good, MediaType: "application/x-unknown"})
			return mutate.MediaType(img, types.OCIManifestSchema1)
		}, "unknown media type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			_, err := s.ImportOCI(t.Context(), tc.img(t), OCIRef{Name: "example.com/bad", Original: "bad"}, OCIOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ImportOCI error %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			if tc.want == "unknown media type" && !errors.Is(err, ErrMediaType) {
				t.Errorf("error %v is not ErrMediaType", err)
			}
			assertEmpty(t, s)
			ents, _ := os.ReadDir(filepath.Join(s.dir, layersDir))
			if len(ents) != 0 {
				t.Errorf("layers left: %v", ents)
			}
		})
	}
}
