// Package flock wraps flock(2) on files and directories. Locks belong to the
// open file description, so they pass to children that inherit the fd and are
// released by the kernel when the last copy of the fd is closed, including
// when the holder is killed.
package flock

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/eintr"
)

// ErrLocked is returned by the non-blocking calls when another holder has the lock.
var ErrLocked = errors.New("locked")

// Lock is an open file or directory that can be flocked.
type Lock struct {
	f *os.File
}

// Open opens path (a file or a directory) for locking without taking a lock.
// Files are created if missing.
func Open(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		f, err = os.OpenFile(path, os.O_RDONLY|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	}
	if err != nil {
		return nil, err
	}
	return &Lock{f: f}, nil
}

// OpenDir opens an existing directory for locking; it never creates anything.
func OpenDir(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &Lock{f: f}, nil
}

func (l *Lock) flock(how int) error {
	err := eintr.Retry(func() error { return unix.Flock(int(l.f.Fd()), how) })
	if err == unix.EWOULDBLOCK {
		return ErrLocked
	}
	if err != nil {
		return &os.PathError{Op: "flock", Path: l.f.Name(), Err: err}
	}
	return nil
}

// Exclusive blocks until it holds an exclusive lock.
func (l *Lock) Exclusive() error { return l.flock(unix.LOCK_EX) }

// TryExclusive takes an exclusive lock or returns ErrLocked.
func (l *Lock) TryExclusive() error { return l.flock(unix.LOCK_EX | unix.LOCK_NB) }

// Shared blocks until it holds a shared lock.
func (l *Lock) Shared() error { return l.flock(unix.LOCK_SH) }

// TryShared takes a shared lock or returns ErrLocked.
func (l *Lock) TryShared() error { return l.flock(unix.LOCK_SH | unix.LOCK_NB) }

// Unlock releases the lock but keeps the file open.
func (l *Lock) Unlock() error { return l.flock(unix.LOCK_UN) }

// Fd is the descriptor holding the lock.
func (l *Lock) Fd() uintptr { return l.f.Fd() }

// File is the open file holding the lock.
func (l *Lock) File() *os.File { return l.f }

// Close closes the file, releasing the lock if no other copy of the fd remains.
func (l *Lock) Close() error { return l.f.Close() }
