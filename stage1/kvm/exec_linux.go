package kvm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"github.com/rkt-ng/rkt/pods/layout"
	"github.com/rkt-ng/rkt/stage1/kvm/channel"
)

// guestWriter serializes the frames the host sends to the guest.
type guestWriter struct {
	// mu guards w.
	mu sync.Mutex
	w  io.Writer
}

func (g *guestWriter) write(t channel.Type, b []byte) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return channel.Write(g.w, t, b)
}

func (g *guestWriter) writeJSON(t channel.Type, v any) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return channel.WriteJSON(g.w, t, v)
}

// execServer accepts the enter and stop entrypoints' sessions on the pod
// directory's kvm.sock and relays them to the guest.
type execServer struct {
	l     *net.UnixListener
	guest *guestWriter
	// mu guards next, sessions, conns and closed.
	mu       sync.Mutex
	next     uint32
	sessions map[uint32]*net.UnixConn
	// conns are every accepted connection, with a session or not yet.
	conns  map[*net.UnixConn]bool
	closed bool
	// wg counts the accept and session reader goroutines.
	wg sync.WaitGroup
}

// listenExec listens on the pod's kvm.sock, mode 0600. The path is
// relative to the pod directory, the working directory of every
// entrypoint: an absolute one can exceed sun_path's 108 bytes.
func listenExec(guest *guestWriter) (*execServer, error) {
	path := layout.Dir(".").KVMSocket()
	os.Remove(path)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return &execServer{l: l, guest: guest, sessions: map[uint32]*net.UnixConn{}, conns: map[*net.UnixConn]bool{}}, nil
}

// serve accepts sessions until close.
func (s *execServer) serve() {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.l.AcceptUnix()
			if err != nil {
				return
			}
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				c.Close()
				return
			}
			s.conns[c] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.session(c)
			}()
		}
	}()
}

// session reads one client's request and stdin and forwards them.
func (s *execServer) session(c *net.UnixConn) {
	r := bufio.NewReader(c)
	t, p, err := channel.Read(r)
	var req channel.ExecRequest
	if err == nil && t != channel.ExecStart {
		err = fmt.Errorf("want %s, got %s", channel.ExecStart, t)
	}
	if err == nil {
		err = channel.Decode(t, p, &req)
	}
	s.mu.Lock()
	if s.closed {
		err = errors.New("the pod is stopping")
	}
	if err != nil {
		s.mu.Unlock()
		channel.WriteJSON(c, channel.Exit, channel.ExitMsg{Code: ExitFailed, Error: err.Error()})
		c.Close()
		return
	}
	s.next++
	req.ID = s.next
	s.sessions[req.ID] = c
	s.mu.Unlock()
	if err := s.guest.writeJSON(channel.ExecStart, req); err != nil {
		s.end(channel.ExecExitMsg{ID: req.ID, Code: ExitFailed, Error: err.Error()})
		return
	}
	eof := false
	for {
		t, p, err := channel.Read(r)
		if err != nil {
			break
		}
		if t == channel.ExecResize {
			var m channel.ResizeMsg
			if channel.Decode(t, p, &m) != nil {
				break
			}
			m.ID = req.ID
			if s.guest.writeJSON(channel.ExecResize, m) != nil {
				break
			}
			continue
		}
		if t != channel.ExecIn {
			break
		}
		if eof {
			continue // a terminal session's input ended; resizes may follow
		}
		if s.guest.write(channel.ExecIn, channel.WithID(req.ID, p)) != nil {
			break
		}
		if len(p) == 0 {
			eof = true
		}
	}
	if !eof {
		s.guest.write(channel.ExecIn, channel.WithID(req.ID, nil))
	}
}

// output relays a session's output from the guest to its client.
func (s *execServer) output(p []byte) error {
	id, rest, err := channel.SplitID(p)
	if err != nil || len(rest) == 0 {
		return errors.New("agent channel: bad exec output")
	}
	s.mu.Lock()
	c := s.sessions[id]
	s.mu.Unlock()
	if c == nil {
		return nil // the client left
	}
	t := channel.Stdout
	if rest[0] == channel.StreamStderr {
		t = channel.Stderr
	}
	channel.Write(c, t, rest[1:])
	return nil
}

// end tells a session's client its exit and closes the session.
func (s *execServer) end(m channel.ExecExitMsg) {
	s.mu.Lock()
	c := s.sessions[m.ID]
	delete(s.sessions, m.ID)
	s.mu.Unlock()
	if c == nil {
		return
	}
	channel.WriteJSON(c, channel.Exit, channel.ExitMsg{Code: m.Code, Error: m.Error})
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// close stops accepting, ends every open session with an error and waits
// for the goroutines.
func (s *execServer) close() {
	s.l.Close()
	os.Remove(layout.Dir(".").KVMSocket())
	s.mu.Lock()
	s.closed = true
	sessions, conns := s.sessions, s.conns
	s.sessions, s.conns = map[uint32]*net.UnixConn{}, map[*net.UnixConn]bool{}
	s.mu.Unlock()
	for _, c := range sessions {
		channel.WriteJSON(c, channel.Exit, channel.ExitMsg{Code: ExitFailed, Error: "the pod exited"})
	}
	// Closing every connection ends the session readers, also those
	// still waiting for their request.
	for c := range conns {
		c.Close()
	}
	s.wg.Wait()
}

// callExec is the client side, in the enter and stop entrypoints: it sends
// req to the run entrypoint, relays stdin (if given), stdout and stderr,
// and the window sizes from resize (if given; closed by the caller after
// callExec returned), and returns the exit code.
func callExec(req channel.ExecRequest, stdin io.Reader, resize <-chan channel.ResizeMsg) (int, error) {
	path := layout.Dir(".").KVMSocket()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return 0, fmt.Errorf("connect to the pod's run entrypoint (pod exited?): %w", err)
	}
	defer c.Close()
	if err := channel.WriteJSON(c, channel.ExecStart, req); err != nil {
		return 0, err
	}
	if stdin != nil {
		// Ends with the process: a read of a terminal may block for ever.
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := stdin.Read(buf)
				if n > 0 && channel.Write(c, channel.ExecIn, buf[:n]) != nil {
					return
				}
				if err != nil {
					channel.Write(c, channel.ExecIn, nil)
					return
				}
			}
		}()
	} else {
		channel.Write(c, channel.ExecIn, nil)
	}
	if resize != nil {
		// Ends when the caller closes resize, or at the first failed
		// write (the connection is gone).
		go func() {
			for m := range resize {
				if channel.WriteJSON(c, channel.ExecResize, m) != nil {
					return
				}
			}
		}()
	}
	r := bufio.NewReader(c)
	for {
		t, p, err := channel.Read(r)
		if err != nil {
			return 0, fmt.Errorf("the pod's run entrypoint: %w", err)
		}
		switch t {
		case channel.Stdout:
			os.Stdout.Write(p)
		case channel.Stderr:
			os.Stderr.Write(p)
		case channel.Exit:
			var m channel.ExitMsg
			if err := channel.Decode(t, p, &m); err != nil {
				return 0, err
			}
			if m.Error != "" {
				return 0, errors.New(m.Error)
			}
			return m.Code, nil
		}
	}
}
