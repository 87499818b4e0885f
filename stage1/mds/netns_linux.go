package mds

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
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
	target, err := os.Open(nsPath)
	if err != nil {
		return nil, fmt.Errorf("pod network namespace: %w", err)
	}
	defer target.Close()

	type result struct {
		l   net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		// setns(2) switches only the calling thread, so this goroutine must
		// stay on one thread from setns to setns back. If switching back
		// fails the thread is left locked on purpose: it exits with the
		// goroutine instead of returning, in the pod's namespace, to the
		// pool that runs other goroutines.
		runtime.LockOSThread()
		l, back, err := listenOnThread(int(target.Fd()), ta)
		if back {
			runtime.UnlockOSThread()
		}
		done <- result{l, err}
	}()
	r := <-done
	if r.err != nil {
		return nil, fmt.Errorf("metadata service in %s: %w", nsPath, r.err)
	}
	return r.l, nil
}

// listenOnThread runs on a locked thread: it enters the namespace nsfd,
// listens, and switches back. back reports whether the thread is in its
// original namespace again. No goroutine is started while switched.
func listenOnThread(nsfd int, ta *net.TCPAddr) (l net.Listener, back bool, err error) {
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, true, fmt.Errorf("current network namespace: %w", err)
	}
	defer orig.Close()
	if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
		// EINVAL: not a network namespace. The thread did not move.
		return nil, true, os.NewSyscallError("setns", err)
	}
	l, lerr := net.ListenTCP("tcp", ta)
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		if lerr == nil {
			l.Close()
		}
		return nil, false, fmt.Errorf("switch back to the original network namespace: %w", os.NewSyscallError("setns", err))
	}
	if lerr != nil {
		return nil, true, lerr
	}
	return l, true, nil
}
