package testutil

import (
	"bytes"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// KeyPair is an OpenPGP key pair made for one test, as an image publisher's
// signing key.
type KeyPair struct {
	Entity *openpgp.Entity
}

// NewKeyPair generates an RSA-2048 OpenPGP key with the user ID
// "name <email>". RSA is what rkt's test keys and most appc signers use.
func NewKeyPair(t testing.TB, name, email string) *KeyPair {
	t.Helper()
	e, err := openpgp.NewEntity(name, "rkt-ng test key", email, &packet.Config{
		Algorithm: packet.PubKeyAlgoRSA,
		RSABits:   2048,
	})
	if err != nil {
		t.Fatalf("generate OpenPGP key for %s: %v", email, err)
	}
	return &KeyPair{Entity: e}
}

// Fingerprint is the primary key's fingerprint in lower-case hex, as rkt
// names files in trustedkeys/.
func (k *KeyPair) Fingerprint() string {
	return hex.EncodeToString(k.Entity.PrimaryKey.Fingerprint)
}

// ArmoredPublicKey returns the ASCII-armored public key (what `rkt trust`
// reads).
func (k *KeyPair) ArmoredPublicKey(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Entity.Serialize(w); err != nil {
		t.Fatalf("serialize public key: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// WritePublicKey writes the armored public key to a new file in a temporary
// directory of the test and returns its path.
func (k *KeyPair) WritePublicKey(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), k.Fingerprint()+".asc")
	if err := os.WriteFile(p, k.ArmoredPublicKey(t), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Sign writes an armored detached signature of everything read from r to w.
func (k *KeyPair) Sign(w io.Writer, r io.Reader) error {
	return openpgp.ArmoredDetachSign(w, k.Entity, r, nil)
}

// SignFile writes the armored detached signature of file p to p + ".asc"
// (where rkt looks for the signature of a local ACI) and returns that path.
func (k *KeyPair) SignFile(t testing.TB, p string) string {
	t.Helper()
	in, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	sig := p + ".asc"
	out, err := os.Create(sig)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Sign(out, in); err != nil {
		out.Close()
		t.Fatalf("sign %s: %v", p, err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return sig
}
