package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The streaming calls are served by package stage0/cri/streams.

// ExecSync runs a command in a container and returns its output.
func (s *Server) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	return s.streams.ExecSync(ctx, req)
}

// Exec returns the streaming URL of a command in a container.
func (s *Server) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	return s.streams.Exec(ctx, req)
}

// Attach returns the streaming URL of a container's stdio.
func (s *Server) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	return s.streams.Attach(ctx, req)
}

// PortForward returns the streaming URL of a sandbox's port forward.
func (s *Server) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	sb, err := s.findSandbox(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	// The ID may be a unique prefix; the stream serves the full one.
	return s.streams.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: sb.pod.UUID, Port: req.GetPort()})
}
