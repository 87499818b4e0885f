package tests

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rkt-ng/rkt/tests/testutil"
)

var imageIDRE = regexp.MustCompile(`^sha512-[0-9a-f]{128}$`)

func TestFetchSignedImage(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	key := testutil.NewKeyPair(t, "Test Signer", "signer@example.com")
	aci := inspectACI(t, "example.com/app/signed", testutil.WithLabel("version", "1.2"))
	key.SignFile(t, aci)
	// Not trusted yet: refused, store untouched, the error names the image.
	r := c.Run(t, "fetch", aci)
	wantExit(t, r, 254)
	oneLineError(t, r, "example.com/app/signed")
	storeEmpty(t, c)
	// Trusted for a different prefix: still refused.
	c.MustRun(t, "trust", "--prefix=example.com/other", "--skip-fingerprint-review", key.WritePublicKey(t))
	wantExit(t, c.Run(t, "fetch", aci), 254)
	storeEmpty(t, c)
	// Trusted for a parent prefix of the name: accepted.
	c.MustRun(t, "trust", "--prefix=example.com/app", "--skip-fingerprint-review", key.WritePublicKey(t))
	r = c.MustRun(t, "fetch", aci)
	id := strings.TrimSpace(r.Stdout)
	if !imageIDRE.MatchString(id) {
		t.Fatalf("fetch printed %q, want an image ID", r.Stdout)
	}
	if want := testutil.ImageID(t, aci); id != want {
		t.Errorf("fetch printed %s, the image's ID is %s", id, want)
	}
	// The image runs by name, name:version, full ID and a 12-hex-digit prefix.
	for _, ref := range []string{"example.com/app/signed", "example.com/app/signed:1.2", id, id[:len("sha512-")+12]} {
		wantExit(t, c.Run(t, "run", "--net=host", ref, "--", "--exit-code=4"), 4)
	}
	// As in rkt 1.30, a prefix under "sha512-" and 2 hex digits is refused.
	r = c.Run(t, "run", "--net=host", id[:len("sha512-")+1])
	wantExit(t, r, 254)
	oneLineError(t, r, "image ID too short")
}

func TestFetchTamperedImage(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	key := testutil.NewKeyPair(t, "Test Signer", "signer@example.com")
	aci := inspectACI(t, "example.com/tampered")
	key.SignFile(t, aci)
	c.MustRun(t, "trust", "--root", "--skip-fingerprint-review", key.WritePublicKey(t))
	b, err := os.ReadFile(aci)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-2000] ^= 0xff // inside /inspect, past the manifest
	os.WriteFile(aci, b, 0o644)
	r := c.Run(t, "fetch", aci)
	wantExit(t, r, 254)
	oneLineError(t, r, "example.com/tampered", "signature")
	storeEmpty(t, c)
}

func TestFetchUntrustedSigner(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	trusted := testutil.NewKeyPair(t, "Trusted", "t@example.com")
	other := testutil.NewKeyPair(t, "Other", "o@example.com")
	aci := inspectACI(t, "example.com/untrusted")
	other.SignFile(t, aci)
	c.MustRun(t, "trust", "--prefix=example.com/untrusted", "--skip-fingerprint-review", trusted.WritePublicKey(t))
	r := c.Run(t, "fetch", aci)
	wantExit(t, r, 254)
	oneLineError(t, r, "example.com/untrusted", "not trusted")
	storeEmpty(t, c)
}

