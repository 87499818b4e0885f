package signing_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/google/go-cmp/cmp"

	"github.com/rkt-ng/rkt/signing"
)

type testKey struct {
	entity *openpgp.Entity
	fp     string
	public []byte
	sig    []byte // armored signature over signedData
}

var signedData = []byte("an ACI, as downloaded\n")

var (
	keysOnce sync.Once
	keys     [3]testKey
	keysErr  error
)

// threeKeys returns three generated keys shared by the tests of this file,
// each with a signature over signedData.
func threeKeys(t *testing.T) [3]testKey {
	t.Helper()
	keysOnce.Do(func() {
		for i := range keys {
			e, err := openpgp.NewEntity("key"+string(rune('a'+i)), "", "", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
			if err != nil {
				keysErr = err
				return
			}
			keys[i] = testKey{entity: e, fp: fp(e), public: armoredPublic(t, e), sig: detachSign(t, e, signedData, nil)}
		}
	})
	if keysErr != nil {
		t.Fatalf("generate keys: %v", keysErr)
	}
	return keys
}

// storeFile is a file in a test trust store.
type storeFile struct {
	system bool
	prefix string // "" is root.d
	name   string // file name; defaults to the key's fingerprint
	key    int    // index into threeKeys
	data   string // used instead of the key when set; "-" means empty
}

func (f storeFile) write(t *testing.T, ks *signing.Keystore, keys [3]testKey) {
	t.Helper()
	dir := ks.LocalDir
	if f.system {
		dir = ks.SystemDir
	}
	dir = filepath.Join(dir, "trustedkeys", "root.d")
	if f.prefix != "" {
		dir = filepath.Join(filepath.Dir(dir), "prefix.d", filepath.FromSlash(f.prefix))
	}
	name := f.name
	if name == "" {
		name = keys[f.key].fp
	}
	data := keys[f.key].public
	switch f.data {
	case "":
	case "-":
		data = nil
	default:
		data = []byte(f.data)
	}
	writeFile(t, filepath.Join(dir, name), data)
}

func TestKeystoreKeyring(t *testing.T) {
	t.Parallel()
	k := threeKeys(t)
	names := []string{"a.com", "a.com/b", "a.com/b/c", "a.com/bc", "a.com/c", "z.org"}
	all := func(ks ...int) map[string][]int {
		m := make(map[string][]int)
		for _, n := range names {
			m[n] = ks
		}
		return m
	}
	cases := []struct {
		name    string
		files   []storeFile
		trusted map[string][]int // image name -> indexes of keys whose signature verifies
		wantErr string
	}{
		{name: "empty store", trusted: all()},
		{name: "system root key", files: []storeFile{{system: true, key: 0}}, trusted: all(0)},
		{name: "local root key", files: []storeFile{{key: 1}}, trusted: all(1)},
		{
			name:  "prefix scoping",
			files: []storeFile{{prefix: "a.com/b", key: 1}},
			trusted: map[string][]int{
				"a.com/b": {1}, "a.com/b/c": {1},
				// a.com, a.com/c and a.com/bc are not under a.com/b.
			},
		},
		{
			name:  "host prefix from system config",
			files: []storeFile{{system: true, prefix: "a.com", key: 2}},
			trusted: map[string][]int{
				"a.com": {2}, "a.com/b": {2}, "a.com/b/c": {2}, "a.com/bc": {2}, "a.com/c": {2},
			},
		},
		{
			name: "root and prefixes combine",
			files: []storeFile{
				{system: true, key: 0},
				{prefix: "a.com/b/c", key: 1},
				{system: true, prefix: "a.com/c", key: 2},
			},
			trusted: map[string][]int{
				"a.com": {0}, "a.com/b": {0}, "a.com/b/c": {0, 1}, "a.com/bc": {0}, "a.com/c": {0, 2}, "z.org": {0},
			},
		},
		{
			name: "local file overrides system file of same name",
			files: []storeFile{
				{system: true, key: 0, data: "not a key"},
				{key: 0},
			},
			trusted: all(0),
		},
		{
			name: "empty local file masks system key",
			files: []storeFile{
				{system: true, key: 0},
				{key: 0, data: "-"},
				{system: true, key: 1},
			},
			trusted: all(1),
		},
		{
			name: "white space local file masks system key",
			files: []storeFile{
				{system: true, prefix: "a.com", key: 0},
				{prefix: "a.com", key: 0, data: "\n"},
			},
			trusted: all(),
		},
		{
			name: "mask is per scope",
			files: []storeFile{
				{system: true, key: 0},
				{key: 0, data: "-"},
				{system: true, prefix: "a.com/b", key: 0},
			},
			trusted: map[string][]int{"a.com/b": {0}, "a.com/b/c": {0}},
		},
		{
			name:    "local empty file without system key is nothing",
			files:   []storeFile{{key: 0, data: "-"}},
			trusted: all(),
		},
		{
			name:    "mismatched file name",
			files:   []storeFile{{key: 0, name: "0123456789abcdef0123456789abcdef01234567"}},
			wantErr: filepath.Join("root.d", "0123456789abcdef0123456789abcdef01234567") + ": file name does not match",
		},
		{
			name:    "system file that is not a key",
			files:   []storeFile{{system: true, key: 2, data: "garbage"}},
			wantErr: "root.d",
		},
		{
			name: "temporary files are ignored",
			files: []storeFile{
				{key: 0, name: "." + "tmp-123", data: "half a key"},
				{key: 0},
			},
			trusted: all(0),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ks := &signing.Keystore{LocalDir: filepath.Join(t.TempDir(), "etc"), SystemDir: filepath.Join(t.TempDir(), "usr")}
			for _, f := range tc.files {
				f.write(t, ks, k)
			}
			for _, name := range names {
				kr, err := ks.Keyring(name)
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("Keyring(%q) error = %v, want one containing %q", name, err, tc.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("Keyring(%q): %v", name, err)
				}
				var got []int
				for i, key := range k {
					signer, err := signing.Verify(kr, bytes.NewReader(signedData), bytes.NewReader(key.sig))
					if err == nil {
						if fp(signer) != key.fp {
							t.Errorf("Verify(%q, key %d) signer = %s, want %s", name, i, fp(signer), key.fp)
						}
						got = append(got, i)
						continue
					}
					var ue *signing.UntrustedSignerError
					if !errors.As(err, &ue) {
						t.Errorf("Verify(%q, key %d) error = %v, want *UntrustedSignerError", name, i, err)
					}
				}
				if diff := cmp.Diff(tc.trusted[name], got); diff != "" {
					t.Errorf("keys trusted for %q mismatch (-want +got):\n%s", name, diff)
				}
			}
		})
	}
}

