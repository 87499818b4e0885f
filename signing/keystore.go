package signing

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/rkt-ng/rkt/internal/atomicfile"
)

// Layout of the trust store inside a config directory, as rkt's
// pkg/keystore: keys trusted for every image in root.d, keys trusted for a
// name prefix in prefix.d/<prefix>, each in a file named by its fingerprint.
const (
	trustedKeysDir = "trustedkeys"
	rootDir        = "root.d"
	prefixDir      = "prefix.d"
)

// Keystore is the trust store of two config directories. Keys in LocalDir
// (such as /etc/rkt) override keys of the same scope and file name in
// SystemDir (such as /usr/lib/rkt); an empty file in LocalDir masks the
// SystemDir key of that name. Either directory may be "". Only LocalDir is
// ever written.
//
// A Keystore holds no state besides the two paths: every call reads the
// directories afresh, and writes are atomic renames, so several processes may
// use one store at a time.
type Keystore struct {
	LocalDir  string
	SystemDir string
}

// TrustedKey is a key in the trust store.
type TrustedKey struct {
	KeyInfo
	// Prefix is the name prefix the key is trusted for; "" means every image
	// (root.d).
	Prefix string
	// Path is the file the key was read from.
	Path string
	// System is true if Path is in the system config directory.
	System bool
}

// Keyring returns the keys trusted for an image name: every root key and the
// keys of each prefix made of whole leading components of the name. For
// "a.com/b/c" those are prefix.d/a.com, prefix.d/a.com/b and
// prefix.d/a.com/b/c, but not prefix.d/a.com/bc. Revoked and expired keys are
// included, so that verification reports them as such rather than as
// untrusted.
func (k *Keystore) Keyring(imageName string) (openpgp.EntityList, error) {
	if !acIdentifier.MatchString(imageName) {
		return nil, fmt.Errorf("invalid image name %q: want an AC identifier such as example.com/app", imageName)
	}
	scopes := []string{""}
	parts := strings.Split(imageName, "/")
	for i := range parts {
		scopes = append(scopes, strings.Join(parts[:i+1], "/"))
	}
	var el openpgp.EntityList
	seen := make(map[string]bool)
	for _, s := range scopes {
		keys, err := k.scopeKeys(s)
		if err != nil {
			return nil, err
		}
		for _, sk := range keys {
			if seen[sk.Fingerprint] {
				continue
			}
			seen[sk.Fingerprint] = true
			el = append(el, sk.entity)
		}
	}
	return el, nil
}

// PrefixKeys returns the keys trusted for an image name through a name
// prefix: the keys of prefix.d/<p> for each prefix p of whole leading
// components of the name, as Keyring finds them, without the root keys.
// Trust on first use asks it whether a name has a trusted signer already.
func (k *Keystore) PrefixKeys(imageName string) ([]TrustedKey, error) {
	if !acIdentifier.MatchString(imageName) {
		return nil, fmt.Errorf("invalid image name %q: want an AC identifier such as example.com/app", imageName)
	}
	var out []TrustedKey
	parts := strings.Split(imageName, "/")
	for i := range parts {
		keys, err := k.scopeKeys(strings.Join(parts[:i+1], "/"))
		if err != nil {
			return nil, err
		}
		for _, sk := range keys {
			out = append(out, sk.TrustedKey)
		}
	}
	return out, nil
}

// Trust stores an armored public key in LocalDir, trusted for images whose
// name starts with prefix ("" trusts it for every image). It replaces an
// earlier local file of the same key and scope, including an empty file
// masking a system key. The key must be usable, as ReadKey checks.
func (k *Keystore) Trust(prefix string, armored []byte) (TrustedKey, error) {
	if prefix != "" {
		if err := ValidatePrefix(prefix); err != nil {
			return TrustedKey{}, err
		}
	}
	if k.LocalDir == "" {
		return TrustedKey{}, errors.New("trust key: no local config directory to store it in")
	}
	e, body, err := readPublicKey(armored)
	if err != nil {
		return TrustedKey{}, err
	}
	if err := checkUsable(e, time.Now()); err != nil {
		return TrustedKey{}, err
	}
	info := keyInfo(e)
	dir := filepath.Join(k.LocalDir, scopeDir(prefix))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return TrustedKey{}, fmt.Errorf("trust key %s: %w", info.Fingerprint, err)
	}
	path := filepath.Join(dir, info.Fingerprint)
	// Store the key re-armored from its parsed packets, without armor
	// headers or whatever followed the block in the input.
	err = atomicfile.Write(path, 0o644, func(w io.Writer) error {
		aw, err := armor.Encode(w, openpgp.PublicKeyType, nil)
		if err != nil {
			return err
		}
		if _, err := aw.Write(body); err != nil {
			return err
		}
		if err := aw.Close(); err != nil {
			return err
		}
		_, err = io.WriteString(w, "\n")
		return err
	})
	if err != nil {
		return TrustedKey{}, fmt.Errorf("trust key %s: %w", info.Fingerprint, err)
	}
	return TrustedKey{KeyInfo: info, Prefix: prefix, Path: path}, nil
}

// List returns every effective trusted key, root keys first, then by prefix
// and fingerprint. Masked and overridden system keys are left out.
func (k *Keystore) List() ([]TrustedKey, error) {
	scopes, err := k.scopes()
	if err != nil {
		return nil, err
	}
	var out []TrustedKey
	for _, s := range scopes {
		keys, err := k.scopeKeys(s)
		if err != nil {
			return nil, err
		}
		for _, sk := range keys {
			out = append(out, sk.TrustedKey)
		}
	}
	return out, nil
}

