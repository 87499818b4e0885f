package images

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/rkt-ng/rkt/manifests"
	"github.com/rkt-ng/rkt/stage0/store"
)

// writeTestACI writes an uncompressed ACI named name holding /content with
// the given text to path.
func writeTestACI(t *testing.T, path, name, content string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "content"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	im, err := manifests.DecodeImage([]byte(`{"acKind":"ImageManifest","acVersion":"0.8.11","name":"` + name + `"}`))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := manifests.WriteACI(&b, im, dir, manifests.BuildOptions{OwnerRoot: true}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// newSigner makes a signing key and trusts it for prefix in c's trust store.
func newSigner(t *testing.T, c *Config, prefix string) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity("Test Signer", "", "signer@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	var pub bytes.Buffer
	w, err := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if _, err := c.Keystore().Trust(prefix, pub.Bytes()); err != nil {
		t.Fatal(err)
	}
	return e
}

func signFile(t *testing.T, e *openpgp.Entity, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var sig bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&sig, e, f, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".asc", sig.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// storedIDs returns the IDs of the images in s.
func storedIDs(t *testing.T, s *store.Store) []string {
	t.Helper()
	imgs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, img := range imgs {
		ids = append(ids, img.ID)
	}
	return ids
}

// TestFetchFileSwapAfterVerify rewrites a signed local image in place
// between the signature check and the import, as a hostile writer racing
// `rkt fetch` would: the store must get the signed bytes, never the new ones.
func TestFetchFileSwapAfterVerify(t *testing.T) {
	base := t.TempDir()
	c := &Config{Dir: filepath.Join(base, "data"), LocalConfig: filepath.Join(base, "etc")}
	s, err := c.Store()
	if err != nil {
		t.Fatal(err)
	}
	signer := newSigner(t, c, "example.com/app")
	aci := filepath.Join(base, "app.aci")
	writeTestACI(t, aci, "example.com/app", "signed")
	signFile(t, signer, aci)
	evil := filepath.Join(base, "evil.aci")
	writeTestACI(t, evil, "example.com/app", "unsigned and hostile")
	evilBytes, err := os.ReadFile(evil)
	if err != nil {
		t.Fatal(err)
	}
	evilImg, err := store.Open(filepath.Join(base, "scratch"))
	if err != nil {
		t.Fatal(err)
	}
	evilID, err := evilImg.ImportACI(t.Context(), bytes.NewReader(evilBytes))
	if err != nil {
		t.Fatal(err)
	}

	swapped := 0
	afterVerifyHook = func(path string) {
		swapped++
		// In place, on the same inode: what the old code re-read.
		if err := os.WriteFile(path, evilBytes, 0o644); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() { afterVerifyHook = nil })

	id, err := c.Fetch(t.Context(), s, aci, FetchOptions{})
	if err != nil {
		t.Fatalf("fetch of a signed image: %v", err)
	}
	if swapped != 1 {
		t.Fatalf("hook ran %d times, want 1", swapped)
	}
	if id == evilID.ID {
		t.Fatalf("the unsigned content written after verification was imported as %s", id)
	}
	for _, got := range storedIDs(t, s) {
		if got == evilID.ID {
			t.Fatalf("unsigned image %s is in the store", got)
		}
	}
	rc, err := s.OpenBlob(id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var blob bytes.Buffer
	blob.ReadFrom(rc)
	if !bytes.Contains(blob.Bytes(), []byte("signed")) || bytes.Contains(blob.Bytes(), []byte("hostile")) {
		t.Errorf("stored blob is not the signed image")
	}
	// The file now holds the unsigned bytes: fetching it again must fail.
	afterVerifyHook = nil
	if _, err := c.Fetch(t.Context(), s, aci, FetchOptions{}); err == nil {
		t.Fatal("fetch of the rewritten, unsigned file succeeded")
	}
	// No private copy is left in the store's tmp dir.
	if ents, _ := os.ReadDir(filepath.Join(s.Dir(), "tmp")); len(ents) != 0 {
		t.Errorf("tmp holds %v after the fetches", ents)
	}
}
