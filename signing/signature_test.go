package signing_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/google/go-cmp/cmp"

	"github.com/rkt-ng/rkt/signing"
)

func binarySig(t *testing.T, armored []byte) []byte {
	t.Helper()
	block, err := armor.Decode(bytes.NewReader(armored))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(block.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestVerify(t *testing.T) {
	t.Parallel()
	signer := newEntity(t, "signer", nil)
	other := newEntity(t, "other", nil)
	data := []byte("image bytes")
	sig := detachSign(t, signer, data, nil)
	bin := binarySig(t, sig)
	kr := openpgp.EntityList{other, signer}

	tamperedSig := bytes.Clone(bin)
	tamperedSig[len(tamperedSig)-1] ^= 0x01

	// A key that expired an hour ago, and a signature that expired a minute
	// after it was made, an hour ago.
	past := func() time.Time { return time.Now().Add(-2 * time.Hour) }
	expiredKey := newEntity(t, "expired", &packet.Config{Time: past, KeyLifetimeSecs: 3600})
	expiredKeySig := detachSign(t, expiredKey, data, &packet.Config{Time: past})
	oldKey := newEntity(t, "old", &packet.Config{Time: past})
	expiredSig := detachSign(t, oldKey, data, &packet.Config{Time: past, SigLifetimeSecs: 60})

	revokedKey := newEntity(t, "revoked", nil)
	revokedSig := detachSign(t, revokedKey, data, nil)
	if err := revokedKey.RevokeKey(packet.KeyCompromised, "stolen", nil); err != nil {
		t.Fatal(err)
	}
	// The revocation must survive serialization into the trust store.
	revokedRead, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(armoredPublic(t, revokedKey)))
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name       string
		keyring    openpgp.EntityList
		data       io.Reader
		sig        []byte
		wantSigner *openpgp.Entity
		wantIs     error
		wantErr    string
	}{
		{name: "armored", keyring: kr, data: bytes.NewReader(data), sig: sig, wantSigner: signer},
		{name: "binary", keyring: kr, data: bytes.NewReader(data), sig: bin, wantSigner: signer},
		{name: "armored with leading blank lines", keyring: kr, data: bytes.NewReader(data), sig: append([]byte("\n\r\n  "), sig...), wantSigner: signer},
		{name: "tampered data", keyring: kr, data: strings.NewReader("image bytez"), sig: sig, wantIs: signing.ErrBadSignature},
		{name: "truncated data", keyring: kr, data: bytes.NewReader(data[:5]), sig: sig, wantIs: signing.ErrBadSignature},
		{name: "tampered signature", keyring: kr, data: bytes.NewReader(data), sig: tamperedSig, wantIs: signing.ErrBadSignature},
		{name: "untrusted signer", keyring: openpgp.EntityList{other}, data: bytes.NewReader(data), sig: sig, wantErr: fmt.Sprintf("signature by key %016x is not trusted; if you trust the signer, run: rkt trust --prefix NAME", signer.PrimaryKey.KeyId)},
		{name: "empty keyring", data: bytes.NewReader(data), sig: sig, wantErr: "is not trusted"},
		{name: "expired key", keyring: openpgp.EntityList{expiredKey}, data: bytes.NewReader(data), sig: expiredKeySig, wantIs: signing.ErrExpired},
		{name: "expired signature", keyring: openpgp.EntityList{oldKey}, data: bytes.NewReader(data), sig: expiredSig, wantIs: signing.ErrExpired},
		{name: "revoked key", keyring: revokedRead, data: bytes.NewReader(data), sig: revokedSig, wantIs: signing.ErrKeyRevoked},
		{name: "empty signature", keyring: kr, data: bytes.NewReader(data), sig: nil, wantErr: "signature is empty"},
		{name: "garbage signature", keyring: kr, data: bytes.NewReader(data), sig: []byte("\x00garbage"), wantErr: "parse signature"},
		{name: "public key as signature", keyring: kr, data: bytes.NewReader(data), sig: armoredPublic(t, signer), wantErr: `armored block is a "PGP PUBLIC KEY BLOCK"`},
		{name: "binary public key as signature", keyring: kr, data: bytes.NewReader(data), sig: binarySig(t, armoredPublic(t, signer)), wantErr: "packet in a detached signature"},
		{name: "bad armor base64", keyring: kr, data: bytes.NewReader(data), sig: []byte("-----BEGIN PGP SIGNATURE-----\n\n!!!!\n-----END PGP SIGNATURE-----\n"), wantErr: "decode armored signature"},
		{name: "armor without end", keyring: kr, data: bytes.NewReader(data), sig: sig[:len(sig)-30], wantErr: "decode armored signature"},
		{name: "huge signature", keyring: kr, data: bytes.NewReader(data), sig: make([]byte, 2<<20), wantErr: "larger than"},
		{name: "unreadable data", keyring: kr, data: failingReader{}, sig: sig, wantErr: "read signed data: disk on fire"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := signing.Verify(tc.keyring, tc.data, bytes.NewReader(tc.sig))
			if tc.wantSigner != nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if fp(got) != fp(tc.wantSigner) {
					t.Fatalf("Verify signer = %s, want %s", fp(got), fp(tc.wantSigner))
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify succeeded, want an error")
			}
			if got != nil {
				t.Errorf("Verify returned signer %s with error %v", fp(got), err)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("Verify error = %v, want errors.Is %v", err, tc.wantIs)
			}
			if tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Verify error = %q, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestUntrustedSignerError(t *testing.T) {
	t.Parallel()
	signer := newEntity(t, "signer", nil)
	data := []byte("x")
	sig := detachSign(t, signer, data, nil)

	err := signing.CheckSigner(nil, bytes.NewReader(sig))
	var ue *signing.UntrustedSignerError
	if !errors.As(err, &ue) {
		t.Fatalf("CheckSigner error = %v, want *UntrustedSignerError", err)
	}
	if diff := cmp.Diff([]uint64{signer.PrimaryKey.KeyId}, ue.KeyIDs); diff != "" {
		t.Errorf("KeyIDs mismatch (-want +got):\n%s", diff)
	}
	if err := signing.CheckSigner(openpgp.EntityList{signer}, bytes.NewReader(sig)); err != nil {
		t.Errorf("CheckSigner with the signer in the keyring: %v", err)
	}

	ids, err := signing.SignerKeyIDs(bytes.NewReader(binarySig(t, sig)))
	if err != nil {
		t.Fatalf("SignerKeyIDs: %v", err)
	}
	if diff := cmp.Diff([]uint64{signer.PrimaryKey.KeyId}, ids); diff != "" {
		t.Errorf("SignerKeyIDs mismatch (-want +got):\n%s", diff)
	}

	ks := &signing.Keystore{LocalDir: t.TempDir()}
	err = ks.CheckSigner("example.com/app", bytes.NewReader(sig))
	want := fmt.Sprintf("signature by key %016x is not trusted for example.com/app; if you trust the signer, run: rkt trust --prefix example.com/app", signer.PrimaryKey.KeyId)
	if err == nil || err.Error() != want {
		t.Errorf("Keystore.CheckSigner error = %v, want %q", err, want)
	}
	if _, err := ks.Trust("example.com", armoredPublic(t, signer)); err != nil {
		t.Fatal(err)
	}
	if err := ks.CheckSigner("example.com/app", bytes.NewReader(sig)); err != nil {
		t.Errorf("Keystore.CheckSigner after Trust: %v", err)
	}
}

// A signature may hold several signature packets; one trusted signer is
// enough, whichever comes first.
func TestVerifySeveralSigners(t *testing.T) {
	t.Parallel()
	a, b := newEntity(t, "a", nil), newEntity(t, "b", nil)
	data := []byte("data")
	both := append(binarySig(t, detachSign(t, a, data, nil)), binarySig(t, detachSign(t, b, data, nil))...)
	ids, err := signing.SignerKeyIDs(bytes.NewReader(both))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]uint64{a.PrimaryKey.KeyId, b.PrimaryKey.KeyId}, ids); diff != "" {
		t.Errorf("SignerKeyIDs mismatch (-want +got):\n%s", diff)
	}
	signer, err := signing.Verify(openpgp.EntityList{b}, bytes.NewReader(data), bytes.NewReader(both))
	if err != nil {
		t.Fatalf("Verify with second signer trusted: %v", err)
	}
	if fp(signer) != fp(b) {
		t.Errorf("signer = %s, want %s", fp(signer), fp(b))
	}
	_, err = signing.Verify(nil, bytes.NewReader(data), bytes.NewReader(both))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("keys %016x, %016x", a.PrimaryKey.KeyId, b.PrimaryKey.KeyId)) {
		t.Errorf("Verify with no signer trusted: error = %v, want both key IDs", err)
	}
}

