package kvm

import (
	"bufio"
	"log/slog"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/stage1/kvm/channel"
)

// fakeGuest plays the agent on a socketpair: hello, then, after the start
// request, exit (when code >= 0) and power-off: its end closes and qemu's
// end (q.done) comes right after, as when the guest powers off at once.
func fakeGuest(t *testing.T, code int) (host *os.File, q *qemuProcess) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	host, guest := os.NewFile(uintptr(fds[0]), "host"), os.NewFile(uintptr(fds[1]), "guest")
	q = &qemuProcess{done: make(chan struct{})}
	go func() {
		defer close(q.done)
		defer guest.Close()
		if channel.WriteJSON(guest, channel.Hello, channel.HelloMsg{Kernel: "test"}) != nil {
			return
		}
		if _, _, err := channel.Read(bufio.NewReader(guest)); err != nil {
			return
		}
		if code >= 0 {
			channel.WriteJSON(guest, channel.Exit, channel.ExitMsg{Code: code})
		}
	}()
	return host, q
}

// TestConverseExitThenPowerOff: the agent powers off as soon as it has
// sent its exit message, so qemu may be gone before the host has read the
// message. The pod's exit code must still come back, every time (converse
// used to pick qemu's exit at random among the ready cases and report a
// failure, and the run entrypoint then waited for qemu's end a second
// time, for ever).
func TestConverseExitThenPowerOff(t *testing.T) {
	t.Chdir(t.TempDir()) // the exec socket, kvm.sock
	p := &pod{log: slog.New(slog.DiscardHandler)}
	for i := range 50 {
		host, q := fakeGuest(t, 42)
		code, err := p.converse(host, &channel.StartRequest{}, q, newTail(1024))
		host.Close()
		if err != nil || code != 42 {
			t.Fatalf("run %d: converse = %d, %v; want 42, nil", i, code, err)
		}
	}
}

// TestConverseQEMUExitWithoutExit: a guest gone without an exit message
// is an error naming qemu's exit, not a wait.
func TestConverseQEMUExitWithoutExit(t *testing.T) {
	t.Chdir(t.TempDir())
	p := &pod{log: slog.New(slog.DiscardHandler)}
	host, q := fakeGuest(t, -1)
	defer host.Close()
	_, err := p.converse(host, &channel.StartRequest{}, q, newTail(1024))
	if err == nil || !strings.Contains(err.Error(), "qemu exited") {
		t.Fatalf("converse: %v, want qemu exited before the pod reported its exit", err)
	}
}
