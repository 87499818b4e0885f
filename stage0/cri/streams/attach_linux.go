package streams

import (
	"context"
	"fmt"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// Attach checks the request and returns the URL of its stream. Containers
// on a terminal are not supported (CreateContainer refuses them).
func (s *Server) Attach(ctx context.Context, req *runtime.AttachRequest) (*runtime.AttachResponse, error) {
	podUUID, app, err := s.container(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if req.GetTty() {
		return nil, status.Error(codes.Unimplemented, "attach with a terminal: rkt-ng apps have no terminal")
	}
	// Refused now rather than on the stream: not attachable.
	if _, err := s.cfg.AttachCmd(ctx, podUUID, app, req.GetStdin()); err != nil {
		return nil, grpcError(err)
	}
	return s.srv.GetAttach(req)
}

// Attach of the streaming library's Runtime: the client gets the app's
// output until it exits (or the client goes), and with in, its stdin goes
// to the app's (a container created with stdin).
func (a adapter) Attach(ctx context.Context, containerID string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	podUUID, app, err := a.s.container(containerID)
	if err != nil {
		return err
	}
	ac, err := a.s.cfg.AttachCmd(ctx, podUUID, app, in != nil)
	if err != nil {
		return grpcError(err)
	}
	var w io.Writer
	if errw != nil {
		w = errw
	}
	var o io.Writer
	if out != nil {
		o = out
	}
	_, err = exitCode(runPiped(ac, in, o, w))
	if err != nil {
		return fmt.Errorf("attach to container %s: %w", containerID, err)
	}
	// The app's exit status is not the attach's.
	return nil
}