func TestKeyringInvalidName(t *testing.T) {
	t.Parallel()
	ks := &signing.Keystore{LocalDir: t.TempDir()}
	for _, name := range []string{"", "/a.com", "a.com/", "a.com//b", "a.com/../b", "..", "A.com", "a.com/./b"} {
		if _, err := ks.Keyring(name); err == nil {
			t.Errorf("Keyring(%q) succeeded, want an error", name)
		}
	}
}

func TestValidatePrefix(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"a.com", "a.com/b", "example.com/some-app_1~x", "coreos.com/etcd"} {
		if err := signing.ValidatePrefix(p); err != nil {
			t.Errorf("ValidatePrefix(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"", "/a", "a/", "a//b", "..", "a/../b", "a/./b", "A", "a b", "a\\b", "a/.hidden"} {
		if err := signing.ValidatePrefix(p); err == nil {
			t.Errorf("ValidatePrefix(%q) = nil, want an error", p)
		}
	}
}

func TestTrustListRemove(t *testing.T) {
	t.Parallel()
	k := threeKeys(t)
	local, system := filepath.Join(t.TempDir(), "etc"), filepath.Join(t.TempDir(), "usr")
	ks := &signing.Keystore{LocalDir: local, SystemDir: system}
	sysPath := filepath.Join(system, "trustedkeys", "root.d", k[2].fp)
	writeFile(t, sysPath, k[2].public)

	got, err := ks.Trust("a.com/b", k[0].public)
	if err != nil {
		t.Fatalf("Trust(a.com/b): %v", err)
	}
	info0, err := signing.ReadKey(k[0].public)
	if err != nil {
		t.Fatalf("ReadKey: %v", err)
	}
	want0 := signing.TrustedKey{KeyInfo: info0, Prefix: "a.com/b", Path: filepath.Join(local, "trustedkeys", "prefix.d", "a.com", "b", k[0].fp)}
	if diff := cmp.Diff(want0, got); diff != "" {
		t.Errorf("Trust mismatch (-want +got):\n%s", diff)
	}
	if _, err := ks.Trust("", k[1].public); err != nil {
		t.Fatalf("Trust(root): %v", err)
	}
	info1, _ := signing.ReadKey(k[1].public)
	info2, _ := signing.ReadKey(k[2].public)
	want1 := signing.TrustedKey{KeyInfo: info1, Path: filepath.Join(local, "trustedkeys", "root.d", k[1].fp)}
	want2 := signing.TrustedKey{KeyInfo: info2, Path: sysPath, System: true}

	list, err := ks.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	wantList := []signing.TrustedKey{want1, want2, want0}
	if want2.Fingerprint < want1.Fingerprint {
		wantList = []signing.TrustedKey{want2, want1, want0}
	}
	if diff := cmp.Diff(wantList, list); diff != "" {
		t.Errorf("List mismatch (-want +got):\n%s", diff)
	}

	// The stored key verifies only under its prefix.
	if _, err := ks.Verify("a.com/b/app", bytes.NewReader(signedData), bytes.NewReader(k[0].sig)); err != nil {
		t.Errorf("Verify(a.com/b/app) with key trusted for a.com/b: %v", err)
	}
	_, err = ks.Verify("a.com/c", bytes.NewReader(signedData), bytes.NewReader(k[0].sig))
	var ue *signing.UntrustedSignerError
	if !errors.As(err, &ue) || ue.Name != "a.com/c" || !strings.Contains(err.Error(), "rkt trust --prefix a.com/c") {
		t.Errorf("Verify(a.com/c) error = %v, want *UntrustedSignerError for a.com/c", err)
	}

	// Removing a local key deletes its file.
	removed, err := ks.Remove(strings.ToUpper(k[0].fp))
	if err != nil {
		t.Fatalf("Remove(local key): %v", err)
	}
	if diff := cmp.Diff([]string{want0.Path}, removed); diff != "" {
		t.Errorf("Remove(local key) mismatch (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(want0.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("key file %s still there after Remove: %v", want0.Path, err)
	}
	if _, err := ks.Remove(k[0].fp); !errors.Is(err, signing.ErrKeyNotFound) {
		t.Errorf("second Remove error = %v, want ErrKeyNotFound", err)
	}

	// Removing a system key masks it with an empty local file.
	removed, err = ks.Remove(k[2].fp)
	if err != nil {
		t.Fatalf("Remove(system key): %v", err)
	}
	mask := filepath.Join(local, "trustedkeys", "root.d", k[2].fp)
	if diff := cmp.Diff([]string{mask}, removed); diff != "" {
		t.Errorf("Remove(system key) mismatch (-want +got):\n%s", diff)
	}
	if fi, err := os.Stat(mask); err != nil || fi.Size() != 0 {
		t.Errorf("mask file %s: %v, size %v; want an empty file", mask, err, fi)
	}
	if data, err := os.ReadFile(sysPath); err != nil || !bytes.Equal(data, k[2].public) {
		t.Errorf("system key file changed by Remove: %v", err)
	}
	if _, err := ks.Remove(k[2].fp); !errors.Is(err, signing.ErrKeyNotFound) {
		t.Errorf("Remove of masked key error = %v, want ErrKeyNotFound", err)
	}
	list, err = ks.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if diff := cmp.Diff([]signing.TrustedKey{want1}, list); diff != "" {
		t.Errorf("List after Remove mismatch (-want +got):\n%s", diff)
	}

	// Trusting the masked key again replaces the mask.
	if _, err := ks.Trust("", k[2].public); err != nil {
		t.Fatalf("Trust(masked key): %v", err)
	}
	if _, err := ks.Verify("z.org", bytes.NewReader(signedData), bytes.NewReader(k[2].sig)); err != nil {
		t.Errorf("Verify after re-trusting masked key: %v", err)
	}
}

func TestTrustRejects(t *testing.T) {
	t.Parallel()
	k := threeKeys(t)
	ks := &signing.Keystore{LocalDir: t.TempDir()}
	revoked := newEntity(t, "revoked", nil)
	if err := revoked.RevokeKey(packet.KeyRetired, "retired", nil); err != nil {
		t.Fatal(err)
	}
	twoKeys := append(bytes.Clone(k[0].public), k[1].public...)
	cases := []struct {
		name    string
		ks      *signing.Keystore
		prefix  string
		key     []byte
		wantErr string
	}{
		{name: "invalid prefix", ks: ks, prefix: "a.com/../b", key: k[0].public, wantErr: `invalid prefix "a.com/../b"`},
		{name: "upper case prefix", ks: ks, prefix: "A.com", key: k[0].public, wantErr: "invalid prefix"},
		{name: "no local dir", ks: &signing.Keystore{SystemDir: t.TempDir()}, key: k[0].public, wantErr: "no local config directory"},
		{name: "not armored", ks: ks, key: []byte("hello"), wantErr: "no armored public key"},
		{name: "secret key", ks: ks, key: armoredSecret(t, k[0].entity), wantErr: `"PGP PRIVATE KEY BLOCK"`},
		{name: "revoked key", ks: ks, key: armoredPublic(t, revoked), wantErr: "revoked"},
		{name: "signature instead of key", ks: ks, key: k[0].sig, wantErr: `"PGP SIGNATURE"`},
		{name: "first block holds one key only", ks: ks, key: twoKeys, wantErr: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.ks.Trust(tc.prefix, tc.key)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Trust: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Trust error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestReadKey(t *testing.T) {
	t.Parallel()
	e := newEntity(t, "alice", nil)
	got, err := signing.ReadKey(armoredPublic(t, e))
	if err != nil {
		t.Fatalf("ReadKey: %v", err)
	}
	want := signing.KeyInfo{Fingerprint: fp(e), UserIDs: []string{"alice (test) <alice@example.com>"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadKey mismatch (-want +got):\n%s", diff)
	}
	if len(got.Fingerprint) != 40 {
		t.Errorf("fingerprint %q is not 40 hex digits", got.Fingerprint)
	}
}

func TestRemoveInvalidFingerprint(t *testing.T) {
	t.Parallel()
	ks := &signing.Keystore{LocalDir: t.TempDir()}
	for _, f := range []string{"", "abc", "../../etc/passwd", strings.Repeat("g", 40)} {
		if _, err := ks.Remove(f); err == nil || errors.Is(err, signing.ErrKeyNotFound) {
			t.Errorf("Remove(%q) error = %v, want an invalid fingerprint error", f, err)
		}
	}
}

func TestMismatchedPrefixKey(t *testing.T) {
	t.Parallel()
	k := threeKeys(t)
	ks := &signing.Keystore{LocalDir: t.TempDir()}
	bad := filepath.Join(ks.LocalDir, "trustedkeys", "prefix.d", "a.com", k[1].fp)
	writeFile(t, bad, k[0].public)
	if _, err := ks.Keyring("z.org"); err != nil {
		t.Errorf("Keyring(z.org), outside the bad prefix: %v", err)
	}
	for _, name := range []string{"a.com", "a.com/b"} {
		_, err := ks.Keyring(name)
		if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), k[0].fp) {
			t.Errorf("Keyring(%q) error = %v, want one naming %s and fingerprint %s", name, err, bad, k[0].fp)
		}
	}
	if _, err := ks.List(); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("List error = %v, want one naming %s", err, bad)
	}
}
