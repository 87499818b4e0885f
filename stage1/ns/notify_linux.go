package ns

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// sdNotify sends a message to the supervisor's NOTIFY_SOCKET (sd_notify(3))
// if there is one: systemd watches `rkt run` itself, whose PID this process
// kept, so MAINPID is ours. An abstract socket starts with '@'.
func sdNotify(msg string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if strings.HasPrefix(path, "@") {
		path = "\x00" + path[1:]
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, []byte(msg), 0, &unix.SockaddrUnix{Name: path}); err != nil {
		return fmt.Errorf("sd_notify: %w", &os.PathError{Op: "sendto", Path: os.Getenv("NOTIFY_SOCKET"), Err: err})
	}
	return nil
}
