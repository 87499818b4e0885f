package cri

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestRecoverUnary(t *testing.T) {
	s := &Server{log: slog.New(slog.DiscardHandler)}
	info := &grpc.UnaryServerInfo{FullMethod: "/runtime.v1.RuntimeService/Boom"}
	_, err := s.recoverUnary(context.Background(), nil, info, func(ctx context.Context, req any) (any, error) {
		var m map[string]int
		m["x"] = 1 // a nil map write: a programmer bug
		return nil, nil
	})
	if status.Code(err) != codes.Internal {
		t.Errorf("panicking handler: %v, want Internal", err)
	}
	resp, err := s.recoverUnary(context.Background(), nil, info, func(ctx context.Context, req any) (any, error) { return "ok", nil })
	if err != nil || resp != "ok" {
		t.Errorf("handler: %v %v", resp, err)
	}
}

func TestListen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	sock := filepath.Join(dir, "cri.sock")
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v %v, want 0600", fi.Mode(), err)
	}
	if di, err := os.Stat(dir); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("socket dir mode %v %v, want 0700", di.Mode(), err)
	}
	// A socket another server answers on is refused.
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
		}
	}()
	if l2, err := Listen(sock); err == nil {
		l2.Close()
		t.Error("listened on a live socket")
	}
	l.Close()
	// A stale socket is replaced; a file that is no socket is refused.
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	if l3, err := Listen(sock); err != nil {
		t.Errorf("stale socket: %v", err)
	} else {
		l3.Close()
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := Listen(file); err == nil {
		t.Error("listened over a regular file")
	}
}
