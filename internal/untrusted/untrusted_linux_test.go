package untrusted

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "status")
	os.WriteFile(regular, []byte("0"), 0o644)
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("host secret"), 0o600)
	link := filepath.Join(dir, "link")
	os.Symlink(secret, link)
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, []byte(strings.Repeat("x", 100)), 0o644)

	if b, err := ReadFile(regular, 10); err != nil || string(b) != "0" {
		t.Errorf("ReadFile(regular) = %q, %v", b, err)
	}
	if b, err := ReadFile(link, 100); err == nil {
		t.Errorf("ReadFile followed a symlink: %q", b)
	}
	// A FIFO would block a plain open until a writer comes.
	done := make(chan error, 1)
	go func() { _, err := ReadFile(fifo, 10); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("ReadFile(fifo) = %v, want not a regular file", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadFile blocked on a FIFO")
	}
	if _, err := ReadFile(big, 99); err == nil {
		t.Error("ReadFile read past its bound")
	}
	if _, err := ReadFile(dir, 10); err == nil {
		t.Error("ReadFile read a directory")
	}
}
