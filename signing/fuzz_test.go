package signing_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/rkt-ng/rkt/signing"
)

// The fixture in testdata was made with gpg 2.2 and a faked clock, so that it
// does not depend on gpg being installed nor on the test machine's date:
//
//	export GNUPGHOME=$(mktemp -d); T='--faked-system-time 20200101T000000!'
//	gpg --batch $T --passphrase '' --quick-gen-key 'rkt-ng test fixture <fixture@example.com>' ed25519 sign never
//	gpg --armor --export > gpg-key.asc
//	gpg --batch $T --armor --detach-sign -o image.aci.asc image.aci
//	gpg --batch $T --detach-sign -o image.aci.sig image.aci
const fixtureFingerprint = "e9c5a5b9ab65baa9ee3b55cf230a5fa9a8dd952b"

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fixtureKeyring(t testing.TB) openpgp.EntityList {
	t.Helper()
	kr, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(readTestdata(t, "gpg-key.asc")))
	if err != nil {
		t.Fatalf("read fixture key: %v", err)
	}
	return kr
}

func TestVerifyGPGFixture(t *testing.T) {
	t.Parallel()
	info, err := signing.ReadKey(readTestdata(t, "gpg-key.asc"))
	if err != nil {
		t.Fatalf("ReadKey(fixture): %v", err)
	}
	if info.Fingerprint != fixtureFingerprint {
		t.Errorf("fixture fingerprint = %s, want %s", info.Fingerprint, fixtureFingerprint)
	}
	kr := fixtureKeyring(t)
	data := readTestdata(t, "image.aci")
	for _, name := range []string{"image.aci.asc", "image.aci.sig"} {
		signer, err := signing.Verify(kr, bytes.NewReader(data), bytes.NewReader(readTestdata(t, name)))
		if err != nil {
			t.Errorf("Verify(%s): %v", name, err)
			continue
		}
		if fp(signer) != fixtureFingerprint {
			t.Errorf("Verify(%s) signer = %s, want %s", name, fp(signer), fixtureFingerprint)
		}
		_, err = signing.Verify(kr, bytes.NewReader(append(bytes.Clone(data), '\n')), bytes.NewReader(readTestdata(t, name)))
		if !errors.Is(err, signing.ErrBadSignature) {
			t.Errorf("Verify(%s, appended data) error = %v, want ErrBadSignature", name, err)
		}
	}
}

// maxFuzzInput bounds fuzz inputs; larger ones only test the size limits,
// which the unit tests cover.
const maxFuzzInput = 64 << 10

var fingerprintRE = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)

func FuzzReadKey(f *testing.F) {
	f.Add(readTestdata(f, "gpg-key.asc"))
	f.Add([]byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n-----END PGP PUBLIC KEY BLOCK-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzInput {
			return
		}
		info, err := signing.ReadKey(data)
		if err != nil {
			return
		}
		if !fingerprintRE.MatchString(info.Fingerprint) {
			t.Errorf("ReadKey fingerprint %q is not a file name the trust store accepts", info.Fingerprint)
		}
		again, err := signing.ReadKey(data)
		if err != nil || again.Fingerprint != info.Fingerprint {
			t.Errorf("ReadKey is not deterministic: %v, %v then %v, %v", info, nil, again, err)
		}
	})
}

func FuzzVerify(f *testing.F) {
	data := readTestdata(f, "image.aci")
	f.Add(readTestdata(f, "image.aci.asc"), data)
	f.Add(readTestdata(f, "image.aci.sig"), data)
	kr := fixtureKeyring(f)
	f.Fuzz(func(t *testing.T, sig, signed []byte) {
		if len(sig) > maxFuzzInput || len(signed) > maxFuzzInput {
			return
		}
		_, idsErr := signing.SignerKeyIDs(bytes.NewReader(sig))
		signer, err := signing.Verify(kr, bytes.NewReader(signed), bytes.NewReader(sig))
		if err != nil {
			if signer != nil {
				t.Errorf("Verify returned signer %s with error %v", fp(signer), err)
			}
			return
		}
		if signer == nil || fp(signer) != fixtureFingerprint {
			t.Fatalf("Verify succeeded with signer %v, want the fixture key", signer)
		}
		if idsErr != nil {
			t.Errorf("Verify accepted a signature that SignerKeyIDs rejects: %v", idsErr)
		}
		if err := signing.CheckSigner(kr, bytes.NewReader(sig)); err != nil {
			t.Errorf("Verify accepted a signature that CheckSigner rejects: %v", err)
		}
		// The same signature must not also cover different data.
		other := append(bytes.Clone(signed), 0)
		if _, err := signing.Verify(kr, bytes.NewReader(other), bytes.NewReader(sig)); err == nil {
			t.Errorf("Verify accepted the signature over %q and over %q", signed, other)
		}
	})
}