// Remove stops trusting the key with the given fingerprint in every scope. A
// local key file is deleted; a system key file, which cannot be deleted, is
// masked with an empty local file of the same name. Remove returns the local
// paths it deleted or wrote, and an error wrapping ErrKeyNotFound if the key
// was trusted nowhere.
func (k *Keystore) Remove(fingerprint string) (removed []string, err error) {
	fp, err := normalizeFingerprint(fingerprint)
	if err != nil {
		return nil, err
	}
	if k.LocalDir == "" {
		return nil, errors.New("remove key: no local config directory")
	}
	scopes, err := k.scopes()
	if err != nil {
		return nil, err
	}
	for _, s := range scopes {
		local := filepath.Join(k.LocalDir, scopeDir(s), fp)
		localSize, localExists, err := fileSize(local)
		if err != nil {
			return removed, err
		}
		systemExists := false
		if k.SystemDir != "" {
			size, exists, err := fileSize(filepath.Join(k.SystemDir, scopeDir(s), fp))
			if err != nil {
				return removed, err
			}
			systemExists = exists && size > 0
		}
		switch {
		case systemExists && localExists && localSize == 0:
			// Already masked.
		case systemExists:
			if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
				return removed, fmt.Errorf("mask key %s: %w", fp, err)
			}
			if err := atomicfile.WriteFile(local, nil, 0o644); err != nil {
				return removed, fmt.Errorf("mask key %s: %w", fp, err)
			}
			removed = append(removed, local)
		case localExists && localSize > 0:
			if err := os.Remove(local); err != nil {
				return removed, fmt.Errorf("remove key %s: %w", fp, err)
			}
			removed = append(removed, local)
		}
	}
	if len(removed) == 0 {
		return nil, fmt.Errorf("key %s: %w", fp, ErrKeyNotFound)
	}
	return removed, nil
}

// scopeDir is the directory, relative to a config directory, that holds the
// keys of a prefix ("" for root.d).
func scopeDir(prefix string) string {
	if prefix == "" {
		return filepath.Join(trustedKeysDir, rootDir)
	}
	return filepath.Join(trustedKeysDir, prefixDir, filepath.FromSlash(prefix))
}

// scopes returns "" (root) and every prefix that has a directory under
// prefix.d in either config directory, sorted.
func (k *Keystore) scopes() ([]string, error) {
	set := map[string]bool{"": true}
	for _, dir := range []string{k.SystemDir, k.LocalDir} {
		if dir == "" {
			continue
		}
		base := filepath.Join(dir, trustedKeysDir, prefixDir)
		err := filepath.WalkDir(base, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if path == base && errors.Is(err, fs.ErrNotExist) {
					return fs.SkipDir
				}
				return err
			}
			if !d.IsDir() || path == base {
				return nil
			}
			if strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			rel, err := filepath.Rel(base, path)
			if err != nil {
				return err
			}
			set[filepath.ToSlash(rel)] = true
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list trusted key prefixes: %w", err)
		}
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out, nil
}

type storedKey struct {
	TrustedKey
	entity *openpgp.Entity
}

// scopeKeys reads the effective keys of one scope, sorted by fingerprint:
// each file name taken from LocalDir if present there, else from SystemDir;
// empty (or white space only) files contribute nothing.
func (k *Keystore) scopeKeys(prefix string) ([]storedKey, error) {
	type ref struct {
		path   string
		system bool
	}
	files := make(map[string]ref)
	for _, d := range []struct {
		dir    string
		system bool
	}{{k.SystemDir, true}, {k.LocalDir, false}} {
		if d.dir == "" {
			continue
		}
		dir := filepath.Join(d.dir, scopeDir(prefix))
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read trusted keys: %w", err)
		}
		for _, de := range entries {
			name := de.Name()
			// Dot files are atomicfile's temporaries and editor droppings.
			if strings.HasPrefix(name, ".") {
				continue
			}
			path := filepath.Join(dir, name)
			isDir := de.IsDir()
			if de.Type()&fs.ModeSymlink != 0 {
				if fi, err := os.Stat(path); err == nil && fi.IsDir() {
					isDir = true
				}
			}
			// In prefix.d, directories are longer prefixes.
			if isDir {
				continue
			}
			files[name] = ref{path: path, system: d.system}
		}
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []storedKey
	for _, name := range names {
		r := files[name]
		data, err := readKeyFile(r.path)
		if err != nil {
			return nil, err
		}
		if len(data) == 0 {
			continue
		}
		e, _, err := readPublicKey(data)
		if err != nil {
			return nil, fmt.Errorf("trusted key %s: %w", r.path, err)
		}
		info := keyInfo(e)
		if info.Fingerprint != name {
			return nil, fmt.Errorf("trusted key %s: file name does not match the key's fingerprint %s", r.path, info.Fingerprint)
		}
		out = append(out, storedKey{
			TrustedKey: TrustedKey{KeyInfo: info, Prefix: prefix, Path: r.path, System: r.system},
			entity:     e,
		})
	}
	return out, nil
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read trusted key: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeySize+1))
	if err != nil {
		return nil, fmt.Errorf("read trusted key %s: %w", path, err)
	}
	if len(data) > maxKeySize {
		return nil, fmt.Errorf("trusted key %s is larger than %d bytes", path, maxKeySize)
	}
	// A file of only white space (echo > file) masks like an empty one.
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	return data, nil
}

// fileSize reports the size of a regular file, and whether it exists.
func fileSize(path string) (int64, bool, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if fi.IsDir() {
		return 0, false, nil
	}
	return fi.Size(), true, nil
}
