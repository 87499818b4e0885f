package streams

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/rkt-ng/rkt/internal/pty"
)

// MaxExecSyncOutput bounds what ExecSync keeps of each of stdout and stderr;
// the rest is dropped (the command is not blocked).
const MaxExecSyncOutput = 16 << 20

// ExecSync runs a command in a running container, confined like the
// container's app, and returns its output and exit code. With a timeout
// (seconds) the command is killed when it runs longer, and the answer is a
// DeadlineExceeded status.
func (s *Server) ExecSync(ctx context.Context, req *runtime.ExecSyncRequest) (*runtime.ExecSyncResponse, error) {
	if len(req.GetCmd()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "exec: empty command")
	}
	if req.GetTimeout() < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "exec: negative timeout %d", req.GetTimeout())
	}
	podUUID, app, err := s.container(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if t := req.GetTimeout(); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(t)*time.Second)
		defer cancel()
	}
	cmd, err := s.cfg.EnterCmd(ctx, podUUID, app, req.GetCmd())
	if err != nil {
		return nil, grpcError(err)
	}
	stdout, stderr := &boundedBuffer{max: MaxExecSyncOutput}, &boundedBuffer{max: MaxExecSyncOutput}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	code, err := exitCode(cmd.Run())
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, status.Errorf(codes.DeadlineExceeded, "command %q timed out after %ds", req.GetCmd(), req.GetTimeout())
		}
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "exec in container %s: %v", req.GetContainerId(), err)
	}
	return &runtime.ExecSyncResponse{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: int32(code)}, nil
}

// exitCode splits a command's Run/Wait error into its exit code and an
// error of its own (it could not be started or waited for).
func exitCode(err error) (int, error) {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		// ee.Sys() is a syscall.WaitStatus (unix.Signal is syscall.Signal).
		if ws, ok := ee.Sys().(interface {
			Signaled() bool
			Signal() unix.Signal
		}); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return 0, err
}

// boundedBuffer keeps the first max bytes written to it.
type boundedBuffer struct {
	max int
	buf bytes.Buffer
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *boundedBuffer) Bytes() []byte { return b.buf.Bytes() }

// adapter is the streaming library's Runtime.
type adapter struct{ s *Server }

// Exec runs cmd in the container with the client's streams; a non-zero
// exit is returned as a utilexec.ExitError, which the library reports to
// the client as the command's exit code.
func (a adapter) Exec(ctx context.Context, containerID string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	podUUID, app, err := a.s.container(containerID)
	if err != nil {
		return err
	}
	ec, err := a.s.cfg.EnterCmd(ctx, podUUID, app, cmd)
	if err != nil {
		return grpcError(err)
	}
	if tty {
		err = runOnTerminal(ec, in, out, resize)
	} else {
		err = runPiped(ec, in, out, errw)
	}
	code, err := exitCode(err)
	if err != nil {
		return err
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command %q exited with %d", cmd, code), Code: code}
	}
	return nil
}

// runPiped runs cmd with in, out and errw (each may be nil).
func runPiped(cmd *exec.Cmd, in io.Reader, out, errw io.Writer) error {
	if out != nil {
		cmd.Stdout = out
	}
	if errw != nil {
		cmd.Stderr = errw
	}
	if in == nil {
		return cmd.Run()
	}
	// Our own pipe, not cmd.Stdin = in: exec.Cmd would wait for the copy
	// from in, which ends only when the client closes it.
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd.Stdin = r
	err = cmd.Start()
	r.Close()
	if err != nil {
		w.Close()
		return err
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		io.Copy(w, in)
		w.Close()
	}()
	err = cmd.Wait()
	// The copy ends when the client closes stdin, or at its next write
	// now that the command is gone (EPIPE); the library closes in when
	// this returns.
	w.Close()
	return err
}

// runOnTerminal runs cmd on a pseudo-terminal whose master this process
// relays to in and out; resize events set its size (the enter entrypoint
// copies it to the command's own terminal on SIGWINCH).
func runOnTerminal(cmd *exec.Cmd, in io.Reader, out io.Writer, resize <-chan remotecommand.TerminalSize) error {
	master, slave, err := pty.Open()
	if err != nil {
		return err
	}
	defer master.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	err = cmd.Start()
	slave.Close()
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	if out != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			io.Copy(out, master) // ends with EIO once the command's side closed
		}()
	}
	if in != nil {
		go func() { io.Copy(master, in) }() // ends when the client closes stdin, or on the closed master
	}
	stopResize := make(chan struct{})
	resized := make(chan struct{})
	go func() {
		defer close(resized)
		for {
			select {
			case size, ok := <-resize:
				if !ok {
					return
				}
				unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: size.Height, Col: size.Width})
				cmd.Process.Signal(unix.SIGWINCH)
			case <-stopResize:
				return
			}
		}
	}()
	err = cmd.Wait()
	close(stopResize)
	<-resized
	wg.Wait()
	return err
}