// badACI writes a tar archive with the given entries as an ACI.
func badACI(t *testing.T, entries []tar.Header, manifest string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if manifest != "" {
		tw.WriteHeader(&tar.Header{Name: "manifest", Mode: 0o644, Size: int64(len(manifest)), Typeflag: tar.TypeReg})
		tw.Write([]byte(manifest))
	}
	for _, h := range entries {
		h := h
		tw.WriteHeader(&h)
		if h.Typeflag == tar.TypeReg {
			tw.Write(make([]byte, h.Size))
		}
	}
	tw.Close()
	p := filepath.Join(t.TempDir(), "bad.aci")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const goodManifest = `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/bad","app":{"exec":["/x"],"user":"0","group":"0"}}`

func TestFetchBadArchives(t *testing.T) {
	testutil.RequireRoot(t)
	rootDir := tar.Header{Name: "rootfs/", Typeflag: tar.TypeDir, Mode: 0o755}
	good := inspectACI(t, "example.com/good")
	goodBytes, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(t.TempDir(), "truncated.aci")
	os.WriteFile(truncated, goodBytes[:len(goodBytes)/2], 0o644)
	corrupt := filepath.Join(t.TempDir(), "corrupt.aci")
	os.WriteFile(corrupt, append([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0}, bytes.Repeat([]byte{0xa5}, 4096)...), 0o644)
	for _, tc := range []struct {
		name, aci string
		want      string
	}{
		{"truncated", truncated, ""},
		{"corrupt gzip", corrupt, ""},
		{"dotdot", badACI(t, []tar.Header{rootDir, {Name: "rootfs/../x", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}}, goodManifest), "../x"},
		{"absolute", badACI(t, []tar.Header{rootDir, {Name: "/etc/x", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}}, goodManifest), "/etc/x"},
		{"symlink escape", badACI(t, []tar.Header{rootDir,
			{Name: "rootfs/etc", Typeflag: tar.TypeSymlink, Linkname: "/etc"},
			{Name: "rootfs/etc/passwd", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}}, goodManifest), "etc"},
		{"invalid manifest", badACI(t, []tar.Header{rootDir}, `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"Not Valid"}`), ""},
		{"no manifest", badACI(t, []tar.Header{rootDir}, ""), "manifest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testutil.NewCtx(t)
			r := c.Run(t, "--insecure-options=image", "fetch", tc.aci)
			wantExit(t, r, 254)
			if tc.want != "" {
				oneLineError(t, r, tc.want)
			} else {
				oneLineError(t, r)
			}
			storeEmpty(t, c)
			if _, err := os.Stat("/x"); err == nil {
				t.Errorf("an entry escaped to /x")
			}
			// run refuses it the same way and leaves no pod.
			r = runInsecure(t, c, tc.aci)
			wantExit(t, r, 254)
			if pods := podDirs(t, c); len(pods) != 0 {
				t.Errorf("pods left behind: %v", pods)
			}
		})
	}
}

func TestTrustBadKey(t *testing.T) {
	c := testutil.NewCtx(t)
	p := filepath.Join(t.TempDir(), "junk.asc")
	os.WriteFile(p, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\njunk\n-----END PGP PUBLIC KEY BLOCK-----\n"), 0o644)
	r := c.Run(t, "trust", "--prefix=example.com", "--skip-fingerprint-review", p)
	wantExit(t, r, 254)
	oneLineError(t, r, "junk.asc")
	// Neither or both of --prefix and --root is a usage error.
	wantExit(t, c.Run(t, "trust", "--skip-fingerprint-review", p), 2)
}

// TestFetchMaxImageSize: a small gzip ACI of zeros that decompresses past
// --max-image-size is refused on one line naming the image and the limit,
// and nothing of it stays in the store; under a larger limit it imports.
func TestFetchMaxImageSize(t *testing.T) {
	testutil.RequireRoot(t)
	aci := testutil.NewACI(t, "example.com/bomb", testutil.WithFile("/zeros", strings.Repeat("\x00", 8<<20), 0o644), testutil.WithGzip())
	if fi, err := os.Stat(aci); err != nil || fi.Size() > 1<<20 {
		t.Fatalf("test image is not small: %v %v", fi, err)
	}
	c := testutil.NewCtx(t)
	r := c.Run(t, "--insecure-options=image", "--max-image-size=1M", "fetch", aci)
	wantExit(t, r, 254)
	oneLineError(t, r, aci, "1048576 bytes", "--max-image-size")
	storeEmpty(t, c)
	wantExit(t, c.Run(t, "--max-image-size=lots", "fetch", aci), 2)
	c.MustRun(t, "--insecure-options=image", "--max-image-size=64MiB", "fetch", aci)
}