func TestSign(t *testing.T) {
	t.Parallel()
	e := newEntity(t, "signer", nil)
	data := []byte("an image\n")
	plain := armoredSecret(t, e)

	enc := newEntity(t, "encrypted", nil)
	if err := enc.EncryptPrivateKeys([]byte("hunter2"), nil); err != nil {
		t.Fatal(err)
	}
	encrypted := armoredSecret(t, enc)

	expired := newEntity(t, "expired", &packet.Config{Time: func() time.Time { return time.Now().Add(-2 * time.Hour) }, KeyLifetimeSecs: 60})

	cases := []struct {
		name       string
		key        []byte
		passphrase string
		wantSigner *openpgp.Entity
		wantIs     error
		wantErr    string
	}{
		{name: "plain secret key", key: plain, wantSigner: e},
		{name: "passphrase ignored for plain key", key: plain, passphrase: "x", wantSigner: e},
		{name: "encrypted key with passphrase", key: encrypted, passphrase: "hunter2", wantSigner: enc},
		{name: "encrypted key without passphrase", key: encrypted, wantIs: signing.ErrKeyEncrypted, wantErr: "secret key is encrypted"},
		{name: "encrypted key with wrong passphrase", key: encrypted, passphrase: "nope", wantErr: "wrong passphrase"},
		{name: "public key", key: armoredPublic(t, e), wantErr: "key is a public key"},
		{name: "missing key", key: nil, wantIs: signing.ErrKeyNotFound},
		{name: "blank key", key: []byte("  \n"), wantIs: signing.ErrKeyNotFound},
		{name: "not armored", key: []byte("secret"), wantIs: signing.ErrKeyNotFound},
		{name: "expired key", key: armoredSecret(t, expired), wantErr: "no valid signing key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var sig bytes.Buffer
			var pass []byte
			if tc.passphrase != "" {
				pass = []byte(tc.passphrase)
			}
			err := signing.Sign(&sig, tc.key, pass, bytes.NewReader(data))
			if tc.wantSigner == nil {
				if err == nil {
					t.Fatal("Sign succeeded, want an error")
				}
				if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
					t.Errorf("Sign error = %v, want errors.Is %v", err, tc.wantIs)
				}
				if tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("Sign error = %q, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if !bytes.HasPrefix(sig.Bytes(), []byte("-----BEGIN PGP SIGNATURE-----")) {
				t.Errorf("Sign output is not an armored signature:\n%s", sig.Bytes())
			}
			signer, err := signing.Verify(openpgp.EntityList{tc.wantSigner}, bytes.NewReader(data), bytes.NewReader(sig.Bytes()))
			if err != nil {
				t.Fatalf("Verify(Sign output): %v", err)
			}
			if fp(signer) != fp(tc.wantSigner) {
				t.Errorf("signer = %s, want %s", fp(signer), fp(tc.wantSigner))
			}
			if _, err := signing.Verify(openpgp.EntityList{tc.wantSigner}, strings.NewReader("other"), bytes.NewReader(sig.Bytes())); !errors.Is(err, signing.ErrBadSignature) {
				t.Errorf("Verify(Sign output, other data) error = %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestSignUnreadableData(t *testing.T) {
	t.Parallel()
	e := newEntity(t, "signer", nil)
	var sig bytes.Buffer
	err := signing.Sign(&sig, armoredSecret(t, e), nil, failingReader{})
	if err == nil || !strings.Contains(err.Error(), "read data to sign: disk on fire") {
		t.Errorf("Sign error = %v, want a read error", err)
	}
}
