package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// imageDir writes a directory rkt image build accepts.
func imageDir(t *testing.T, manifest string) string {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "rootfs", "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "rootfs", "etc", "hello"), []byte("hello\n"), 0o644)
	if manifest != "" {
		os.WriteFile(filepath.Join(dir, "manifest"), []byte(manifest), 0o644)
	}
	return dir
}

const pipelineManifest = `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/pipeline",
"labels":[{"name":"version","value":"1.0"}],"app":{"exec":["/bin/true"],"user":"0","group":"0"}}`

func TestImageBuildAndSign(t *testing.T) {
	gpg := testutil.RequireCommand(t, "gpg")
	c := testutil.NewCtx(t)
	dir := imageDir(t, pipelineManifest)
	out := filepath.Join(t.TempDir(), "p.aci")
	c.MustRun(t, "image", "build", "--mtime=0", dir, out)
	first, _ := os.ReadFile(out)
	c.MustRun(t, "image", "build", "--mtime=0", "--overwrite", dir, out)
	second, _ := os.ReadFile(out)
	if !bytes.Equal(first, second) {
		t.Errorf("two builds with --mtime differ")
	}
	// Refuses to overwrite without --overwrite.
	wantExit(t, c.Run(t, "image", "build", dir, out), 254)

	home := t.TempDir()
	g := func(args ...string) ([]byte, error) {
		return exec.Command(gpg, append([]string{"--homedir", home, "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...).CombinedOutput()
	}
	if out, err := g("--quick-gen-key", "Pipeline <p@example.com>", "ed25519", "sign", "never"); err != nil {
		t.Fatalf("gpg: %v %s", err, out)
	}
	secret := filepath.Join(t.TempDir(), "secret.asc")
	b, err := g("--armor", "--export-secret-keys")
	if err != nil {
		t.Fatalf("export secret: %v %s", err, b)
	}
	os.WriteFile(secret, b, 0o600)
	// Our signature verifies with real gpg.
	c.MustRun(t, "image", "sign", "--key="+secret, out)
	if b, err := g("--verify", out+".asc", out); err != nil {
		t.Errorf("gpg --verify of rkt's signature: %v\n%s", err, b)
	}
	// And rkt fetch accepts it once the key is trusted.
	pub := filepath.Join(t.TempDir(), "pub.asc")
	b, _ = g("--armor", "--export")
	os.WriteFile(pub, b, 0o644)
	c.MustRun(t, "trust", "--prefix=example.com/pipeline", "--skip-fingerprint-review", pub)
	c.MustRun(t, "fetch", out)
}

func TestImageBuildSignBadInput(t *testing.T) {
	c := testutil.NewCtx(t)
	outDir := t.TempDir()
	for _, tc := range []struct {
		name string
		dir  string
		want string
	}{
		{"no manifest", imageDir(t, ""), "manifest"},
		{"invalid manifest", imageDir(t, `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"Bad Name"}`), "Bad Name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(outDir, tc.name+".aci")
			r := c.Run(t, "image", "build", tc.dir, out)
			wantExit(t, r, 254)
			oneLineError(t, r)
			if _, err := os.Stat(out); err == nil {
				t.Errorf("a partial %s was left", out)
			}
		})
	}
	aci := filepath.Join(outDir, "ok.aci")
	c.MustRun(t, "image", "build", imageDir(t, pipelineManifest), aci)
	key := testutil.NewKeyPair(t, "K", "k@example.com")
	for _, tc := range []struct {
		name, key string
	}{
		{"missing key", filepath.Join(outDir, "nope.asc")},
		{"public key", key.WritePublicKey(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.Run(t, "image", "sign", "--key="+tc.key, aci)
			wantExit(t, r, 254)
			oneLineError(t, r)
			if _, err := os.Stat(aci + ".asc"); err == nil {
				t.Errorf("a partial signature was left")
			}
		})
	}
}
