package eintr

import (
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRetry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		errs      []error
		wantCalls int
		wantErr   error
	}{
		{name: "success", errs: []error{nil}, wantCalls: 1},
		{name: "other error", errs: []error{unix.EBUSY}, wantCalls: 1, wantErr: unix.EBUSY},
		{name: "EINTR then success", errs: []error{unix.EINTR, unix.EINTR, nil}, wantCalls: 3},
		{name: "wrapped EINTR then error", errs: []error{&os.PathError{Op: "rmdir", Path: "x", Err: unix.EINTR}, unix.ENOENT}, wantCalls: 2, wantErr: unix.ENOENT},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			calls := 0
			err := Retry(func() error {
				err := tc.errs[calls]
				calls++
				return err
			})
			if calls != tc.wantCalls {
				t.Errorf("calls = %d, want %d", calls, tc.wantCalls)
			}
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestRetry2(t *testing.T) {
	t.Parallel()
	calls := 0
	v, err := Retry2(func() (int, error) {
		calls++
		if calls < 3 {
			return -1, unix.EINTR
		}
		return 42, nil
	})
	if v != 42 || err != nil || calls != 3 {
		t.Errorf("Retry2 = %d, %v after %d calls; want 42, nil after 3", v, err, calls)
	}
	v, err = Retry2(func() (int, error) { return 7, unix.EAGAIN })
	if v != 7 || err != unix.EAGAIN {
		t.Errorf("Retry2 = %d, %v; want 7, EAGAIN (value and raw errno kept)", v, err)
	}
}
