package mds

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/rkt-ng/rkt/internal/netns"
)

// ListenInNetNS opens a TCP listener on addr (a literal IP and port, such as
// "127.0.0.1:0") inside the network namespace at nsPath (a bind-mounted netns
// file or /proc/PID/ns/net). nsPath "" listens in the caller's namespace. A
// socket belongs to the namespace it was created in, so the listener accepts
// connections from that namespace only, from whatever thread serves it.
func ListenInNetNS(nsPath, addr string) (net.Listener, error) {
	// Parse before switching: a host name would mean a DNS lookup, which may
	// start goroutines, and those would run on other threads.
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("metadata service address %q: %w", addr, err)
	}
	ta := net.TCPAddrFromAddrPort(ap)
	if nsPath == "" {
		l, err := net.ListenTCP("tcp", ta)
		if err != nil {
			return nil, fmt.Errorf("metadata service: %w", err)
		}
		return l, nil
	}
	// net.ListenTCP with a literal address starts no goroutine.
	var l *net.TCPListener
	err = netns.Do(nsPath, func() error {
		var err error
		l, err = net.ListenTCP("tcp", ta)
		return err
	})
	if err != nil {
		if l != nil {
			// Listening worked but the thread could not switch back.
			l.Close()
		}
		return nil, fmt.Errorf("metadata service in %s: %w", nsPath, err)
	}
	return l, nil
}
