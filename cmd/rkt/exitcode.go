package main

import (
	"errors"

	"github.com/rkt-ng/rkt/stage1"
)

// usageError marks a command-line mistake: exit status 2, as rkt.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// exitCode is the one place where an error becomes rkt's exit status: 0 for
// success, the app's code for an app's failure, 2 for usage errors and 254
// for every failure of rkt itself.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ae *stage1.AppExitError
	if errors.As(err, &ae) {
		return ae.Code
	}
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 254
}
