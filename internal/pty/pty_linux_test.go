package pty

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A child on the slave, as its controlling terminal in its own session,
// sees a terminal and its output comes out of the relay; the relay ends
// when the child is gone.
func TestRelay(t *testing.T) {
	master, slave, err := Open()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer master.Close()
	if !IsTerminal(int(slave.Fd())) {
		t.Fatal("slave is not a terminal")
	}
	cmd := exec.Command("/bin/sh", "-c", "test -t 0 && echo on-a-terminal; read l; echo got-$l")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var out bytes.Buffer
	in, inW, _ := os.Pipe()
	defer inW.Close()
	r := StartRelay(master, in, &out)
	inW.Write([]byte("line\n"))
	cmd.Wait()
	select {
	case <-r.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("relay did not end after the child exited")
	}
	if err := r.Wait(); err != nil {
		t.Errorf("relay: %v", err)
	}
	got := strings.ReplaceAll(out.String(), "\r", "")
	if !strings.Contains(got, "on-a-terminal\n") || !strings.Contains(got, "got-line\n") {
		t.Errorf("relayed output %q", got)
	}
}
