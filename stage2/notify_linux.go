package stage2

import (
	"bytes"
	"os"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/eintr"
)

// listenNotify opens an app's sd_notify socket (apps whose image carries
// appc.io/executor/supports-systemd-notify=true). A goroutine owned by the
// supervisor reads it and reports the app on s.readyCh when it sends
// READY=1; it ends when the returned stop function closes the socket.
func (s *supervisor) listenNotify(app, path string) (func(), error) {
	os.Remove(path)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "bind", Path: path, Err: err}
	}
	// Apps may run as any user.
	os.Chmod(path, 0o666)
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := eintr.Retry2(func() (int, error) {
				n, _, err := unix.Recvfrom(fd, buf, 0)
				return n, err
			})
			if err != nil || n == 0 {
				return
			}
			for _, line := range bytes.Split(buf[:n], []byte("\n")) {
				if string(line) == "READY=1" {
					select {
					case s.readyCh <- app:
					case <-quit:
						return
					}
				}
			}
		}
	}()
	return func() {
		close(quit)
		unix.Shutdown(fd, unix.SHUT_RDWR)
		unix.Close(fd)
		<-done
	}, nil
}
