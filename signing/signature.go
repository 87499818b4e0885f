package signing

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// maxSignatureSize bounds a detached signature. One signature packet is well
// under a kilobyte even for RSA-4096; the bound only stops a hostile server
// from making us buffer without end.
const maxSignatureSize = 1 << 20

var (
	// ErrBadSignature means a signature by a trusted key does not match the
	// signed data: the data or the signature was altered.
	ErrBadSignature = errors.New("signature does not verify")
	// ErrKeyRevoked means the key is revoked.
	ErrKeyRevoked = errors.New("key is revoked")
	// ErrExpired means the signing key or the signature has expired.
	ErrExpired = errors.New("key or signature has expired")
	// ErrKeyEncrypted means a secret key is protected by a passphrase and
	// none was given.
	ErrKeyEncrypted = errors.New("secret key is encrypted; a passphrase is needed")
	// ErrKeyNotFound means an expected key is absent.
	ErrKeyNotFound = errors.New("key not found")
)

// UntrustedSignerError means no key that made the signature is in the
// keyring. Name is the image name the keyring was built for, when known.
type UntrustedSignerError struct {
	KeyIDs []uint64
	// Fingerprints are the signers' fingerprints (lower-case hex) that the
	// signature names in issuer fingerprint subpackets; it may be empty.
	Fingerprints []string
	Name         string
}

func (e *UntrustedSignerError) Error() string {
	ids := make([]string, len(e.KeyIDs))
	for i, id := range e.KeyIDs {
		ids[i] = fmt.Sprintf("%016x", id)
	}
	keys := "key " + strings.Join(ids, ", ")
	if len(ids) != 1 {
		keys = "keys " + strings.Join(ids, ", ")
	}
	if e.Name == "" {
		return fmt.Sprintf("signature by %s is not trusted; if you trust the signer, run: rkt trust --prefix NAME", keys)
	}
	return fmt.Sprintf("signature by %s is not trusted for %s; if you trust the signer, run: rkt trust --prefix %s", keys, e.Name, e.Name)
}

// Verify checks a detached signature (armored or binary) over signed against
// keyring and returns the signing entity. It fails with an
// *UntrustedSignerError if no signer is in the keyring, with ErrBadSignature
// if the signature does not match the data, and with ErrKeyRevoked or
// ErrExpired if the signing key is no longer valid.
func Verify(keyring openpgp.EntityList, signed, sig io.Reader) (*openpgp.Entity, error) {
	bin, ids, fprs, err := readSignature(sig)
	if err != nil {
		return nil, err
	}
	if !anyTrusted(keyring, ids) {
		return nil, &UntrustedSignerError{KeyIDs: ids, Fingerprints: fprs}
	}
	sr := &recordingReader{r: signed}
	signer, err := openpgp.CheckDetachedSignature(keyring, sr, bytes.NewReader(bin), nil)
	if sr.err != nil {
		return nil, fmt.Errorf("read signed data: %w", sr.err)
	}
	if err != nil {
		return nil, verifyError(err, signer, ids)
	}
	return signer, nil
}

// CheckSigner reports whether a key that made the detached signature sig is
// in keyring, without the signed data, so that a fetcher can refuse an
// untrusted image before downloading it. It returns an *UntrustedSignerError
// if not. Verify must still be called on the data.
func CheckSigner(keyring openpgp.EntityList, sig io.Reader) error {
	_, ids, fprs, err := readSignature(sig)
	if err != nil {
		return err
	}
	if !anyTrusted(keyring, ids) {
		return &UntrustedSignerError{KeyIDs: ids, Fingerprints: fprs}
	}
	return nil
}

// Verify is the package-level Verify with the keyring of imageName; an
// *UntrustedSignerError it returns names imageName, so its message tells the
// user which `rkt trust --prefix` to run.
func (k *Keystore) Verify(imageName string, signed, sig io.Reader) (*openpgp.Entity, error) {
	kr, err := k.Keyring(imageName)
	if err != nil {
		return nil, err
	}
	e, err := Verify(kr, signed, sig)
	return e, withName(err, imageName)
}

// CheckSigner is the package-level CheckSigner with the keyring of
// imageName; an *UntrustedSignerError it returns names imageName.
func (k *Keystore) CheckSigner(imageName string, sig io.Reader) error {
	kr, err := k.Keyring(imageName)
	if err != nil {
		return err
	}
	return withName(CheckSigner(kr, sig), imageName)
}

func withName(err error, name string) error {
	var ue *UntrustedSignerError
	if errors.As(err, &ue) {
		return &UntrustedSignerError{KeyIDs: ue.KeyIDs, Fingerprints: ue.Fingerprints, Name: name}
	}
	return err
}

// SignerKeyIDs returns the issuer key IDs of the packets in a detached
// signature (armored or binary), without verifying anything.
func SignerKeyIDs(sig io.Reader) ([]uint64, error) {
	_, ids, _, err := readSignature(sig)
	return ids, err
}

