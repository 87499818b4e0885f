package signing

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
)

// maxKeySize bounds an armored public key read from a file, a download or the
// trust store. Real keys, even with many third-party certifications, are far
// smaller; the bound keeps a hostile key server from exhausting memory.
const maxKeySize = 1 << 20

// KeyInfo describes a public key, for the "trust this key?" prompt and for
// listings.
type KeyInfo struct {
	// Fingerprint is the lowercase hex fingerprint of the primary key (40
	// digits for v4 keys). It is also the key's file name in the trust store.
	Fingerprint string
	// UserIDs are the key's identities ("Name (comment) <email>"), sorted.
	UserIDs []string
}

// ReadKey parses one armored OpenPGP public key and describes it. It fails on
// secret keys, on several keys in one block, and on keys that cannot verify a
// signature today (revoked, expired, or without a signing-capable key), since
// trusting such a key would be pointless.
func ReadKey(armored []byte) (KeyInfo, error) {
	e, _, err := readPublicKey(armored)
	if err != nil {
		return KeyInfo{}, err
	}
	if err := checkUsable(e, time.Now()); err != nil {
		return KeyInfo{}, err
	}
	return keyInfo(e), nil
}

// readPublicKey parses an armored public key block holding exactly one key
// and returns it with the binary (de-armored) packets it was read from.
func readPublicKey(armored []byte) (*openpgp.Entity, []byte, error) {
	if len(armored) > maxKeySize {
		return nil, nil, fmt.Errorf("public key is larger than %d bytes", maxKeySize)
	}
	block, err := armor.Decode(bytes.NewReader(armored))
	if errors.Is(err, io.EOF) {
		return nil, nil, errors.New("no armored public key found")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("decode armored public key: %w", err)
	}
	if block.Type != openpgp.PublicKeyType {
		return nil, nil, fmt.Errorf("armored block is a %q, want a %q", block.Type, openpgp.PublicKeyType)
	}
	// Reading the whole body checks the armor checksum before any parsing.
	body, err := io.ReadAll(block.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("decode armored public key: %w", err)
	}
	el, err := openpgp.ReadKeyRing(bytes.NewReader(body))
	if err != nil {
		return nil, nil, fmt.Errorf("parse public key: %w", err)
	}
	if len(el) != 1 {
		return nil, nil, fmt.Errorf("armored block holds %d public keys, want exactly one", len(el))
	}
	e := el[0]
	if e.PrivateKey != nil {
		return nil, nil, errors.New("key block holds secret key material; export only the public key")
	}
	for _, sk := range e.Subkeys {
		if sk.PrivateKey != nil {
			return nil, nil, errors.New("key block holds secret key material; export only the public key")
		}
	}
	return e, body, nil
}

// checkUsable reports why e cannot verify signatures made at now, if it
// cannot.
func checkUsable(e *openpgp.Entity, now time.Time) error {
	fp := fingerprint(e)
	if e.Revoked(now) {
		return fmt.Errorf("key %s: %w", fp, ErrKeyRevoked)
	}
	if sig, _ := e.PrimarySelfSignature(); sig != nil && e.PrimaryKey.KeyExpired(sig, now) {
		return fmt.Errorf("key %s: %w", fp, ErrExpired)
	}
	if _, ok := e.SigningKey(now); !ok {
		return fmt.Errorf("key %s has no valid signing key (revoked, expired or not signing-capable)", fp)
	}
	return nil
}

func keyInfo(e *openpgp.Entity) KeyInfo {
	ids := make([]string, 0, len(e.Identities))
	for name := range e.Identities {
		ids = append(ids, name)
	}
	sort.Strings(ids)
	return KeyInfo{Fingerprint: fingerprint(e), UserIDs: ids}
}

func fingerprint(e *openpgp.Entity) string {
	return hex.EncodeToString(e.PrimaryKey.Fingerprint)
}

var hexDigits = regexp.MustCompile(`^[0-9a-f]+$`)

// normalizeFingerprint accepts a fingerprint as gpg prints it (upper case,
// grouped with spaces, optional 0x) and returns the trust store file name.
func normalizeFingerprint(s string) (string, error) {
	fp := strings.ToLower(strings.Join(strings.Fields(s), ""))
	fp = strings.TrimPrefix(fp, "0x")
	// v4 fingerprints are 20 bytes, v6 fingerprints 32 (RFC 9580 5.5.4).
	if (len(fp) != 40 && len(fp) != 64) || !hexDigits.MatchString(fp) {
		return "", fmt.Errorf("invalid key fingerprint %q: want 40 hex digits", s)
	}
	return fp, nil
}

// acIdentifier is the appc AC Identifier syntax (appc spec, "AC Identifier
// Type"). It has no empty, "." or ".." components and no leading or trailing
// slash, so a valid prefix is also a safe relative path under prefix.d.
var acIdentifier = regexp.MustCompile(`^[a-z0-9]+([-._~/][a-z0-9]+)*$`)

// ValidatePrefix reports whether prefix can name a trust scope: an image name
// or a leading part of one made of whole path components, such as
// "example.com" or "example.com/app".
func ValidatePrefix(prefix string) error {
	if !acIdentifier.MatchString(prefix) {
		return fmt.Errorf("invalid prefix %q: want an AC identifier such as example.com/app (lowercase letters, digits, and -._~ between them, / between components)", prefix)
	}
	return nil
}
