package main

import (
	"errors"

	"github.com/rkt-ng/rkt/stage0/images/deb"
	"github.com/rkt-ng/rkt/stage1"
)

// usageError marks a command-line mistake: exit status 2, as rkt.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// exitCode is the one place where an error becomes rkt's exit status: 0 for
// success, the app's code for an app's failure, 2 for usage errors, 1 (3
// with security updates) when `image outdated` finds a rebuild due, and 254
// for every failure of rkt itself.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ae *stage1.AppExitError
	if errors.As(err, &ae) {
		return ae.Code
	}
	var oe *deb.OutdatedError
	if errors.As(err, &oe) {
		if oe.Security > 0 {
			return 3
		}
		return 1
	}
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 254
}
