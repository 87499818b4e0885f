package streams

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/netns"
)

// dialTimeout bounds the connect of a port forward.
const dialTimeout = 10 * time.Second

// PortForward connects to port on the pod's loopback, from inside the pod's
// network namespace (the host's for a pod on the host network), and copies
// between that connection and stream until both directions ended.
func (a adapter) PortForward(ctx context.Context, podSandboxID string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	ns, err := a.s.cfg.PodNetNS(podSandboxID)
	if err != nil {
		return grpcError(fmt.Errorf("sandbox %s: %w", podSandboxID, err))
	}
	conn, err := dialInNetNS(ns, int(port))
	if err != nil {
		return fmt.Errorf("sandbox %s: port %d: %w", podSandboxID, port, err)
	}
	defer conn.Close()
	a.s.log.Debug("port forward", "pod", podSandboxID, "port", port)
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(stream, conn)
		// The pod's side ended: so does the stream's data.
		stream.Close()
	}()
	io.Copy(conn, stream)
	// The client's side ended: half-close, the answer may still come.
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	select {
	case <-done:
	case <-ctx.Done():
		conn.Close()
		<-done
	}
	return nil
}

// dialInNetNS connects to 127.0.0.1:port, then [::1]:port, inside the
// network namespace at ns ("" for this process's own). The socket is made
// on a thread in that namespace (netns.Do) and belongs to it from then on.
func dialInNetNS(ns string, port int) (net.Conn, error) {
	var conn net.Conn
	dial := func() error {
		var errs []error
		for _, host := range []string{"127.0.0.1", "::1"} {
			c, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(port)), dialTimeout)
			if err == nil {
				conn = c
				return nil
			}
			errs = append(errs, err)
			if !errors.Is(err, unix.ECONNREFUSED) && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENETUNREACH) {
				break
			}
		}
		return errors.Join(errs...)
	}
	if ns == "" {
		return conn, dial()
	}
	err := netns.Do(ns, dial)
	return conn, err
}