// readSignature reads a detached signature, de-armoring it if it is armored,
// and returns its binary packets, the distinct issuer key IDs and the
// distinct issuer fingerprints (lower-case hex) the packets carry.
func readSignature(r io.Reader) ([]byte, []uint64, []string, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxSignatureSize+1))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read signature: %w", err)
	}
	if len(data) > maxSignatureSize {
		return nil, nil, nil, fmt.Errorf("signature is larger than %d bytes", maxSignatureSize)
	}
	if bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("-----BEGIN ")) {
		block, err := armor.Decode(bytes.NewReader(data))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("decode armored signature: %w", err)
		}
		if block.Type != openpgp.SignatureType {
			return nil, nil, nil, fmt.Errorf("armored block is a %q, want a %q", block.Type, openpgp.SignatureType)
		}
		if data, err = io.ReadAll(block.Body); err != nil {
			return nil, nil, nil, fmt.Errorf("decode armored signature: %w", err)
		}
	}
	if len(data) == 0 {
		return nil, nil, nil, errors.New("signature is empty")
	}
	var ids []uint64
	var fprs []string
	pr := packet.NewReader(bytes.NewReader(data))
	for {
		p, err := pr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("parse signature: %w", err)
		}
		s, ok := p.(*packet.Signature)
		if !ok {
			return nil, nil, nil, fmt.Errorf("parse signature: found a %T packet in a detached signature", p)
		}
		if s.IssuerKeyId == nil {
			return nil, nil, nil, errors.New("parse signature: signature names no issuer key")
		}
		if !containsID(ids, *s.IssuerKeyId) {
			ids = append(ids, *s.IssuerKeyId)
		}
		if fp := hex.EncodeToString(s.IssuerFingerprint); fp != "" && !slices.Contains(fprs, fp) {
			fprs = append(fprs, fp)
		}
	}
	if len(ids) == 0 {
		return nil, nil, nil, errors.New("parse signature: no signature packet found")
	}
	return data, ids, fprs, nil
}

func containsID(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// anyTrusted mirrors the issuer lookup of openpgp.CheckDetachedSignature: a
// signer is known if the keyring has a signing-capable key with its ID.
func anyTrusted(keyring openpgp.EntityList, ids []uint64) bool {
	for _, id := range ids {
		if len(keyring.KeysByIdUsage(id, packet.KeyFlagSign)) > 0 {
			return true
		}
	}
	return false
}

func verifyError(err error, signer *openpgp.Entity, ids []uint64) error {
	who := "signature"
	if signer != nil {
		who = "signature by key " + fingerprint(signer)
	}
	var sigErr pgperrors.SignatureError
	switch {
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return &UntrustedSignerError{KeyIDs: ids}
	case errors.Is(err, pgperrors.ErrKeyRevoked):
		return fmt.Errorf("%s: %w", who, ErrKeyRevoked)
	case errors.Is(err, pgperrors.ErrKeyExpired), errors.Is(err, pgperrors.ErrSignatureExpired):
		return fmt.Errorf("%s: %w", who, ErrExpired)
	case errors.As(err, &sigErr):
		return fmt.Errorf("%s: %w (%v)", who, ErrBadSignature, err)
	}
	return fmt.Errorf("verify %s: %w", who, err)
}

// recordingReader remembers a read error of the signed data, so that it is
// reported as such and not as a bad signature.
type recordingReader struct {
	r   io.Reader
	err error
}

func (r *recordingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		r.err = err
	}
	return n, err
}

// Sign writes an armored detached signature over signed, made with the first
// key in an armored secret key block. An encrypted key needs passphrase;
// without one Sign fails with ErrKeyEncrypted.
func Sign(w io.Writer, secretArmored []byte, passphrase []byte, signed io.Reader) error {
	e, err := readSecretKey(secretArmored)
	if err != nil {
		return err
	}
	fp := fingerprint(e)
	now := time.Now()
	key, ok := e.SigningKey(now)
	if !ok {
		return fmt.Errorf("secret key %s has no valid signing key (revoked, expired or not signing-capable)", fp)
	}
	switch {
	case key.PrivateKey == nil:
		return fmt.Errorf("secret key %s: signing key %016x has no secret part", fp, key.PublicKey.KeyId)
	case key.PrivateKey.Dummy():
		return fmt.Errorf("secret key %s: signing key %016x is a stub whose secret part is stored elsewhere", fp, key.PublicKey.KeyId)
	case key.PrivateKey.Encrypted:
		if len(passphrase) == 0 {
			return fmt.Errorf("secret key %s: %w", fp, ErrKeyEncrypted)
		}
		if err := key.PrivateKey.Decrypt(passphrase); err != nil {
			return fmt.Errorf("decrypt secret key %s (wrong passphrase?): %w", fp, err)
		}
	}
	config := &packet.Config{
		SigningKeyId: key.PublicKey.KeyId,
		Time:         func() time.Time { return now },
	}
	sr := &recordingReader{r: signed}
	err = openpgp.ArmoredDetachSign(w, e, sr, config)
	if sr.err != nil {
		return fmt.Errorf("read data to sign: %w", sr.err)
	}
	if err != nil {
		return fmt.Errorf("sign with key %s: %w", fp, err)
	}
	return nil
}

func readSecretKey(armored []byte) (*openpgp.Entity, error) {
	if len(bytes.TrimSpace(armored)) == 0 {
		return nil, fmt.Errorf("secret key: %w", ErrKeyNotFound)
	}
	if len(armored) > maxKeySize {
		return nil, fmt.Errorf("secret key is larger than %d bytes", maxKeySize)
	}
	block, err := armor.Decode(bytes.NewReader(armored))
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("no armored secret key found: %w", ErrKeyNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("decode armored secret key: %w", err)
	}
	switch block.Type {
	case openpgp.PrivateKeyType:
	case openpgp.PublicKeyType:
		return nil, errors.New("key is a public key; signing needs the secret key (gpg --armor --export-secret-keys)")
	default:
		return nil, fmt.Errorf("armored block is a %q, want a %q", block.Type, openpgp.PrivateKeyType)
	}
	el, err := openpgp.ReadKeyRing(block.Body)
	if err != nil {
		return nil, fmt.Errorf("parse secret key: %w", err)
	}
	if len(el) == 0 {
		return nil, fmt.Errorf("secret key: %w", ErrKeyNotFound)
	}
	return el[0], nil
}
