package cri

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/rkt-ng/rkt/stage0"
	"github.com/rkt-ng/rkt/stage0/cri/streams"
)

// The streaming calls are served by package stage0/cri/streams, started
// with Serve on Options.StreamAddress; ReopenContainerLog by
// stage0.AppReopenLog.

var errNoStreams = status.Error(codes.Unavailable, "the streaming server is not running")

// startStreams starts the streaming server for Serve; it returns its stop.
func (s *Server) startStreams(ctx context.Context) (func(), error) {
	addr := s.streamAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	st, err := streams.New(s.stage0, addr, s.ResolveContainer, streams.WithLogger(s.log))
	if err != nil {
		return nil, err
	}
	if err := st.Start(ctx); err != nil {
		st.Close()
		return nil, err
	}
	s.log.Info("streaming", "address", st.Addr())
	s.streamsMu.Lock()
	s.streams = st
	s.streamsMu.Unlock()
	return func() {
		s.streamsMu.Lock()
		s.streams = nil
		s.streamsMu.Unlock()
		st.Close()
	}, nil
}

func (s *Server) streamServer() (*streams.Server, error) {
	s.streamsMu.Lock()
	defer s.streamsMu.Unlock()
	if s.streams == nil {
		return nil, errNoStreams
	}
	return s.streams, nil
}

// ExecSync runs a command in a container and returns its output.
func (s *Server) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	st, err := s.streamServer()
	if err != nil {
		return nil, err
	}
	return st.ExecSync(ctx, req)
}

// Exec returns the streaming URL of a command in a container.
func (s *Server) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	st, err := s.streamServer()
	if err != nil {
		return nil, err
	}
	return st.Exec(ctx, req)
}

// Attach returns the streaming URL of a container's stdio.
func (s *Server) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	st, err := s.streamServer()
	if err != nil {
		return nil, err
	}
	return st.Attach(ctx, req)
}

// PortForward returns the streaming URL of a sandbox's port forward; the
// sandbox ID may be a unique prefix.
func (s *Server) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	st, err := s.streamServer()
	if err != nil {
		return nil, err
	}
	if req.GetPodSandboxId() != "" {
		sb, err := s.findSandbox(req.GetPodSandboxId())
		if err != nil {
			return nil, err
		}
		req = &runtimeapi.PortForwardRequest{PodSandboxId: sb.pod.UUID, Port: req.GetPort()}
	}
	return st.PortForward(ctx, req)
}

// ReopenContainerLog has the container's pod write its CRI log to a new
// file at its path (after the kubelet renamed the old one away).
func (s *Server) ReopenContainerLog(ctx context.Context, req *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	ct, err := s.findContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if ct.state.State != stage0.AppRunning {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s is not running", ct.id)
	}
	if ct.meta.LogPath == "" {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s has no log path", ct.id)
	}
	if err := s.stage0.AppReopenLog(ctx, ct.sb.pod.UUID, ct.app); err != nil {
		return nil, grpcError("reopen container log", err)
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}
