// Package pty opens pseudo-terminal pairs and relays a caller's terminal
// through one, so that a pod's process gets a terminal of its own and never
// the caller's: a process that holds the caller's terminal can type into the
// caller's shell (TIOCSTI) or read its keystrokes.
package pty

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Open returns a new pseudo-terminal's master and slave ends, both
// close-on-exec; neither becomes this process's controlling terminal.
func Open() (master, slave *os.File, err error) {
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, &os.PathError{Op: "open", Path: "/dev/ptmx", Err: err}
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(m)
		return nil, nil, fmt.Errorf("unlock pty: %w", os.NewSyscallError("ioctl", err))
	}
	// TIOCGPTPEER opens the slave through the master, not by a path that
	// could name another devpts instance.
	s, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		unix.Close(m)
		return nil, nil, fmt.Errorf("open pty slave: %w", os.NewSyscallError("ioctl", errno))
	}
	return os.NewFile(uintptr(m), "ptmx"), os.NewFile(s, "pts"), nil
}

// IsTerminal reports whether fd is a terminal.
func IsTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// MakeRaw puts the terminal fd into raw mode (cfmakeraw(3)) and returns the
// function that restores its previous mode.
func MakeRaw(fd int) (restore func() error, err error) {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, os.NewSyscallError("ioctl TCGETS", err)
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, os.NewSyscallError("ioctl TCSETS", err)
	}
	return func() error { return unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}

// CopySize gives the terminal to the window size of the terminal from; the
// kernel then sends SIGWINCH to to's foreground process group.
func CopySize(from, to int) error {
	ws, err := unix.IoctlGetWinsize(from, unix.TIOCGWINSZ)
	if err != nil {
		return os.NewSyscallError("ioctl TIOCGWINSZ", err)
	}
	return unix.IoctlSetWinsize(to, unix.TIOCSWINSZ, ws)
}

// Relay copies in to the master and the master to out. Wait returns once the
// master reports that every holder of the slave closed it (EIO), which is
// when the pod's processes on the terminal are gone; the copy from in is
// abandoned then (it may block in a read of the caller's terminal, which
// the process's exit ends).
type Relay struct {
	done chan struct{}
	err  error
}

// StartRelay starts copying between the caller's in and out and master.
func StartRelay(master *os.File, in io.Reader, out io.Writer) *Relay {
	r := &Relay{done: make(chan struct{})}
	// The input copy ends at the caller's EOF or with this process; the
	// pod may go on writing after the caller's input ended.
	go io.Copy(master, in)
	go func() {
		defer close(r.done)
		_, err := io.Copy(out, master)
		if err != nil && !errors.Is(err, unix.EIO) {
			r.err = err
		}
	}()
	return r
}

// Wait blocks until the output side of the relay ended.
func (r *Relay) Wait() error {
	<-r.done
	return r.err
}

// Done is closed when the output side of the relay ended.
func (r *Relay) Done() <-chan struct{} { return r.done }
