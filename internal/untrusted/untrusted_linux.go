// Package untrusted opens files on the host that a pod may have written
// (status records, logs, anything below a pod's stage1 rootfs or overlay
// upper dirs): the last path component is never followed if it is a
// symlink, opening never blocks on a FIFO or device, only regular files are
// accepted, and reads are bounded. The content itself stays hostile input
// for the caller to parse.
package untrusted

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Open opens path for reading if it is a regular file.
func Open(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	// A blocking fd (regular files never block): not registered with the
	// runtime's poller, which is most of the cost of reading many tiny
	// files (`rkt list`).
	return os.NewFile(uintptr(fd), path), nil
}

// ReadFile reads a regular file of at most max bytes; a longer one is an
// error.
func ReadFile(path string, max int64) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, &os.PathError{Op: "read", Path: path, Err: err}
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	return b, nil
}
