package cni

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
)

func TestNetNS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("requires root (uid=%d); run: sudo -E go test ./cni/", os.Geteuid())
	}
	dir := netnsDir(t)
	p := filepath.Join(dir, "a")
	if err := NewNetNS(p); err != nil {
		t.Fatal(err)
	}
	if !isNetNS(p) {
		t.Fatalf("%s is not a network namespace", p)
	}
	if err := NewNetNS(p); !errors.Is(err, os.ErrExist) {
		t.Errorf("second NewNetNS(%s) error = %v, want ErrExist", p, err)
	}
	// The directory is a mount point with a peer group of its own.
	mounted, err := isMountPoint(dir)
	if err != nil || !mounted {
		t.Errorf("isMountPoint(%s) = %v, %v; want true", dir, mounted, err)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.SplitSeq(string(mi), "\n") {
		if f := strings.Fields(l); len(f) > 6 && f[4] == dir && !strings.HasPrefix(f[6], "shared:") {
			t.Errorf("netns dir mount is not shared: %s", l)
		}
	}
	// A second namespace in the same directory does not stack mounts.
	if err := NewNetNS(filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	if mi, err = os.ReadFile("/proc/self/mountinfo"); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(mi), " "+dir+" "); n != 1 {
		t.Errorf("netns dir mounted %d times, want 1", n)
	}

	// Only lo, and it is up; the test thread stayed in the host namespace.
	hostLinks, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	err = Do(p, func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		if len(links) != 1 || links[0].Attrs().Name != "lo" || links[0].Attrs().Flags&net.FlagUp == 0 {
			return fmt.Errorf("links in new netns = %v, want lo up", links)
		}
		// Loopback works.
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close()
		c, err := net.Dial("tcp4", l.Addr().String())
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err != nil {
		t.Error(err)
	}
	if links, err := netlink.LinkList(); err != nil || len(links) != len(hostLinks) {
		t.Errorf("host links after Do: %d, %v; want %d", len(links), err, len(hostLinks))
	}

	for range 2 {
		if err := RemoveNetNS(p); err != nil {
			t.Errorf("RemoveNetNS: %v", err)
		}
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("netns file left: %v", err)
	}
	if err := Do(p, func() error { return nil }); err == nil {
		t.Error("Do on a removed netns succeeded")
	}
	RemoveNetNS(filepath.Join(dir, "b"))
}

func TestDefaultNetwork(t *testing.T) {
	requireNet(t)
	reqs, err := mustCatalog(t).Select("default")
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	p := newPod(t, netnsDir(t), dataDir, reqs)
	info := p.setup(t)

	if len(info.Networks) != 1 {
		t.Fatalf("networks = %+v, want 1", info.Networks)
	}
	n := info.Networks[0]
	subnet := netip.MustParsePrefix("172.16.28.0/24")
	if n.NetName != "default" || n.IfName != "eth0" || len(n.IPs) != 1 || !subnet.Contains(n.IPs[0].Addr()) ||
		n.Gateway != netip.MustParseAddr("172.16.28.1") || n.HostIfName == "" || filepath.Base(n.PluginPath) != "ptp" {
		t.Errorf("net info = %+v, want eth0 in %s via 172.16.28.1 with ptp", n, subnet)
	}
	if l := leases(t, dataDir, "default"); len(l) != 1 || l[0] != n.IPs[0].Addr().String() {
		t.Errorf("leases = %v, want [%s]", l, n.IPs[0].Addr())
	}
	// In the pod: eth0 holds the address and there is a default route.
	err = Do(p.ns, func() error {
		link, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		if len(addrs) != 1 || addrs[0].IP.String() != n.IPs[0].Addr().String() {
			return fmt.Errorf("eth0 addresses = %v, want %s", addrs, n.IPs[0])
		}
		if !hasDefaultRoute() {
			return errors.New("no default route in pod")
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	l := listenIn(t, p.ns, "tcp4", ":0")
	port := l.Addr().(*net.TCPAddr).Port
	mustHello(t, "", net.JoinHostPort(n.IPs[0].Addr().String(), strconv.Itoa(port)))

	rules := iptablesLines(t, p.uuid)
	if len(rules) == 0 {
		t.Error("no masquerade rule for the pod (ipMasq)")
	}
	chains := chainsOf(rules)

	p.teardown(t, info)
	if _, err := os.Stat(p.ns); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("netns left after teardown: %v", err)
	}
	if left := eventually(func() []string {
		if _, err := netlink.LinkByName(n.HostIfName); err == nil {
			return []string{n.HostIfName}
		}
		return nil
	}); len(left) > 0 {
		t.Errorf("host veth %s left", n.HostIfName)
	}
	checkClean(t, dataDir, []string{"default"}, nil, []string{p.uuid}, chains)
	// Again: idempotent.
	p.teardown(t, info)
}

func hasDefaultRoute() bool {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return false
	}
	for _, r := range routes {
		if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
			return true
		}
	}
	return false
}

func TestDefaultRestrictedTwoPods(t *testing.T) {
	requireNet(t)
	reqs, err := mustCatalog(t).Select("default-restricted")
	if err != nil {
		t.Fatal(err)
	}
	dataDir, nsDir := t.TempDir(), netnsDir(t)
	a, b := newPod(t, nsDir, dataDir, reqs), newPod(t, nsDir, dataDir, reqs)
	ia, ib := a.setup(t), b.setup(t)
	ipa, ipb := ia.Networks[0].IPs[0].Addr(), ib.Networks[0].IPs[0].Addr()
	subnet := netip.MustParsePrefix("172.31.0.0/16")
	if !subnet.Contains(ipa) || !subnet.Contains(ipb) || ipa == ipb {
		t.Fatalf("pod addresses %s, %s; want two in %s", ipa, ipb, subnet)
	}
	if err := Do(a.ns, func() error {
		if hasDefaultRoute() {
			return errors.New("default route in a default-restricted pod")
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	if len(iptablesLines(t, a.uuid, b.uuid)) != 0 {
		t.Error("iptables rules for a network without ipMasq")
	}
	la := listenIn(t, a.ns, "tcp4", ":0")
	mustHello(t, b.ns, net.JoinHostPort(ipa.String(), strconv.Itoa(la.Addr().(*net.TCPAddr).Port)))
	lb := listenIn(t, b.ns, "tcp4", ":0")
	mustHello(t, a.ns, net.JoinHostPort(ipb.String(), strconv.Itoa(lb.Addr().(*net.TCPAddr).Port)))
	mustHello(t, "", net.JoinHostPort(ipb.String(), strconv.Itoa(lb.Addr().(*net.TCPAddr).Port)))

	a.teardown(t, ia)
	b.teardown(t, ib)
	checkClean(t, dataDir, []string{"default-restricted"}, nil, []string{a.uuid, b.uuid}, nil)
}

// primaryIP returns the host address used to reach the outside, or an
// invalid address if there is no route out.
func primaryIP() netip.Addr {
	c, err := net.Dial("udp4", "192.0.2.254:9") // connect(2) on UDP sends nothing
	if err != nil {
		return netip.Addr{}
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestPortForward(t *testing.T) {
	requireNet(t)
	const subnet = "10.251.7.0/24"
	// The forward lands on the first network with ipMasq: "fwd", eth1.
	reqs := []Request{
		conflist(t, "plain", ptpConf("10.251.6.0/24", false, false)),
		conflist(t, "fwd", ptpConf(subnet, true, true)),
	}
	dataDir := t.TempDir()
	p := newPod(t, netnsDir(t), dataDir, reqs)
	hostPort, podPort := freePort(t), 8080
	p.cfg.Ports = []PortMapping{{Name: "http", Protocol: "tcp", HostPort: hostPort, PodPort: podPort}}
	info := p.setup(t)
	n := info.Networks[1]
	if n.NetName != "fwd" || n.IfName != "eth1" || len(n.Ports) != 1 || len(info.Networks[0].Ports) != 0 {
		t.Fatalf("networks = %+v, want ports on fwd/eth1", info.Networks)
	}
	listenIn(t, p.ns, "tcp4", fmt.Sprintf(":%d", podPort))

	hp := strconv.Itoa(hostPort)
	mustHello(t, "", net.JoinHostPort(n.IPs[0].Addr().String(), strconv.Itoa(podPort)))
	// rkt #1256, #3751: from the host through localhost.
	mustHello(t, "", net.JoinHostPort("127.0.0.1", hp))
	if b, err := os.ReadFile("/proc/sys/net/ipv4/conf/" + n.HostIfName + "/route_localnet"); err != nil || strings.TrimSpace(string(b)) != "1" {
		t.Errorf("route_localnet on %s = %q, %v; want 1", n.HostIfName, b, err)
	}
	if ip := primaryIP(); ip.IsValid() {
		// From the host to its own address.
		mustHello(t, "", net.JoinHostPort(ip.String(), hp))
		// rkt #2283: hairpin, the pod to its own forwarded port.
		mustHello(t, p.ns, net.JoinHostPort(ip.String(), hp))
	} else {
		t.Log("no route out of the host: skipping the host-address and hairpin checks")
	}

	rules := iptablesLines(t, p.uuid)
	if !strings.Contains(strings.Join(rules, "\n"), "dnat name") {
		t.Errorf("no portmap rules for the pod:\n%s", strings.Join(rules, "\n"))
	}
	chains := chainsOf(rules)
	p.teardown(t, info)
	checkClean(t, dataDir, []string{"plain", "fwd"}, []string{subnet, "10.251.6.0/24"}, []string{p.uuid}, chains)
	if err := hello("", net.JoinHostPort("127.0.0.1", hp)); err == nil {
		t.Error("forwarded port still answers after teardown")
	}
}

func TestRollback(t *testing.T) {
	requireNet(t)
	tests := []struct {
		name   string
		second string
	}{
		{"missing plugin", `{"type": "nosuch-plugin"}`},
		// ptp of the second network runs ADD (a lease, a veth) before the
		// chain fails: its DEL must still run.
		{"missing chained plugin", ptpConf("10.251.9.0/24", true, false) + `, {"type": "nosuch-plugin"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			subnets := []string{"10.251.8.0/24", "10.251.9.0/24"}
			reqs := []Request{
				conflist(t, "first", ptpConf(subnets[0], true, true)),
				conflist(t, "second", tc.second),
			}
			dataDir := t.TempDir()
			p := newPod(t, netnsDir(t), dataDir, reqs)
			p.cfg.Ports = []PortMapping{{Protocol: "tcp", HostPort: freePort(t), PodPort: 80}}
			p.cfg.InfoPath = filepath.Join(t.TempDir(), "net-info.json")
			before := iptablesLines(t, "CNI-")
			_, err := Setup(t.Context(), p.cfg)
			if err == nil || !strings.Contains(err.Error(), `"second"`) || !strings.Contains(err.Error(), "nosuch-plugin") {
				t.Fatalf("Setup error = %v, want one naming the network and the plugin", err)
			}
			if _, err := os.Stat(p.ns); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("netns left: %v", err)
			}
			if _, err := os.Stat(p.cfg.InfoPath); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("net info left: %v", err)
			}
			checkClean(t, dataDir, []string{"first", "second"}, subnets, []string{p.uuid}, nil)
			after := iptablesLines(t, "CNI-")
			for _, l := range after {
				if !strings.Contains(strings.Join(before, "\n"), l) && !strings.Contains(l, "CNI-HOSTPORT") {
					t.Errorf("new iptables line after rollback: %s", l)
				}
			}
		})
	}
}

func TestRepeated(t *testing.T) {
	requireNet(t)
	const subnet = "10.251.10.0/24"
	reqs := []Request{conflist(t, "rep", ptpConf(subnet, true, true))}
	dataDir, nsDir := t.TempDir(), netnsDir(t)
	var uuids, chains []string
	for i := range 20 {
		p := newPod(t, nsDir, dataDir, reqs)
		p.cfg.Ports = []PortMapping{{Protocol: "tcp", HostPort: freePort(t), PodPort: 80}}
		info := p.setup(t)
		if i == 0 {
			chains = chainsOf(iptablesLines(t, p.uuid))
		}
		uuids = append(uuids, p.uuid)
		p.teardown(t, info)
	}
	checkClean(t, dataDir, []string{"rep"}, []string{subnet}, uuids, chains)
	if e, err := os.ReadDir(nsDir); err != nil || len(e) != 0 {
		t.Errorf("netns dir holds %d entries, %v; want none", len(e), err)
	}
}

func TestDualStack(t *testing.T) {
	requireNet(t)
	req := conflist(t, "dual", `{"type": "ptp", "ipam": {"type": "host-local",
		"ranges": [[{"subnet": "10.251.11.0/24"}], [{"subnet": "fd00:28::/64"}]],
		"routes": [{"dst": "10.251.0.0/16"}, {"dst": "fd00:28::/48"}]}}`)
	dataDir := t.TempDir()
	p := newPod(t, netnsDir(t), dataDir, []Request{req})
	info := p.setup(t)
	n := info.Networks[0]
	var v4, v6 netip.Addr
	for _, ip := range n.IPs {
		if ip.Addr().Is4() {
			v4 = ip.Addr()
		} else {
			v6 = ip.Addr()
		}
	}
	if !v4.IsValid() || !netip.MustParsePrefix("fd00:28::/64").Contains(v6) || !n.Gateway.Is4() || !n.Gateway6.Is6() {
		t.Fatalf("net info = %+v, want an IPv4 and an fd00:28::/64 address with gateways", n)
	}
	l := listenIn(t, p.ns, "tcp", ":0")
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	mustHello(t, "", net.JoinHostPort(v4.String(), port))
	// The pod's address may still be tentative (DAD) for a moment.
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err = hello("", net.JoinHostPort(v6.String(), port)); err == nil {
			break
		}
	}
	if err != nil {
		t.Errorf("connect over IPv6: %v", err)
	}
	p.teardown(t, info)
	checkClean(t, dataDir, []string{"dual"}, []string{"10.251.11.0/24", "fd00:28::/64"}, []string{p.uuid}, nil)
}

func TestTeardownWithoutNetNS(t *testing.T) {
	requireNet(t)
	reqs := []Request{conflist(t, "gone", ptpConf("10.251.12.0/24", false, false))}
	dataDir := t.TempDir()
	p := newPod(t, netnsDir(t), dataDir, reqs)
	info := p.setup(t)
	// As after a reboot: the namespace and everything in it are gone, the
	// leases in the data dir are not.
	if err := RemoveNetNS(p.ns); err != nil {
		t.Fatal(err)
	}
	// The kernel destroys the namespace, and the veth pair with it,
	// asynchronously.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := netlink.LinkByName(info.Networks[0].HostIfName); err != nil {
			break
		}
	}
	if len(leases(t, dataDir, "gone")) != 1 {
		t.Fatal("no lease after setup")
	}
	p.teardown(t, info)
	checkClean(t, dataDir, []string{"gone"}, []string{"10.251.12.0/24"}, []string{p.uuid}, nil)
}

func TestSetupErrors(t *testing.T) {
	requireNet(t)
	good := conflist(t, "e", ptpConf("10.251.13.0/24", false, false))
	tests := []struct {
		name string
		mod  func(*SetupConfig)
		want string
	}{
		{"bad uuid", func(s *SetupConfig) { s.PodUUID = "a/b" }, "invalid pod UUID"},
		{"bad protocol", func(s *SetupConfig) { s.Ports = []PortMapping{{Protocol: "icmp", HostPort: 1, PodPort: 1}} }, "protocol"},
		{"bad port", func(s *SetupConfig) { s.Ports = []PortMapping{{Protocol: "tcp", HostPort: 70000, PodPort: 1}} }, "out of range"},
		{"twice", func(s *SetupConfig) {
			s.Ports = []PortMapping{{Protocol: "tcp", HostPort: 5, PodPort: 1}, {Protocol: "tcp", HostPort: 5, PodPort: 2}}
		}, "forwarded twice"},
		{"ports without network", func(s *SetupConfig) {
			s.Networks = nil
			s.Ports = []PortMapping{{Protocol: "tcp", HostPort: 5, PodPort: 1}}
		}, "needs a network"},
		{"old version with ports", func(s *SetupConfig) {
			s.Networks = []Request{{Name: "v", Config: []byte(`{"cniVersion": "0.2.0", "name": "v", "plugins": [{"type": "ptp"}]}`)}}
			s.Ports = []PortMapping{{Protocol: "tcp", HostPort: 5, PodPort: 1}}
		}, "cniVersion 0.3.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPod(t, netnsDir(t), t.TempDir(), []Request{good})
			tc.mod(&p.cfg)
			if _, err := Setup(t.Context(), p.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Setup error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

const killChildEnv = "CNI_TEST_KILL_CHILD"

// killChild is the child of TestTeardownAfterKill: it sets a pod up, says
// so, and waits to be killed.
func killChild() {
	var s SetupConfig
	if err := json.Unmarshal([]byte(os.Getenv(killChildEnv)), &s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, err := Setup(context.Background(), s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Stdout.WriteString("ready\n")
	select {}
}

func TestTeardownAfterKill(t *testing.T) {
	requireNet(t)
	const subnet = "10.251.14.0/24"
	dataDir := t.TempDir()
	p := newPod(t, netnsDir(t), dataDir, []Request{conflist(t, "killed", ptpConf(subnet, true, true))})
	p.cfg.Ports = []PortMapping{{Protocol: "tcp", HostPort: freePort(t), PodPort: 80}}
	p.cfg.InfoPath = filepath.Join(t.TempDir(), "net-info.json")
	p.cfg.PluginStderr = nil
	env, err := json.Marshal(p.cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+string(env))
	cmd.Stderr = tWriter{t}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil || string(buf) != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child: %q, %v", buf, err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	info, err := LoadInfo(p.cfg.InfoPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Networks) != 1 || !info.Networks[0].Added || len(info.Networks[0].IPs) != 1 {
		t.Fatalf("net info after kill = %+v", info)
	}
	rules := iptablesLines(t, p.uuid)
	if len(rules) == 0 {
		t.Fatal("no rules for the killed pod")
	}
	chains := chainsOf(rules)
	p.teardown(t, info)
	checkClean(t, dataDir, []string{"killed"}, []string{subnet}, []string{p.uuid}, chains)
	if _, err := os.Stat(p.ns); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("netns left: %v", err)
	}
}

// TestUserNetwork runs a chained conflist from net.d, selected with CNI
// args, and checks the saved record and the DNS answer.
func TestUserNetwork(t *testing.T) {
	requireNet(t)
	local := t.TempDir()
	writeConf(t, local, "10-saved.conflist", `{"cniVersion": "1.0.0", "name": "saved", "plugins": [
		{"type": "ptp", "dns": {"nameservers": ["10.251.15.53"], "search": ["pod.test"]},
		 "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.251.15.0/24"}]]}},
		{"type": "tuning", "sysctl": {"net.core.somaxconn": "517"}}]}`)
	c, err := Load(local, "")
	if err != nil {
		t.Fatal(err)
	}
	reqs, err := c.Select("saved:IP=10.251.15.77")
	if err != nil {
		t.Fatal(err)
	}
	// Only the user network: default-restricted would collide with other
	// tests running at the same time.
	dataDir := t.TempDir()
	p := newPod(t, netnsDir(t), dataDir, reqs[:1])
	p.cfg.InfoPath = filepath.Join(t.TempDir(), "net-info.json")
	info := p.setup(t)
	if got := info.Networks[0].IPs; len(got) != 1 || got[0] != netip.MustParsePrefix("10.251.15.77/24") {
		t.Errorf("IPs = %v, want the requested 10.251.15.77/24", got)
	}
	if diff := cmp.Diff(DNS{Nameservers: []string{"10.251.15.53"}, Search: []string{"pod.test"}}, info.DNS()); diff != "" {
		t.Errorf("DNS() mismatch (-want +got):\n%s", diff)
	}
	err = Do(p.ns, func() error {
		b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
		if err != nil {
			return err
		}
		if strings.TrimSpace(string(b)) != "517" {
			return fmt.Errorf("somaxconn in pod = %s, want 517 (set by the chained tuning plugin)", b)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	got, err := LoadInfo(p.cfg.InfoPath)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(info, got, cmpInfo); diff != "" {
		t.Errorf("LoadInfo(InfoPath) mismatch (-returned +saved):\n%s", diff)
	}
	p.teardown(t, got)
	checkClean(t, dataDir, []string{"saved"}, []string{"10.251.15.0/24"}, []string{p.uuid}, nil)
}

// BenchmarkSetupTeardown measures a pod's whole network life cycle: netns,
// ptp ADD (with ipMasq if -masq), DEL, netns removal.
func BenchmarkSetupTeardown(b *testing.B) {
	for _, masq := range []bool{false, true} {
		b.Run(fmt.Sprintf("ipMasq=%v", masq), func(b *testing.B) {
			if os.Geteuid() != 0 || pluginDir == "" {
				b.Skip("requires root and the plugins; run: sudo -E go test -bench . ./cni/")
			}
			n, err := parseNetwork(fmt.Appendf(nil, `{"cniVersion": "1.0.0", "name": "bench", "plugins": [%s]}`,
				ptpConf("10.251.16.0/24", masq, false)))
			if err != nil {
				b.Fatal(err)
			}
			dataDir, nsDir := b.TempDir(), filepath.Join(b.TempDir(), "netns")
			defer unmountDir(b, nsDir)
			for b.Loop() {
				var id [8]byte
				rand.Read(id[:])
				ns := filepath.Join(nsDir, hex.EncodeToString(id[:]))
				if err := NewNetNS(ns); err != nil {
					b.Fatal(err)
				}
				info, err := Setup(b.Context(), SetupConfig{PodUUID: hex.EncodeToString(id[:]), NetNSPath: ns,
					PluginDirs: []string{pluginDir}, DataDir: dataDir,
					Networks: []Request{{Name: n.Name, Config: n.Config}}})
				if err != nil {
					b.Fatal(err)
				}
				if err := Teardown(b.Context(), info, ns, []string{pluginDir}, dataDir); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
