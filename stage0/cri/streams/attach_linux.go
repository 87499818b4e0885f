package streams

import (
	"context"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// errNoAttach is the answer to Attach: stage2 does not yet keep an app's
// stdin open for later clients, nor hand its output to them.
var errNoAttach = status.Error(codes.Unimplemented, "attach is not supported by rkt-ng yet: an app's stdin and output cannot be reached after it started (use exec, and logs)")

// Attach of the streaming library's Runtime.
func (a adapter) Attach(ctx context.Context, containerID string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	return errNoAttach
}
