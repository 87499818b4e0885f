package cni

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rkt-ng/rkt/internal/flock"
)

// Host ports are a host-wide resource, but portmap's DNAT rules are not
// sockets: a second pod forwarding the same port, or a host program
// listening on it, would not fail, and one of them would silently lose its
// traffic. So Setup checks both before any ADD: a listener is found by
// binding the port, and the ports of other pods by a registry, one file per
// forward in SetupConfig.PortsDir, written under a lock of that directory
// and removed by Teardown.

// portKey names the registry file of a forward: "tcp-8080-any" or
// "udp-53-127.0.0.1".
func portKey(p PortMapping) string {
	ip := "any"
	if p.HostIP != "" {
		ip = p.HostIP
	}
	return fmt.Sprintf("%s-%d-%s", p.Protocol, p.HostPort, ip)
}

// parsePortKey splits a registry file name; ok is false for other files.
func parsePortKey(name string) (proto string, port int, ip string, ok bool) {
	proto, rest, ok1 := strings.Cut(name, "-")
	portStr, ip, ok2 := strings.Cut(rest, "-")
	n, err := strconv.Atoi(portStr)
	if !ok1 || !ok2 || err != nil {
		return "", 0, "", false
	}
	return proto, n, ip, true
}

// reservePorts checks that nothing listens on the host ports of ports and
// that no other live pod forwards them, and records them as forwarded by
// podUUID, whose namespace is netnsPath. With an empty dir only the
// listener check runs. On error nothing is recorded.
func reservePorts(dir, podUUID, netnsPath string, ports []PortMapping) error {
	if len(ports) == 0 {
		return nil
	}
	for _, p := range ports {
		if err := probePort(p); err != nil {
			return err
		}
	}
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create port registry: %w", err)
	}
	l, err := flock.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("lock port registry: %w", err)
	}
	defer l.Close()
	if err := l.Exclusive(); err != nil {
		return fmt.Errorf("lock port registry: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read port registry: %w", err)
	}
	for _, p := range ports {
		for _, e := range entries {
			proto, port, ip, ok := parsePortKey(e.Name())
			if !ok || proto != p.Protocol || port != p.HostPort {
				continue
			}
			if ip != "any" && p.HostIP != "" && ip != p.HostIP {
				continue
			}
			owner, live := portOwner(filepath.Join(dir, e.Name()))
			if owner == podUUID {
				continue
			}
			if !live {
				// Its pod's namespace is gone (a reboot, or a pod
				// removed without gc): nothing forwards it any more.
				os.Remove(filepath.Join(dir, e.Name()))
				continue
			}
			return fmt.Errorf("port %q: host port %s/%d is already forwarded to pod %s", p.Name, p.Protocol, p.HostPort, owner)
		}
	}
	var done []string
	for _, p := range ports {
		path := filepath.Join(dir, portKey(p))
		if err := os.WriteFile(path, []byte(podUUID+"\n"+netnsPath+"\n"), 0o600); err != nil {
			for _, d := range done {
				os.Remove(d)
			}
			return fmt.Errorf("record host port %s/%d: %w", p.Protocol, p.HostPort, err)
		}
		done = append(done, path)
	}
	return nil
}

// portOwner reads a registry file: the pod UUID and whether that pod's
// network namespace still exists.
func portOwner(path string) (uuid string, live bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	uuid, ns, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return uuid, ns != "" && isNetNS(ns)
}

// probePort fails if a host socket holds p's host port, or if p's host IP is
// not an address of this host.
func probePort(p PortMapping) error {
	addr := net.JoinHostPort(p.HostIP, strconv.Itoa(p.HostPort))
	var err error
	switch p.Protocol {
	case "tcp":
		var l net.Listener
		if l, err = net.Listen("tcp", addr); err == nil {
			l.Close()
		}
	case "udp":
		var c net.PacketConn
		if c, err = net.ListenPacket("udp", addr); err == nil {
			c.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("port %q: host port %s/%d is not available: %w", p.Name, p.Protocol, p.HostPort, err)
	}
	return nil
}

// releasePorts removes the registry entries of podUUID for ports.
func releasePorts(dir, podUUID string, ports []PortMapping) error {
	if dir == "" {
		return nil
	}
	var errs []error
	for _, p := range ports {
		path := filepath.Join(dir, portKey(p))
		if owner, _ := portOwner(path); owner != podUUID {
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("release host port %s/%d: %w", p.Protocol, p.HostPort, err))
		}
	}
	return join(errs)
}
