package cri

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The streaming calls are served by package stage0/cri/streams; until it
// is wired in here they are refused.

var errNoStreaming = status.Error(codes.Unimplemented, "exec, attach and port-forward are not wired into this build of rkt-cri yet (stage0/cri/streams)")

// ExecSync runs a command in a container and returns its output.
func (s *Server) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	return nil, errNoStreaming
}

// Exec returns the streaming URL of a command in a container.
func (s *Server) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	return nil, errNoStreaming
}

// Attach returns the streaming URL of a container's stdio.
func (s *Server) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	return nil, errNoStreaming
}

// PortForward returns the streaming URL of a sandbox's port forward.
func (s *Server) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	return nil, errNoStreaming
}
