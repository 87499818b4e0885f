// Package streams is the streaming side of rkt-ng's CRI server: ExecSync,
// and the Exec, Attach and PortForward requests whose answer is a URL that
// the kubelet (or crictl) then connects to, served by the CRI streaming
// library (k8s.io/cri-streaming, SPDY and websockets). Commands run inside
// an app with exactly the app's confinement, through the pod's stage1 enter
// entrypoint as `rkt enter` does (stage0.Config.EnterCmd); port forwards
// connect to the port from inside the pod's network namespace. It is
// Linux-only.
package streams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"

	"github.com/rkt-ng/rkt/pods"
	"github.com/rkt-ng/rkt/stage0"
)

// Resolver turns a CRI container ID (or a unique prefix) into its pod and
// app (the CRI server's ResolveContainer); it returns a NotFound status for
// an unknown ID.
type Resolver func(id string) (podUUID, app string, err error)

// Option configures New.
type Option func(*Server)

// WithLogger sets the logger (the default discards).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// Server serves exec, attach and port-forward streams.
type Server struct {
	cfg     *stage0.Config
	resolve Resolver
	log     *slog.Logger
	ln      net.Listener
	srv     streaming.Server
	http    *http.Server

	// mu guards done: set by Start, closed when serving ended.
	mu   sync.Mutex
	done chan struct{}
}

// New listens on addr (host:port; port 0 picks one) and prepares the
// streaming server; Start serves it. The URLs it hands out name the
// address it listens on.
func New(cfg *stage0.Config, addr string, resolve Resolver, opts ...Option) (*Server, error) {
	s := &Server{cfg: cfg, resolve: resolve, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(s)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("stream server: %w", err)
	}
	sc := streaming.DefaultConfig
	sc.Addr = ln.Addr().String()
	sc.BaseURL = &url.URL{Scheme: "http", Host: ln.Addr().String()}
	srv, err := streaming.NewServer(sc, adapter{s})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("stream server: %w", err)
	}
	s.ln, s.srv = ln, srv
	s.http = &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Start serves streams on a goroutine of the server's until Close, or until
// ctx is done.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done != nil {
		return errors.New("stream server started already")
	}
	done := make(chan struct{})
	s.done = done
	go func() {
		defer close(done)
		if err := s.http.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("stream server", "err", err)
		}
	}()
	stop := context.AfterFunc(ctx, func() { s.http.Close() })
	go func() {
		<-done
		stop()
	}()
	return nil
}

// Close stops serving: it closes the listener and every stream, and waits
// for the server's goroutine.
func (s *Server) Close() error {
	err := s.http.Close()
	s.ln.Close()
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done != nil {
		<-done
	}
	return err
}

// container resolves a container ID and checks that it runs.
func (s *Server) container(id string) (podUUID, app string, err error) {
	if id == "" {
		return "", "", status.Error(codes.InvalidArgument, "missing required container_id")
	}
	podUUID, app, err = s.resolve(id)
	if err != nil {
		return "", "", err
	}
	st, err := s.cfg.AppStatus(podUUID, app)
	if err != nil {
		return "", "", grpcError(fmt.Errorf("container %s: %w", id, err))
	}
	if st.State != stage0.AppRunning {
		return "", "", status.Errorf(codes.FailedPrecondition, "container %s is not running (%s)", id, st.State)
	}
	return podUUID, app, nil
}

// Exec checks the request and returns the URL of its stream.
func (s *Server) Exec(ctx context.Context, req *runtime.ExecRequest) (*runtime.ExecResponse, error) {
	if len(req.GetCmd()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "exec: empty command")
	}
	if _, _, err := s.container(req.GetContainerId()); err != nil {
		return nil, err
	}
	return s.srv.GetExec(req)
}

// PortForward checks the request and returns the URL of its stream.
func (s *Server) PortForward(ctx context.Context, req *runtime.PortForwardRequest) (*runtime.PortForwardResponse, error) {
	id := req.GetPodSandboxId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "missing required pod_sandbox_id")
	}
	for _, p := range req.GetPort() {
		if p <= 0 || p > 65535 {
			return nil, status.Errorf(codes.InvalidArgument, "port %d out of range", p)
		}
	}
	if _, err := s.cfg.PodNetNS(id); err != nil {
		return nil, grpcError(fmt.Errorf("sandbox %s: %w", id, err))
	}
	return s.srv.GetPortForward(req)
}

// grpcError gives stage0's errors their gRPC code.
func grpcError(err error) error {
	switch {
	case errors.Is(err, pods.ErrNotFound), errors.Is(err, stage0.ErrNoApp):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, pods.ErrBadState), errors.Is(err, stage0.ErrAppNotRunning), errors.Is(err, stage0.ErrNotAttachable):
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Internal, err.Error())
}
