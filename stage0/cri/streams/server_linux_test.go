package streams

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/rkt-ng/rkt/pods"
	"github.com/rkt-ng/rkt/stage0"
)

func newTestServer(t *testing.T) *Server {
	t.Helper()
	resolve := func(id string) (string, string, error) {
		if id == "known" {
			return "11111111-2222-3333-4444-555555555555", "web", nil
		}
		return "", "", status.Errorf(codes.NotFound, "no container %q", id)
	}
	s, err := New(&stage0.Config{Dir: t.TempDir()}, "127.0.0.1:0", resolve)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestBadRequests: malformed requests and unknown IDs get the gRPC codes
// the kubelet understands, before any stream exists.
func TestBadRequests(t *testing.T) {
	s := newTestServer(t)
	ctx := context.Background()
	for name, tc := range map[string]struct {
		call func() error
		want codes.Code
	}{
		"execsync no command": {func() error {
			_, err := s.ExecSync(ctx, &runtime.ExecSyncRequest{ContainerId: "known"})
			return err
		}, codes.InvalidArgument},
		"execsync unknown": {func() error {
			_, err := s.ExecSync(ctx, &runtime.ExecSyncRequest{ContainerId: "nope", Cmd: []string{"true"}})
			return err
		}, codes.NotFound},
		"execsync no id": {func() error {
			_, err := s.ExecSync(ctx, &runtime.ExecSyncRequest{Cmd: []string{"true"}})
			return err
		}, codes.InvalidArgument},
		"execsync pod gone": {func() error {
			_, err := s.ExecSync(ctx, &runtime.ExecSyncRequest{ContainerId: "known", Cmd: []string{"true"}})
			return err
		}, codes.NotFound},
		"exec no command": {func() error {
			_, err := s.Exec(ctx, &runtime.ExecRequest{ContainerId: "known", Stdout: true})
			return err
		}, codes.InvalidArgument},
		"exec unknown": {func() error {
			_, err := s.Exec(ctx, &runtime.ExecRequest{ContainerId: "nope", Cmd: []string{"sh"}, Stdout: true})
			return err
		}, codes.NotFound},
		"attach unknown": {func() error {
			_, err := s.Attach(ctx, &runtime.AttachRequest{ContainerId: "nope", Stdout: true})
			return err
		}, codes.NotFound},
		"portforward no id": {func() error {
			_, err := s.PortForward(ctx, &runtime.PortForwardRequest{})
			return err
		}, codes.InvalidArgument},
		"portforward bad port": {func() error {
			_, err := s.PortForward(ctx, &runtime.PortForwardRequest{PodSandboxId: "11111111-2222-3333-4444-555555555555", Port: []int32{70000}})
			return err
		}, codes.InvalidArgument},
		"portforward unknown": {func() error {
			_, err := s.PortForward(ctx, &runtime.PortForwardRequest{PodSandboxId: "11111111-2222-3333-4444-555555555555", Port: []int32{80}})
			return err
		}, codes.NotFound},
	} {
		if got := status.Code(tc.call()); got != tc.want {
			t.Errorf("%s: code %v, want %v", name, got, tc.want)
		}
	}
}

func TestGRPCError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("x: %w", pods.ErrNotFound), codes.NotFound},
		{fmt.Errorf("x: %w", stage0.ErrNoApp), codes.NotFound},
		{fmt.Errorf("x: %w", pods.ErrBadState), codes.FailedPrecondition},
		{fmt.Errorf("x: %w", stage0.ErrAppNotRunning), codes.FailedPrecondition},
		{status.Error(codes.Unavailable, "x"), codes.Unavailable},
		{errors.New("x"), codes.Internal},
	} {
		if got := status.Code(grpcError(tc.err)); got != tc.want {
			t.Errorf("grpcError(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"sh", "-c", "exit 0"}, 0},
		{[]string{"sh", "-c", "exit 3"}, 3},
		{[]string{"sh", "-c", "kill -9 $$"}, 137},
	} {
		code, err := exitCode(exec.Command(tc.args[0], tc.args[1:]...).Run())
		if err != nil || code != tc.want {
			t.Errorf("%v: exitCode = %d, %v, want %d", tc.args, code, err, tc.want)
		}
	}
	if _, err := exitCode(exec.Command("/nonexistent").Run()); err == nil {
		t.Error("exitCode of a command that could not start: no error")
	}
}

func TestBoundedBuffer(t *testing.T) {
	b := &boundedBuffer{max: 5}
	for _, s := range []string{"abc", "defg", "h"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if string(b.Bytes()) != "abcde" {
		t.Errorf("kept %q, want abcde", b.Bytes())
	}
}

func TestStartClose(t *testing.T) {
	s := newTestServer(t)
	if err := s.Start(context.Background()); err == nil {
		t.Error("a second Start did not fail")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s2, err := New(&stage0.Config{Dir: t.TempDir()}, "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	s2.Start(ctx)
	cancel() // ends serving; Close still returns
	s2.Close()
	if _, err := New(&stage0.Config{}, "256.0.0.1:0", nil); err == nil {
		t.Error("New on a bad address: no error")
	}
}
