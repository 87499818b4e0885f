package streams

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

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
	// Refused now rather than on the stream: not attachable, or tty not
	// the container's.
	if _, err := s.cfg.AttachCmd(ctx, podUUID, app, req.GetStdin(), req.GetTty()); err != nil {
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
	// A client that went away shows as a failed write or read of its
	// streams: the attach then ends (the pod detaches it) instead of
	// lasting as long as the app.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ac, err := a.s.cfg.AttachCmd(ctx, podUUID, app, in != nil, tty)
	if err != nil {
		return grpcError(err)
	}
	if tty {
		// The client's terminal sizes go to the app's terminal, as
		// "ROWS COLS" lines on the command's fd 3.
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		defer w.Close()
		ac.ExtraFiles = []*os.File{r}
		stopSizes := make(chan struct{})
		sizesDone := make(chan struct{})
		defer func() {
			close(stopSizes)
			<-sizesDone
		}()
		go func() {
			defer close(sizesDone)
			for {
				select {
				case sz, ok := <-resize:
					if !ok {
						return
					}
					fmt.Fprintf(w, "%d %d\n", sz.Height, sz.Width)
				case <-stopSizes:
					return
				}
			}
		}()
		defer r.Close() // the command has its own copy once started
	}
	var w, o io.Writer
	if errw != nil {
		w = cancelOnError{errw, cancel}
	}
	if out != nil {
		o = cancelOnError{out, cancel}
	}
	var r io.Reader
	if in != nil {
		r = cancelOnReadError{in, cancel}
	}
	_, err = exitCode(runPiped(ac, r, o, w))
	if ctx.Err() != nil {
		return nil // the client is gone
	}
	if err != nil {
		return fmt.Errorf("attach to container %s: %w", containerID, err)
	}
	// The app's exit status is not the attach's.
	return nil
}

// cancelOnError is a writer whose first failure cancels the attach.
type cancelOnError struct {
	w      io.Writer
	cancel context.CancelFunc
}

func (c cancelOnError) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if err != nil {
		c.cancel()
	}
	return n, err
}

// cancelOnReadError is a reader whose failure (not its end) cancels the
// attach.
type cancelOnReadError struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c cancelOnReadError) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		c.cancel()
	}
	return n, err
}
