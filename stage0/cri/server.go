// Package cri is rkt-ng's Container Runtime Interface server (k8s.io/cri-api
// runtime/v1): a sandbox is a `rkt app sandbox` pod and a container is an
// app added to it. The server keeps nothing only in memory: every sandbox
// and container is found again in the pod directories, so rkt-cri can be
// killed and restarted while its pods run on. Linux only.
package cri

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/rkt-ng/rkt/stage0"
	"github.com/rkt-ng/rkt/stage0/cri/streams"
)

// RuntimeName is what Version reports as the runtime's name.
const RuntimeName = "rkt-ng"

// criAPIVersion is the CRI API version served.
const criAPIVersion = "v1"

// Options configure a Server.
type Options struct {
	// Stage0 is rkt's configuration: data directory and checks.
	Stage0 *stage0.Config
	// Rkt is the rkt binary that runs the sandboxes.
	Rkt string
	// Config is rkt-cri's configuration file.
	Config Config
	// Version is rkt-cri's version, reported by Version.
	Version string
	// Log receives the server's log; nil discards it.
	Log *slog.Logger
	// StreamAddress is the address of the streaming server (exec,
	// attach, port-forward).
	StreamAddress string
}

// ImageResolver turns an image reference the kubelet gives CreateContainer
// into the image argument of stage0's AppAdd with pull policy "never",
// and a store image back into its CRI image ID (package imageservice's
// Service implements it).
type ImageResolver interface {
	Resolve(ref string) (string, error)
	ImageID(storeID string) string
}

// Server serves the RuntimeService (and, when one is registered, the
// ImageService) of CRI runtime/v1.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer

	stage0     *stage0.Config
	rkt        string
	streamAddr string
	cfg        Config
	version    string
	log        *slog.Logger
	images     runtimeapi.ImageServiceServer
	resolve    ImageResolver
	streams    *streams.Server

	// mu guards sandboxes: the sandbox processes this server started and
	// still reaps (one goroutine each, waiting for the process to end).
	// Their pods are on disk; this is only for reaping.
	mu        sync.Mutex
	sandboxes map[int]*os.Process
}

// New returns a server; it does not listen yet.
func New(o Options) (*Server, error) {
	if o.Stage0 == nil || o.Stage0.Dir == "" {
		return nil, errors.New("cri: no rkt data directory")
	}
	if o.Rkt == "" {
		return nil, errors.New("cri: no rkt binary")
	}
	if err := o.Config.check(); err != nil {
		return nil, err
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{stage0: o.Stage0, rkt: o.Rkt, streamAddr: o.StreamAddress, cfg: o.Config, version: o.Version, log: log, sandboxes: map[int]*os.Process{}}
	addr := o.StreamAddress
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	st, err := streams.New(o.Stage0, addr, s.ResolveContainer, streams.WithLogger(log))
	if err != nil {
		return nil, err
	}
	s.streams = st
	return s, nil
}

// SetImageService registers the ImageService served beside the runtime;
// when it also resolves image references (ImageResolver), CreateContainer
// uses it. Call it before Serve.
func (s *Server) SetImageService(is runtimeapi.ImageServiceServer) {
	s.images = is
	if r, ok := is.(ImageResolver); ok {
		s.resolve = r
	}
}

// Listen makes the directory of a unix socket (0700), replaces a stale
// socket and listens on it, mode 0600: only root may talk to the runtime.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("listen %s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen %s: another server is listening there", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Serve serves gRPC on l until ctx is done, then stops gracefully: the
// calls under way finish (at most 30 seconds), and the sandbox processes
// this server started are left running.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	g := grpc.NewServer(grpc.ChainUnaryInterceptor(s.recoverUnary, s.logUnary), grpc.ChainStreamInterceptor(s.recoverStream))
	runtimeapi.RegisterRuntimeServiceServer(g, s)
	if s.images != nil {
		runtimeapi.RegisterImageServiceServer(g, s.images)
	}
	s.sweepRunDirs()
	if err := s.streams.Start(ctx); err != nil {
		return err
	}
	defer s.streams.Close()
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
		case <-done:
			return
		}
		s.log.Info("shutting down")
		t := time.AfterFunc(30*time.Second, g.Stop)
		g.GracefulStop()
		t.Stop()
	}()
	s.log.Info("serving", "socket", l.Addr().String(), "streams", s.streams.Addr())
	err := g.Serve(l)
	close(done)
	<-stopped
	if ctx.Err() != nil {
		err = nil
	}
	// The sandboxes keep running (each in a session of its own); their
	// reapers end with this process and init adopts them.
	return err
}

func (s *Server) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in handler", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			resp, err = nil, status.Errorf(codes.Internal, "internal error in %s", info.FullMethod)
		}
	}()
	return h(ctx, req)
}

func (s *Server) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in handler", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = status.Errorf(codes.Internal, "internal error in %s", info.FullMethod)
		}
	}()
	return h(srv, ss)
}

func (s *Server) logUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	if err != nil {
		s.log.Info("call failed", "method", info.FullMethod, "code", status.Code(err).String(), "err", err, "duration", time.Since(start))
	} else {
		s.log.Debug("call", "method", info.FullMethod, "duration", time.Since(start))
	}
	return resp, err
}

// Version reports the runtime's name and version.
func (s *Server) Version(ctx context.Context, req *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version:           "0.1.0",
		RuntimeName:       RuntimeName,
		RuntimeVersion:    s.version,
		RuntimeApiVersion: criAPIVersion,
	}, nil
}

// Status reports the runtime and network conditions: the runtime is ready
// when its data directory and rkt binary are there, the network when the
// configured CNI network can be named.
func (s *Server) Status(ctx context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	rt := &runtimeapi.RuntimeCondition{Type: runtimeapi.RuntimeReady, Status: true}
	if _, err := s.stage0.Pods(); err != nil {
		rt.Status, rt.Reason, rt.Message = false, "DataDirUnavailable", err.Error()
	} else if fi, err := os.Stat(s.rkt); err != nil || fi.Mode()&0o111 == 0 {
		rt.Status, rt.Reason, rt.Message = false, "RktMissing", fmt.Sprintf("rkt binary %s is missing or not executable", s.rkt)
	}
	nw := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: true}
	nw.Status, nw.Reason, nw.Message = s.networkCondition()
	resp := &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{rt, nw}}}
	if req.GetVerbose() {
		resp.Info = map[string]string{"config": fmt.Sprintf(`{"network":%q,"dir":%q,"rkt":%q}`, s.cfg.Network, s.stage0.Dir, s.rkt)}
	}
	return resp, nil
}

// UpdateRuntimeConfig accepts the kubelet's pod CIDR: the CNI
// configuration decides addresses, so there is nothing to do.
func (s *Server) UpdateRuntimeConfig(ctx context.Context, req *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}
