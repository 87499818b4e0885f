package mds

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// KeySize is the size of the host-wide HMAC key that LoadKey creates.
const KeySize = 64

// LoadKey returns the host-wide HMAC key stored at path, creating it on first
// use: KeySize random bytes in a file of mode 0600 inside a directory of mode
// 0700 (made if missing; its parents get 0755). Creation writes a temporary
// file and link(2)s it into place, which fails if the name exists, so
// processes racing to create the key all end up with the one that won. The
// directory must belong to the caller and be closed to group and others, and
// the file must be a private regular file of exactly KeySize bytes; anything
// else is an error rather than a silent new key, which would break the
// verification of signatures made with the old one.
func LoadKey(path string) ([]byte, error) {
	dir := filepath.Dir(path)
	if err := keyDir(dir); err != nil {
		return nil, err
	}
	key, err := readKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := createKey(path); err != nil {
		return nil, err
	}
	return readKey(path)
}

// keyDir makes dir (0700) if needed and checks that only the caller can use it.
func keyDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("hmac key directory: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("hmac key directory: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return fmt.Errorf("hmac key directory: %w", &os.PathError{Op: "lstat", Path: dir, Err: err})
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return fmt.Errorf("hmac key directory %s: not a directory", dir)
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("hmac key directory %s: owned by uid %d, not %d", dir, st.Uid, os.Geteuid())
	case st.Mode&0o077 != 0:
		return fmt.Errorf("hmac key directory %s: mode %04o, want 0700", dir, st.Mode&0o7777)
	}
	return nil
}

// readKey reads an existing key file, refusing symlinks, non-regular files,
// files others can read and files of the wrong size.
func readKey(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("hmac key: %w", &os.PathError{Op: "open", Path: path, Err: err})
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("hmac key: %w", &os.PathError{Op: "fstat", Path: path, Err: err})
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil, fmt.Errorf("hmac key %s: not a regular file", path)
	case int(st.Uid) != os.Geteuid():
		return nil, fmt.Errorf("hmac key %s: owned by uid %d, not %d", path, st.Uid, os.Geteuid())
	case st.Mode&0o077 != 0:
		return nil, fmt.Errorf("hmac key %s: mode %04o, want 0600", path, st.Mode&0o7777)
	case st.Size != KeySize:
		return nil, fmt.Errorf("hmac key %s: %d bytes, want %d", path, st.Size, KeySize)
	}
	key := make([]byte, KeySize)
	if _, err := io.ReadFull(f, key); err != nil {
		return nil, fmt.Errorf("hmac key %s: %w", path, err)
	}
	return key, nil
}

// createKey writes a new random key to a temporary file and links it to path.
// Losing the race to another process (EEXIST) is success: the caller reads
// the winner's key.
func createKey(path string) error {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("hmac key: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("hmac key: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(key)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("hmac key %s: %w", tmp, err)
	}
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("hmac key: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes a new directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("hmac key directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("hmac key directory %s: %w", dir, err)
	}
	return nil
}
