// Package eintr retries a system call that a signal interrupted.
//
// Go installs its signal handlers with SA_RESTART, but some calls are never
// restarted by the kernel (signal(7), "Interruption of system calls and
// library functions by signal handlers": wait4 is, but splice, tee, openat2,
// flock and several cgroupfs operations are not on every kernel), so each of
// them is wrapped in [Retry] or [Retry2]. Any error other than EINTR, and
// success, end the retry. It is the one place that spells that loop (as
// runc's internal/linux does).
package eintr

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Retry calls fn until it returns anything but an error matching unix.EINTR
// (errors.Is, so a wrapped *os.PathError counts too) and returns that.
func Retry(fn func() error) error {
	for {
		err := fn()
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// Retry2 is [Retry] for a call that also returns a value. The value of an
// interrupted call is dropped.
func Retry2[T any](fn func() (T, error)) (T, error) {
	for {
		v, err := fn()
		if !errors.Is(err, unix.EINTR) {
			return v, err
		}
	}
}
