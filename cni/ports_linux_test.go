package cni

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestPortsInUse(t *testing.T) {
	requireNet(t)
	portsDir := filepath.Join(t.TempDir(), "ports")
	nsDir := netnsDir(t)
	reqs := func() []Request { return []Request{conflist(t, "fwd", ptpConf("10.251.12.0/24", true, false))} }
	hostPort := freePort(t)
	http := []PortMapping{{Name: "http", Protocol: "tcp", HostPort: hostPort, PodPort: 8080}}

	a := newPod(t, nsDir, t.TempDir(), reqs())
	a.cfg.Ports, a.cfg.PortsDir = http, portsDir
	infoA := a.setup(t)
	if infoA.PortsDir != portsDir {
		t.Errorf("Info.PortsDir = %q, want %q", infoA.PortsDir, portsDir)
	}
	owner, live := portOwner(filepath.Join(portsDir, portKey(http[0])))
	if owner != a.uuid || !live {
		t.Errorf("registry entry of %d = %q, live %v; want %q, true", hostPort, owner, live, a.uuid)
	}

	// A second pod cannot take the same port, on any host address, and
	// nothing of it is left.
	for _, hostIP := range []string{"", "127.0.0.1"} {
		b := newPod(t, nsDir, t.TempDir(), reqs())
		b.cfg.PortsDir = portsDir
		b.cfg.Ports = []PortMapping{{Name: "web", Protocol: "tcp", HostIP: hostIP, HostPort: hostPort, PodPort: 80}}
		_, err := Setup(t.Context(), b.cfg)
		if err == nil || !strings.Contains(err.Error(), a.uuid) || !strings.Contains(err.Error(), strconv.Itoa(hostPort)) {
			t.Errorf("second forward of %s:%d: error %v, want one naming the port and pod %s", hostIP, hostPort, err, a.uuid)
		}
		if _, err := os.Stat(b.ns); !os.IsNotExist(err) {
			t.Errorf("failed Setup left its netns: %v", err)
		}
	}
	// Another protocol on the same number is free.
	c := newPod(t, nsDir, t.TempDir(), reqs())
	c.cfg.PortsDir = portsDir
	c.cfg.Ports = []PortMapping{{Name: "dns", Protocol: "udp", HostPort: hostPort, PodPort: 53}}
	infoC := c.setup(t)
	c.teardown(t, infoC)

	// Teardown releases the port; a second Teardown is harmless.
	a.teardown(t, infoA)
	a.teardown(t, infoA)
	if ents, _ := os.ReadDir(portsDir); len(ents) != 0 {
		t.Errorf("registry after teardown: %v", ents)
	}

	// A host program listening on the port.
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	d := newPod(t, nsDir, t.TempDir(), reqs())
	d.cfg.PortsDir = portsDir
	d.cfg.Ports = []PortMapping{{Name: "http", Protocol: "tcp", HostPort: busy, PodPort: 8080}}
	if _, err := Setup(t.Context(), d.cfg); err == nil || !strings.Contains(err.Error(), strconv.Itoa(busy)) {
		t.Errorf("forward of a port in use: error %v, want one naming %d", err, busy)
	}
}

func TestPortsStaleEntry(t *testing.T) {
	requireNet(t)
	portsDir := filepath.Join(t.TempDir(), "ports")
	hostPort := freePort(t)
	pm := PortMapping{Name: "http", Protocol: "tcp", HostPort: hostPort, PodPort: 8080}
	// An entry whose pod namespace is gone (a reboot, or a pod removed
	// without gc) does not block the port.
	if err := os.MkdirAll(portsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(portsDir, portKey(pm))
	if err := os.WriteFile(stale, []byte("11111111-2222-4333-8444-555555555555\n/run/rkt/netns/gone\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := newPod(t, netnsDir(t), t.TempDir(), []Request{conflist(t, "fwd", ptpConf("10.251.13.0/24", true, false))})
	p.cfg.Ports, p.cfg.PortsDir = []PortMapping{pm}, portsDir
	info := p.setup(t)
	if owner, _ := portOwner(stale); owner != p.uuid {
		t.Errorf("entry owner = %q, want %q", owner, p.uuid)
	}
	if err := Teardown(context.Background(), info, p.ns, p.cfg.PluginDirs, p.cfg.DataDir); err != nil {
		t.Fatal(err)
	}
}

func TestParsePortKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    PortMapping
	}{
		{"any", PortMapping{Protocol: "tcp", HostPort: 80}},
		{"v4", PortMapping{Protocol: "udp", HostPort: 53, HostIP: "127.0.0.1"}},
		{"v6", PortMapping{Protocol: "tcp", HostPort: 8080, HostIP: "fd00::1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proto, port, ip, ok := parsePortKey(portKey(tc.p))
			wantIP := tc.p.HostIP
			if wantIP == "" {
				wantIP = "any"
			}
			if !ok || proto != tc.p.Protocol || port != tc.p.HostPort || ip != wantIP {
				t.Errorf("parsePortKey(portKey(%+v)) = %q %d %q %v", tc.p, proto, port, ip, ok)
			}
		})
	}
	for _, bad := range []string{"", "lock", "tcp-x-any", "tcp80"} {
		if _, _, _, ok := parsePortKey(bad); ok {
			t.Errorf("parsePortKey(%q) ok", bad)
		}
	}
}
