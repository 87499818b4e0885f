package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cniutils "github.com/containernetworking/plugins/pkg/utils"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// podNet is what `inspect --print-ifaces --print-routes` reported.
type podNet struct {
	ifaces map[string][]netip.Prefix // link name -> addresses
	routes []string                  // "default via 172.16.28.1 dev eth0 metric 0", ...
}

func parsePodNet(t *testing.T, out string) podNet {
	t.Helper()
	pn := podNet{ifaces: map[string][]netip.Prefix{}}
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "IFACE="):
			name, _, _ := strings.Cut(strings.TrimPrefix(line, "IFACE="), " ")
			if _, ok := pn.ifaces[name]; !ok {
				pn.ifaces[name] = nil
			}
		case strings.HasPrefix(line, "ADDR="):
			name, addr, _ := strings.Cut(strings.TrimPrefix(line, "ADDR="), " ")
			p, err := netip.ParsePrefix(addr)
			if err != nil {
				t.Fatalf("inspect printed a bad address line %q: %v", line, err)
			}
			pn.ifaces[name] = append(pn.ifaces[name], p)
		case strings.HasPrefix(line, "ROUTE="):
			pn.routes = append(pn.routes, strings.TrimPrefix(line, "ROUTE="))
		}
	}
	return pn
}

// names returns the interface names, sorted.
func (pn podNet) names() []string {
	var out []string
	for n := range pn.ifaces {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// addr4 returns the first global IPv4 address of iface.
func (pn podNet) addr4(iface string) (netip.Prefix, bool) {
	for _, p := range pn.ifaces[iface] {
		if p.Addr().Is4() {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// addr6 returns the first global IPv6 address of iface.
func (pn podNet) addr6(iface string) (netip.Prefix, bool) {
	for _, p := range pn.ifaces[iface] {
		if p.Addr().Is6() && !p.Addr().IsLinkLocalUnicast() {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

func (pn podNet) hasRoute(prefix string) bool {
	for _, r := range pn.routes {
		if strings.HasPrefix(r, prefix) {
			return true
		}
	}
	return false
}

// writeNetConf puts a network configuration into the local config's net.d.
func writeNetConf(t *testing.T, c *testutil.Ctx, file, conf string) string {
	t.Helper()
	dir := filepath.Join(c.LocalConfig, "net.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, file)
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNetModes(t *testing.T) {
	testutil.RequireRoot(t)
	iptablesRestoredAfter(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/netmodes")
	show := []string{"--", "--print-netns", "--print-ifaces", "--print-routes"}

	t.Run("host", func(t *testing.T) {
		own, err := os.Readlink("/proc/self/ns/net")
		if err != nil {
			t.Fatal(err)
		}
		r := runInsecure(t, c, append([]string{"--net=host", aci}, show...)...)
		wantExit(t, r, 0)
		if !strings.Contains(r.Stdout, "NETNS="+own+"\n") {
			t.Errorf("--net=host: pod is not in the caller's netns %s\n%s", own, r)
		}
	})
	t.Run("none", func(t *testing.T) {
		r := runInsecure(t, c, append([]string{"--net=none", aci}, show...)...)
		wantExit(t, r, 0)
		pn := parsePodNet(t, r.Stdout)
		if got := pn.names(); len(got) != 1 || got[0] != "lo" {
			t.Errorf("--net=none: interfaces %v, want only lo\n%s", got, r)
		}
		if a, ok := pn.addr4("lo"); !ok || a.String() != "127.0.0.1/8" {
			t.Errorf("--net=none: lo has %v, want 127.0.0.1/8 (up)\n%s", pn.ifaces["lo"], r)
		}
	})
	t.Run("default", func(t *testing.T) {
		r := runInsecure(t, c, append([]string{"--net=default", aci}, show...)...)
		wantExit(t, r, 0)
		pn := parsePodNet(t, r.Stdout)
		a, ok := pn.addr4("eth0")
		if !ok || !netip.MustParsePrefix("172.16.28.0/24").Contains(a.Addr()) {
			t.Errorf("--net=default: eth0 has %v, want an address in 172.16.28.0/24\n%s", pn.ifaces["eth0"], r)
		}
		if !pn.hasRoute("default via 172.16.28.1 dev eth0") {
			t.Errorf("--net=default: no default route via 172.16.28.1\n%s", r)
		}
		if _, ok := pn.ifaces["eth1"]; ok {
			t.Errorf("--net=default: default-restricted was added too\n%s", r)
		}
	})
	t.Run("default-restricted", func(t *testing.T) {
		r := runInsecure(t, c, append([]string{"--net=default-restricted", aci}, show...)...)
		wantExit(t, r, 0)
		pn := parsePodNet(t, r.Stdout)
		a, ok := pn.addr4("eth0")
		if !ok || !netip.MustParsePrefix("172.31.0.0/16").Contains(a.Addr()) {
			t.Errorf("default-restricted: eth0 has %v, want an address in 172.31.0.0/16\n%s", pn.ifaces["eth0"], r)
		}
		if pn.hasRoute("default") {
			t.Errorf("default-restricted: has a default route\n%s", r)
		}
	})
}

// delLinkAfter deletes a host link (a bridge a CNI plugin creates and never
// removes) when the test ends. Call it before NewCtx, so that it runs after
// the Ctx's gc.
func delLinkAfter(t *testing.T, name string) {
	t.Helper()
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", name).Run()
	})
}

// lanConf is a user network: a bridge with host-local IPAM and a chained
// tuning plugin that sets the MTU of the pod's interface.
const lanConf = `{
  "cniVersion": "1.0.0",
  "name": "lan",
  "plugins": [
    {"type": "bridge", "bridge": "rkttlan0", "isGateway": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.231.1.0/24"}]], "routes": [{"dst": "10.231.0.0/16"}]}},
    {"type": "tuning", "mtu": 1400}
  ]
}`

// A user network of the bridge plugin with ipMasq leaves nothing behind
// (issue: its NAT chain stayed after every run, since the plugin's DEL
// needs the namespace that teardown removes first).
func TestNetUserNetworkMasq(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "ip")
	testutil.RequireCommand(t, "iptables")
	iptablesRestoredAfter(t)
	delLinkAfter(t, "rkttmasq0")
	delLinkAfter(t, "rkttmasq1")
	c := testutil.NewCtx(t)
	writeNetConf(t, c, "10-masq.conflist", `{
  "cniVersion": "1.0.0", "name": "masq",
  "plugins": [
    {"type": "bridge", "bridge": "rkttmasq0", "isGateway": true, "ipMasq": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.231.5.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}}
  ]
}`)
	// The same network with a plugin teardown does not know: its DEL
	// runs while the namespace still exists.
	writeNetConf(t, c, "20-masqfw.conflist", `{
  "cniVersion": "1.0.0", "name": "masqfw",
  "plugins": [
    {"type": "bridge", "bridge": "rkttmasq1", "isGateway": true, "ipMasq": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.231.6.0/24"}]]}},
    {"type": "firewall", "backend": "iptables"}
  ]
}`)
	aci := inspectACI(t, "rkt-ng.test/masq")
	before := iptablesSnapshot(t)
	for _, net := range []string{"masq", "masqfw"} {
		r := runInsecure(t, c, "--net="+net, aci, "--", "--print-ifaces")
		wantExit(t, r, 0)
		if !strings.Contains(r.Stdout, "10.231.") {
			t.Fatalf("--net=%s: no address of the network\n%s", net, r)
		}
		// Right after the pod exited, before any gc.
		for l := range iptablesSnapshot(t) {
			if !before[l] {
				t.Errorf("--net=%s: iptables line left after the pod exited: %s", net, l)
			}
		}
	}
}

func TestNetUserNetworks(t *testing.T) {
	testutil.RequireRoot(t)
	iptablesRestoredAfter(t)
	testutil.RequireCommand(t, "ip")
	delLinkAfter(t, "rkttlan0")
	c := testutil.NewCtx(t)
	writeNetConf(t, c, "10-lan.conflist", lanConf)
	aci := inspectACI(t, "rkt-ng.test/usernet")
	show := []string{"--", "--print-ifaces", "--print-routes"}
	lan := netip.MustParsePrefix("10.231.1.0/24")
	restricted := netip.MustParsePrefix("172.31.0.0/16")
	def := netip.MustParsePrefix("172.16.28.0/24")
	mtu1400 := func(out string, iface string) bool {
		return strings.Contains(out, "IFACE="+iface+" mtu=1400 ")
	}

	t.Run("named", func(t *testing.T) {
		r := runInsecure(t, c, append([]string{"--net=lan", aci}, show...)...)
		wantExit(t, r, 0)
		pn := parsePodNet(t, r.Stdout)
		if a, ok := pn.addr4("eth0"); !ok || !lan.Contains(a.Addr()) || a.Bits() != 24 {
			t.Errorf("eth0 has %v, want an address in %v\n%s", pn.ifaces["eth0"], lan, r)
		}
		if !mtu1400(r.Stdout, "eth0") {
			t.Errorf("the chained tuning plugin did not set mtu 1400 on eth0\n%s", r)
		}
		if !pn.hasRoute("10.231.0.0/16 via 10.231.1.1 dev eth0") {
			t.Errorf("no route from the IPAM config\n%s", r)
		}
		// default-restricted is added when default is not used, after lan
		// (10-lan.conflist sorts before the built-in networks).
		if a, ok := pn.addr4("eth1"); !ok || !restricted.Contains(a.Addr()) {
			t.Errorf("eth1 has %v, want default-restricted (%v)\n%s", pn.ifaces["eth1"], restricted, r)
		}
		if pn.hasRoute("default") {
			t.Errorf("a default route without the default network\n%s", r)
		}
	})
	t.Run("args", func(t *testing.T) {
		r := runInsecure(t, c, append([]string{"--net=lan:IP=10.231.1.77", aci}, show...)...)
		wantExit(t, r, 0)
		pn := parsePodNet(t, r.Stdout)
		if a, ok := pn.addr4("eth0"); !ok || a.Addr() != netip.MustParseAddr("10.231.1.77") {
			t.Errorf("--net=lan:IP=10.231.1.77: eth0 has %v\n%s", pn.ifaces["eth0"], r)
		}
	})
	t.Run("all", func(t *testing.T) {
		r := runInsecure(t, c, append([]string{"--net=all", aci}, show...)...)
		wantExit(t, r, 0)
		pn := parsePodNet(t, r.Stdout)
		a0, ok0 := pn.addr4("eth0")
		a1, ok1 := pn.addr4("eth1")
		if !ok0 || !lan.Contains(a0.Addr()) || !ok1 || !def.Contains(a1.Addr()) {
			t.Errorf("--net=all: want eth0 on lan and eth1 on default, got %v\n%s", pn.ifaces, r)
		}
		if _, ok := pn.ifaces["eth2"]; ok {
			t.Errorf("--net=all: default-restricted was added with default\n%s", r)
		}
		if !pn.hasRoute("default via 172.16.28.1 dev eth1") {
			t.Errorf("--net=all: no default route through the default network\n%s", r)
		}
	})
	t.Run("lan,default", func(t *testing.T) {
		r := runInsecure(t, c, append([]string{"--net=default,lan", aci}, show...)...)
		wantExit(t, r, 0)
		pn := parsePodNet(t, r.Stdout)
		if got := pn.names(); !slices.Equal(got, []string{"eth0", "eth1", "lo"}) {
			t.Errorf("--net=default,lan: interfaces %v\n%s", got, r)
		}
	})
	t.Run("override-default", func(t *testing.T) {
		c := testutil.NewCtx(t)
		writeNetConf(t, c, "50-mydefault.conf", `{
  "cniVersion": "0.4.0", "name": "default", "type": "ptp", "ipMasq": true,
  "ipam": {"type": "host-local", "subnet": "10.231.2.0/24", "routes": [{"dst": "0.0.0.0/0"}]}
}`)
		r := runInsecure(t, c, append([]string{aci}, show...)...)
		wantExit(t, r, 0)
		pn := parsePodNet(t, r.Stdout)
		if a, ok := pn.addr4("eth0"); !ok || !netip.MustParsePrefix("10.231.2.0/24").Contains(a.Addr()) {
			t.Errorf("a user network named default does not replace the built-in: eth0 %v\n%s", pn.ifaces["eth0"], r)
		}
		if _, ok := pn.ifaces["eth1"]; ok {
			t.Errorf("default-restricted added to the user's default\n%s", r)
		}
	})
}

// hostIPv4 returns a global IPv4 address of this host that is not on
// loopback: what another host would connect to.
func hostIPv4(t *testing.T) netip.Addr {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 || strings.HasPrefix(ifc.Name, "veth") ||
			strings.HasPrefix(ifc.Name, "rkt") || strings.HasPrefix(ifc.Name, "cni") {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			p, err := netip.ParsePrefix(a.String())
			if err == nil && p.Addr().Is4() && p.Addr().IsGlobalUnicast() {
				return p.Addr()
			}
		}
	}
	t.Skip("requires a host interface with a global IPv4 address (the host's own IP for --port); run on a host with a network")
	return netip.Addr{}
}

// freePort returns a TCP port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// httpGet fetches url from the host, retrying for up to 10 seconds.
func httpGet(t *testing.T, url string) (string, error) {
	t.Helper()
	client := &http.Client{Timeout: 3 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				return string(b), nil
			}
			err = fmt.Errorf("%s: %s %v", url, resp.Status, rerr)
		}
		if time.Now().After(deadline) {
			return "", err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// servingPod starts a pod whose first app serves HTTP and waits until it
// listens; it returns the process and the pod UUID. The pod is stopped when
// the test ends.
func servingPod(t *testing.T, c *testutil.Ctx, args ...string) (*testutil.Process, string) {
	t.Helper()
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	p := c.Start(t, append([]string{"--insecure-options=image", "run", "--uuid-file-save=" + uuidFile}, args...)...)
	p.WaitOutput(t, "SERVING=", 60*time.Second)
	b, err := os.ReadFile(uuidFile)
	if err != nil {
		t.Fatal(err)
	}
	uuid := strings.TrimSpace(string(b))
	t.Cleanup(func() {
		if !p.Exited() {
			exec.Command(c.Rkt, c.Args("stop", "--force", uuid)...).Run()
		}
	})
	return p, uuid
}

// statusNetworks returns the networks= field of `rkt status`.
func statusNetworks(t *testing.T, c *testutil.Ctx, uuid string) string {
	t.Helper()
	st := c.MustRun(t, "status", uuid)
	for _, line := range strings.Split(st.Stdout, "\n") {
		if v, ok := strings.CutPrefix(line, "networks="); ok {
			return v
		}
	}
	t.Fatalf("rkt status shows no networks=\n%s", st)
	return ""
}

// netIP picks the address of network name and family ("ip4" or "ip6") from
// a networks= value such as "default:ip4=172.16.28.2, lan:ip6=fd00::2".
func netIP(t *testing.T, networks, name, family string) netip.Addr {
	t.Helper()
	for _, part := range strings.Split(networks, ", ") {
		if v, ok := strings.CutPrefix(part, name+":"+family+"="); ok {
			a, err := netip.ParseAddr(v)
			if err != nil {
				t.Fatalf("networks=%s: bad address %q", networks, v)
			}
			return a
		}
	}
	t.Fatalf("networks=%s has no %s address on %s", networks, family, name)
	return netip.Addr{}
}

func TestNetPodToPodAndStatus(t *testing.T) {
	testutil.RequireRoot(t)
	iptablesRestoredAfter(t)
	c := testutil.NewCtx(t)
	web := inspectACI(t, "rkt-ng.test/web")
	client := inspectACI(t, "rkt-ng.test/client")
	p, uuid := servingPod(t, c, "--net=default", "--hostname=web1", web, "--", "--serve-http=:8080")
	networks := statusNetworks(t, c, uuid)
	ip := netIP(t, networks, "default", "ip4")
	if !netip.MustParsePrefix("172.16.28.0/24").Contains(ip) {
		t.Errorf("status networks=%s: address outside the default network", networks)
	}
	list := c.MustRun(t, "list", "--no-legend")
	if !strings.Contains(list.Stdout, "default:ip4="+ip.String()) {
		t.Errorf("rkt list does not show default:ip4=%s\n%s", ip, list)
	}
	// net-info.json has the same address.
	info := readNetInfo(t, c, uuid)
	if len(info.Networks) != 1 || len(info.Networks[0].IPs) != 1 || info.Networks[0].IPs[0].Addr() != ip {
		t.Errorf("net-info.json %+v does not match status %s", info, networks)
	}
	// default masquerades what leaves 172.16.28.0/24.
	masq := false
	for _, line := range iptablesLines(t) {
		masq = masq || strings.Contains(line, uuid) && strings.Contains(line, "-j MASQUERADE")
	}
	if !masq {
		t.Errorf("no MASQUERADE rule for pod %s on the default network", uuid)
	}
	r := runInsecure(t, c, "--net=default", client, "--", "--get-http=http://"+ip.String()+":8080/")
	wantExit(t, r, 0)
	if !strings.Contains(r.Stdout, "hello from web1") {
		t.Errorf("the second pod did not reach the first\n%s", r)
	}
	c.MustRun(t, "stop", uuid)
	p.Wait(t, 30*time.Second)
}

// netInfo is the part of net-info.json the tests look at.
type netInfo struct {
	NetNS    string `json:"netns"`
	Networks []struct {
		NetName    string         `json:"netName"`
		IfName     string         `json:"ifName"`
		HostIfName string         `json:"hostIfName"`
		IPs        []netip.Prefix `json:"ips"`
	} `json:"networks"`
}

func readNetInfo(t *testing.T, c *testutil.Ctx, uuid string) netInfo {
	t.Helper()
	var info netInfo
	b, err := os.ReadFile(filepath.Join(c.DataDir, "pods", "run", uuid, "net-info.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	return info
}

func TestNetPortForward(t *testing.T) {
	testutil.RequireRoot(t)
	iptablesRestoredAfter(t)
	hostIP := hostIPv4(t)
	c := testutil.NewCtx(t)
	web := inspectACI(t, "rkt-ng.test/portweb", testutil.WithPort("http", "tcp", 8080))
	client := inspectACI(t, "rkt-ng.test/portclient")
	port := freePort(t)
	byHostIP := fmt.Sprintf("http://%s:%d/", hostIP, port)
	// The second app of the pod reaches its own pod through the host port:
	// hairpin (rkt #3751).
	p, uuid := servingPod(t, c, "--net=default", "--hostname=portweb", fmt.Sprintf("--port=http:%d", port),
		web, "--", "--serve-http=:8080", "---",
		client, "--", "--get-http="+byHostIP, "--sleep=1h")

	t.Run("host IP", func(t *testing.T) {
		body, err := httpGet(t, byHostIP)
		if err != nil || body != "hello from portweb" {
			t.Errorf("GET %s from the host: %q, %v", byHostIP, body, err)
		}
	})
	t.Run("localhost", func(t *testing.T) {
		u := fmt.Sprintf("http://127.0.0.1:%d/", port)
		body, err := httpGet(t, u)
		if err != nil || body != "hello from portweb" {
			t.Errorf("GET %s from the host (rkt #1256): %q, %v", u, body, err)
		}
	})
	t.Run("other pod", func(t *testing.T) {
		r := runInsecure(t, c, "--net=default", client, "--", "--get-http="+byHostIP)
		wantExit(t, r, 0)
		if !strings.Contains(r.Stdout, "hello from portweb") {
			t.Errorf("another pod did not reach the host port (rkt #2283)\n%s", r)
		}
	})
	t.Run("same pod", func(t *testing.T) {
		// The client app prints the body once its GET succeeded.
		p.WaitOutput(t, "hello from portweb", 30*time.Second)
	})
	t.Run("host IP restricted", func(t *testing.T) {
		// --port NAME:HOSTIP:PORT answers on that address only.
		port2 := freePort(t)
		servingPod(t, c, "--net=default", "--hostname=portweb2", fmt.Sprintf("--port=http:127.0.0.1:%d", port2),
			web, "--", "--serve-http=:8080")
		body, err := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port2))
		if err != nil || body != "hello from portweb2" {
			t.Errorf("GET 127.0.0.1:%d: %q, %v", port2, body, err)
		}
		cl := &http.Client{Timeout: 2 * time.Second}
		if resp, err := cl.Get(fmt.Sprintf("http://%s:%d/", hostIP, port2)); err == nil {
			resp.Body.Close()
			t.Errorf("a port forwarded on 127.0.0.1 answers on %s", hostIP)
		}
	})
	c.MustRun(t, "stop", uuid)
	p.Wait(t, 30*time.Second)
}

// dnsConf is a user network whose plugin returns DNS settings.
const dnsConf = `{
  "cniVersion": "1.0.0",
  "name": "withdns",
  "plugins": [{"type": "ptp", "ipMasq": false,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.231.3.0/24"}]]},
    "dns": {"nameservers": ["10.231.3.53"], "search": ["cni.example"], "options": ["ndots:2"]}}]
}`

func TestNetDNS(t *testing.T) {
	testutil.RequireRoot(t)
	iptablesRestoredAfter(t)
	c := testutil.NewCtx(t)
	writeNetConf(t, c, "20-withdns.conflist", dnsConf)
	const imageResolv = "nameserver 192.0.2.53 # image\n"
	const imageHosts = "10.9.9.9\timagehost # image\n"
	own := inspectACI(t, "rkt-ng.test/dnsown",
		testutil.WithFile("/etc/resolv.conf", imageResolv, 0o644),
		testutil.WithFile("/etc/hosts", imageHosts, 0o644))
	bare := inspectACI(t, "rkt-ng.test/dnsbare")
	volFile := filepath.Join(t.TempDir(), "resolv.conf")
	const volResolv = "nameserver 192.0.2.99 # volume\n"
	if err := os.WriteFile(volFile, []byte(volResolv), 0o644); err != nil {
		t.Fatal(err)
	}
	vol := []string{"--volume=resolv,kind=host,source=" + volFile, "--mount=volume=resolv,target=/etc/resolv.conf"}
	hostResolv, _ := os.ReadFile("/etc/resolv.conf")
	hostHosts, _ := os.ReadFile("/etc/hosts")
	// rkt 1.30 (common.MakeResolvConf) headed the file with a comment
	// and wrote search, nameservers, options, then domain.
	const run = "# Generated by rkt run\n\n"
	const fromCNI = "# Generated by rkt from network withdns\n\nsearch cni.example\nnameserver 10.231.3.53\noptions ndots:2\n"
	resolvOf := func(t *testing.T, args ...string) string {
		t.Helper()
		r := runInsecure(t, c, append(args, "--", "--print-file=/etc/resolv.conf")...)
		wantExit(t, r, 0)
		return r.Stdout
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"image file", []string{"--net=default", own}, imageResolv},
		{"no file", []string{"--net=default", bare}, ""},
		{"flags", []string{"--net=default", "--dns=10.1.1.1", "--dns=10.1.1.2", "--dns-search=a.example", "--dns-search=b.example",
			"--dns-opt=ndots:3", "--dns-domain=example.org", bare},
			run + "search a.example b.example\nnameserver 10.1.1.1\nnameserver 10.1.1.2\noptions ndots:3\ndomain example.org\n"},
		{"comma list", []string{"--net=default", "--dns=10.1.1.1,10.1.1.2", bare}, run + "nameserver 10.1.1.1\nnameserver 10.1.1.2\n"},
		{"search only", []string{"--net=default", "--dns-search=only.example", own}, run + "search only.example\n"},
		{"cni", []string{"--net=withdns", own}, fromCNI},
		{"flags over cni", []string{"--net=withdns", "--dns=10.1.1.1", own}, run + "nameserver 10.1.1.1\n"},
		{"none ignores cni", []string{"--net=withdns", "--dns=none", own}, imageResolv},
		{"volume over image", append(vol, "--net=default", own), volResolv},
		{"cni over volume", append(vol, "--net=withdns", own), fromCNI},
		{"flags over volume", append(vol, "--net=default", "--dns=10.1.1.1", own), run + "nameserver 10.1.1.1\n"},
		{"none keeps volume", append(vol, "--net=withdns", "--dns=none", own), volResolv},
		{"host", []string{"--net=default", "--dns=host", own}, string(hostResolv)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := resolvOf(t, tc.args...)
			if got != tc.want {
				t.Errorf("/etc/resolv.conf with %q:\n%q\nwant\n%q", tc.args, got, tc.want)
			}
		})
	}

	t.Run("hosts entries", func(t *testing.T) {
		r := runInsecure(t, c, "--net=default", "--hostname=dnspod", "--hosts-entry=10.2.2.2=db.example", "--hosts-entry=10.2.2.3=cache",
			bare, "--", "--read-file=/etc/hosts", "--resolve=db.example", "--resolve=cache", "--print-hostname")
		wantExit(t, r, 0)
		for _, want := range []string{"10.2.2.2 db.example\n", "10.2.2.3 cache\n", "RESOLVE=db.example 10.2.2.2\n",
			"RESOLVE=cache 10.2.2.3\n", "HOSTNAME=dnspod\n", "localhost"} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("output lacks %q\n%s", want, r)
			}
		}
	})
	t.Run("hosts entries comma list", func(t *testing.T) {
		// rkt 1.30 (Documentation/networking/dns.md): --hosts-entry takes
		// comma-separated IP=NAME pairs and gives the names of one IP one
		// line, in the order given.
		r := runInsecure(t, c, "--net=none", "--hosts-entry=198.51.100.0=host1,198.51.100.1=host2", "--hosts-entry=198.51.100.0=host3",
			bare, "--", "--read-file=/etc/hosts", "--resolve=host3")
		wantExit(t, r, 0)
		for _, want := range []string{"# Added by rkt run --hosts-entry\n198.51.100.0 host1 host3\n198.51.100.1 host2\n", "RESOLVE=host3 198.51.100.0\n"} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("output lacks %q\n%s", want, r)
			}
		}
	})
	t.Run("bad flags", func(t *testing.T) {
		// rkt 1.30 refused these before creating the pod ("error with dns
		// flags"), exit 254.
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--dns=host", "--dns=8.8.8.8"}, "--dns=host"},
			{[]string{"--dns=none", "--dns-search=a.example"}, "--dns-search"},
			{[]string{"--dns=resolver.example"}, "resolver.example"},
			{[]string{"--hosts-entry=host", "--hosts-entry=10.0.0.1=a"}, "--hosts-entry=host"},
			{[]string{"--hosts-entry=10.0.0=a"}, "10.0.0"},
			{[]string{"--hosts-entry=10.0.0.1"}, "10.0.0.1"},
		} {
			r := runInsecure(t, c, append(append([]string{"--net=none"}, tc.args...), bare, "--", "--print-hostname")...)
			wantExit(t, r, 254)
			oneLineError(t, r, tc.want)
			if strings.Contains(r.Stdout, "HOSTNAME=") {
				t.Errorf("%q: the app ran\n%s", tc.args, r)
			}
		}
	})
	t.Run("hosts host", func(t *testing.T) {
		r := runInsecure(t, c, "--net=default", "--hosts-entry=host", own, "--", "--read-file=/etc/hosts")
		wantExit(t, r, 0)
		if r.Stdout != string(hostHosts) {
			t.Errorf("--hosts-entry=host: /etc/hosts is\n%q\nwant the host's\n%q", r.Stdout, hostHosts)
		}
	})
	t.Run("hosts fallback", func(t *testing.T) {
		// An image without /etc/hosts gets localhost and the hostname.
		r := runInsecure(t, c, "--net=default", "--hostname=fallback", bare, "--", "--read-file=/etc/hosts", "--resolve=localhost", "--resolve=fallback")
		wantExit(t, r, 0)
		for _, want := range []string{"127.0.0.1\tlocalhost", "fallback\n", "RESOLVE=localhost 127.0.0.1", "RESOLVE=fallback 127.0.0.1"} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("output lacks %q\n%s", want, r)
			}
		}
		// The image's own file is left as it is.
		r = runInsecure(t, c, "--net=default", own, "--", "--read-file=/etc/hosts")
		wantExit(t, r, 0)
		if r.Stdout != imageHosts {
			t.Errorf("the image's /etc/hosts was changed to\n%q", r.Stdout)
		}
	})
	t.Run("default hostname", func(t *testing.T) {
		uuidFile := filepath.Join(t.TempDir(), "uuid")
		r := runInsecure(t, c, "--net=none", "--uuid-file-save="+uuidFile, bare, "--", "--print-hostname")
		wantExit(t, r, 0)
		b, _ := os.ReadFile(uuidFile)
		if want := "HOSTNAME=rkt-" + strings.TrimSpace(string(b)) + "\n"; !strings.Contains(r.Stdout, want) {
			t.Errorf("output lacks %q\n%s", want, r)
		}
	})
}

// dualConf is a dual-stack user network.
const dualConf = `{
  "cniVersion": "1.0.0",
  "name": "dual",
  "plugins": [{"type": "bridge", "bridge": "rktt6br0", "isGateway": true,
    "ipam": {"type": "host-local",
      "ranges": [[{"subnet": "10.231.6.0/24"}], [{"subnet": "fd00:231:6::/64"}]],
      "routes": [{"dst": "10.231.0.0/16"}, {"dst": "fd00:231::/48"}]}}]
}`

func TestNetIPv6DualStack(t *testing.T) {
	testutil.RequireRoot(t)
	iptablesRestoredAfter(t)
	if b, err := os.ReadFile("/proc/sys/net/ipv6/conf/all/disable_ipv6"); err != nil || strings.TrimSpace(string(b)) != "0" {
		t.Skip("requires IPv6 enabled (net.ipv6.conf.all.disable_ipv6=0); run on a host with IPv6")
	}
	delLinkAfter(t, "rktt6br0")
	c := testutil.NewCtx(t)
	writeNetConf(t, c, "30-dual.conflist", dualConf)
	web := inspectACI(t, "rkt-ng.test/web6")
	client := inspectACI(t, "rkt-ng.test/client6")

	r := runInsecure(t, c, "--net=dual", client, "--", "--print-ifaces", "--print-routes")
	wantExit(t, r, 0)
	pn := parsePodNet(t, r.Stdout)
	a4, ok4 := pn.addr4("eth0")
	a6, ok6 := pn.addr6("eth0")
	if !ok4 || !netip.MustParsePrefix("10.231.6.0/24").Contains(a4.Addr()) ||
		!ok6 || !netip.MustParsePrefix("fd00:231:6::/64").Contains(a6.Addr()) {
		t.Errorf("eth0 has %v, want an IPv4 and an IPv6 address of the dual network\n%s", pn.ifaces["eth0"], r)
	}
	if !pn.hasRoute("fd00:231::/48 via fd00:231:6::1 dev eth0") {
		t.Errorf("no IPv6 route from the IPAM config\n%s", r)
	}

	p, uuid := servingPod(t, c, "--net=dual", "--hostname=web6", web, "--", "--serve-http=[::]:8080")
	networks := statusNetworks(t, c, uuid)
	ip4 := netIP(t, networks, "dual", "ip4")
	ip6 := netIP(t, networks, "dual", "ip6")
	list := c.MustRun(t, "list", "--no-legend")
	if !strings.Contains(list.Stdout, "dual:ip6="+ip6.String()) {
		t.Errorf("rkt list does not show dual:ip6=%s\n%s", ip6, list)
	}
	for _, u := range []string{
		fmt.Sprintf("http://%s:8080/", ip4),
		fmt.Sprintf("http://[%s]:8080/", ip6),
	} {
		body, err := httpGet(t, u)
		if err != nil || body != "hello from web6" {
			t.Errorf("GET %s from the host: %q, %v", u, body, err)
		}
	}
	r = runInsecure(t, c, "--net=dual", client, "--", fmt.Sprintf("--get-http=http://[%s]:8080/", ip6))
	wantExit(t, r, 0)
	if !strings.Contains(r.Stdout, "hello from web6") {
		t.Errorf("pod to pod over IPv6 failed\n%s", r)
	}
	c.MustRun(t, "stop", uuid)
	p.Wait(t, 30*time.Second)
}

// testNetworks are the network names the tests use, for the iptables chain
// names that plugins derive from a network name and a pod UUID.
var testNetworks = []string{"default", "default-restricted", "lan", "withdns", "dual", "ghost", "chain"}

// sharedChainLine matches what plugins create once per host and keep by
// design: portmap's CNI-HOSTPORT-* chains, the firewall plugin's
// CNI-FORWARD and CNI-ADMIN, and the jumps into them. Rules inside them
// that name a pod are not shared and must go.
var sharedChainLine = regexp.MustCompile(`^(:(CNI-HOSTPORT-\S+|CNI-FORWARD|CNI-ADMIN) |-A (PREROUTING|OUTPUT|POSTROUTING|FORWARD|CNI-FORWARD|CNI-HOSTPORT-\S+) .*-j (CNI-HOSTPORT-\S+|CNI-FORWARD|CNI-ADMIN)$)`)

// builtinLine matches table headers, COMMIT and the policies of built-in
// chains, which appear once a plugin first uses a table.
var builtinLine = regexp.MustCompile(`^(\*\S+|COMMIT|:(INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) \S+)$`)

// iptablesSnapshot is every rule and chain of every table of iptables-save
// and ip6tables-save, with chain counters removed, less the shared chains
// plugins keep by design and the tables' built-in lines.
func iptablesSnapshot(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	counters := regexp.MustCompile(` \[\d+:\d+\]$`)
	for _, l := range iptablesLines(t) {
		l = counters.ReplaceAllString(l, "")
		if !sharedChainLine.MatchString(l) && !builtinLine.MatchString(l) {
			out[l] = true
		}
	}
	return out
}

// iptablesRestoredAfter compares the whole iptables state (all tables, both
// families) before the test and after it, once its pods are gone (it runs
// after the cleanups registered later, including the Ctx's gc): whatever a
// pod's networks added must have been removed, whatever plugin added it.
func iptablesRestoredAfter(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("iptables-save"); err != nil {
		return
	}
	before := iptablesSnapshot(t)
	t.Cleanup(func() {
		after := iptablesSnapshot(t)
		for l := range after {
			if !before[l] {
				t.Errorf("iptables line left behind: %s", l)
			}
		}
		for l := range before {
			if !after[l] {
				t.Errorf("iptables line removed by the test's pods: %s", l)
			}
		}
	})
}

// iptablesLines returns iptables-save and ip6tables-save output, one rule or
// chain declaration per line.
func iptablesLines(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, tool := range []string{"iptables-save", "ip6tables-save"} {
		b, err := exec.Command(tool).Output()
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line != "" && !strings.HasPrefix(line, "#") {
				out = append(out, line)
			}
		}
	}
	return out
}

// podNetRecords returns the UUIDs of c's pods and the host-side links their
// net-info.json records (read before gc removes the pods).
func podNetRecords(t *testing.T, c *testutil.Ctx) (uuids, hostIfs []string) {
	t.Helper()
	for _, d := range podDirs(t, c) {
		uuids = append(uuids, filepath.Base(d))
		b, err := os.ReadFile(filepath.Join(d, "net-info.json"))
		if err != nil {
			continue
		}
		var info netInfo
		if err := json.Unmarshal(b, &info); err != nil {
			t.Errorf("%s/net-info.json: %v", d, err)
			continue
		}
		for _, n := range info.Networks {
			if n.HostIfName != "" {
				hostIfs = append(hostIfs, n.HostIfName)
			}
		}
	}
	return uuids, hostIfs
}

// checkNoNetLeft fails the test if anything of the given pods' networks is
// still on the host: an IP lease or cached result in the network data dir,
// one of the host links, an iptables rule or chain of the pods (found by the
// pod UUID in rule comments and by the chain names the plugins derive from
// it; portmap's shared CNI-HOSTPORT-* chains stay, as designed), a netns
// file or a mount. Only the pods' own state is checked, so that other pods
// on the host do not count.
func checkNoNetLeft(t *testing.T, c *testutil.Ctx, uuids, hostIfs []string) {
	t.Helper()
	dataDir := filepath.Join(c.DataDir, "networks")
	filepath.WalkDir(dataDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		// host-local keeps a lock and the last reserved IP per range.
		base := filepath.Base(p)
		if base == "lock" || strings.HasPrefix(base, "last_reserved_ip") {
			return nil
		}
		b, _ := os.ReadFile(p)
		t.Errorf("network state left: %s (%q)", p, b)
		return nil
	})
	for _, l := range hostIfs {
		if _, err := net.InterfaceByName(l); err == nil {
			t.Errorf("host link left: %s", l)
		}
	}
	var marks []string
	for _, u := range uuids {
		marks = append(marks, u)
		for _, n := range testNetworks {
			marks = append(marks, cniutils.FormatChainName(n, u),
				cniutils.MustFormatChainNameWithPrefix(n, u, "DN-"), cniutils.MustFormatChainNameWithPrefix(n, u, "SN-"))
		}
	}
	for _, line := range iptablesLines(t) {
		for _, m := range marks {
			if strings.Contains(line, m) {
				t.Errorf("iptables rule left: %s", line)
				break
			}
		}
	}
	// The built-in networks keep their leases host-wide (issue 17); a lease
	// file of host-local holds the pod UUID (its CNI container ID).
	filepath.WalkDir(hostIPAMDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, u := range uuids {
			if strings.Contains(string(b), u) {
				t.Errorf("host-wide IP lease left: %s (%q)", p, b)
			}
		}
		return nil
	})
	mountinfo, _ := os.ReadFile("/proc/self/mountinfo")
	for _, u := range uuids {
		if _, err := os.Lstat(filepath.Join("/run/rkt/netns", u)); err == nil {
			t.Errorf("netns file left: /run/rkt/netns/%s", u)
		}
		if strings.Contains(string(mountinfo), u) {
			t.Errorf("mount of pod %s left", u)
		}
		ports, _ := os.ReadDir("/run/rkt/ports")
		for _, e := range ports {
			if b, _ := os.ReadFile(filepath.Join("/run/rkt/ports", e.Name())); strings.HasPrefix(string(b), u) {
				t.Errorf("host port reservation left: /run/rkt/ports/%s", e.Name())
			}
		}
	}
}

func TestNetLeakFree(t *testing.T) {
	testutil.RequireRoot(t)
	iptablesRestoredAfter(t)
	testutil.RequireCommand(t, "ip")
	testutil.RequireCommand(t, "iptables")
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/leak", testutil.WithPort("http", "tcp", 8080))
	n := 50
	if testing.Short() {
		n = 5
	}
	port := freePort(t)
	seen := map[string]bool{}
	for i := range n {
		args := []string{"--net=default", aci, "--", "--print-ifaces"}
		if i%10 == 0 {
			// Some with a port forward, for portmap's rules.
			args = append([]string{fmt.Sprintf("--port=http:%d", port)}, args...)
		}
		r := runInsecure(t, c, args...)
		wantExit(t, r, 0)
		a, ok := parsePodNet(t, r.Stdout).addr4("eth0")
		if !ok {
			t.Fatalf("pod %d has no address\n%s", i, r)
		}
		seen[a.Addr().String()] = true
	}
	uuids, hostIfs := podNetRecords(t, c)
	if len(uuids) != n || len(hostIfs) != n {
		t.Fatalf("%d pods with %d host links recorded, want %d", len(uuids), len(hostIfs), n)
	}
	// The pods have exited and released their networks already; gc must
	// be harmless.
	checkNoNetLeft(t, c, uuids, hostIfs)
	c.MustRun(t, "gc", "--grace-period=0s")
	if left := podDirs(t, c); len(left) != 0 {
		t.Errorf("gc left pods %v", left)
	}
	checkNoNetLeft(t, c, uuids, hostIfs)
	t.Logf("%d pods used %d distinct addresses", n, len(seen))
}

// TestNetKilledPodCleanedByGC SIGKILLs `rkt run` at several points of a
// pod's start and checks that gc releases everything.
func TestNetKilledPodCleanedByGC(t *testing.T) {
	testutil.RequireRoot(t)
	iptablesRestoredAfter(t)
	testutil.RequireCommand(t, "ip")
	testutil.RequireCommand(t, "iptables")
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/killed", testutil.WithPort("http", "tcp", 8080))
	port := freePort(t)
	var uuids, hostIfs []string
	for _, delay := range []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, -1} {
		p := c.Start(t, "--insecure-options=image", "run", "--net=default", fmt.Sprintf("--port=http:%d", port),
			aci, "--", "--print-msg=RUNNING", "--sleep=1h")
		if delay < 0 {
			p.WaitOutput(t, "RUNNING", 30*time.Second)
		} else {
			time.Sleep(delay)
		}
		p.Signal(os.Kill)
		p.Wait(t, 10*time.Second)
		u, h := podNetRecords(t, c)
		uuids, hostIfs = append(uuids, u...), append(hostIfs, h...)
		// Plugins that were running go on to the end of their ADD.
		time.Sleep(300 * time.Millisecond)
		c.MustRun(t, "gc", "--grace-period=0s", "--expire-prepared=0s")
		if left := podDirs(t, c); len(left) != 0 {
			t.Errorf("killed after %v: gc left pods %v", delay, left)
		}
		checkNoNetLeft(t, c, uuids, hostIfs)
	}
}

func TestNetBadInput(t *testing.T) {
	testutil.RequireRoot(t)
	iptablesRestoredAfter(t)
	testutil.RequireCommand(t, "ip")
	testutil.RequireCommand(t, "iptables")
	delLinkAfter(t, "rkttlan0")
	c := testutil.NewCtx(t)
	writeNetConf(t, c, "10-lan.conflist", lanConf)
	aci := inspectACI(t, "rkt-ng.test/badnet", testutil.WithPort("http", "tcp", 8080))
	// An app must not run when its network failed.
	app := []string{aci, "--", "--print-msg=APP RAN"}

	// bad runs `rkt run args...` and checks a one-line error naming want,
	// exit 254, that the app did not run and that nothing of the network is
	// left, before any gc.
	bad := func(t *testing.T, args []string, want ...string) {
		t.Helper()
		r := runInsecure(t, c, args...)
		wantExit(t, r, 254)
		oneLineError(t, r, want...)
		t.Logf("error: %s", strings.TrimSpace(r.Stderr))
		if strings.Contains(r.Stdout, "APP RAN") {
			t.Errorf("the app ran\n%s", r)
		}
		uuids, hostIfs := podNetRecords(t, c)
		checkNoNetLeft(t, c, uuids, hostIfs)
	}
	t.Run("unknown network", func(t *testing.T) {
		bad(t, append([]string{"--net=nosuchnet"}, app...), "nosuchnet")
	})
	t.Run("unknown network with default", func(t *testing.T) {
		bad(t, append([]string{"--net=default,nosuchnet"}, app...), "nosuchnet")
	})
	t.Run("bad net syntax", func(t *testing.T) {
		bad(t, append([]string{"--net=lan:IP"}, app...), "IP")
	})
	t.Run("IP outside range", func(t *testing.T) {
		bad(t, append([]string{"--net=lan:IP=10.99.0.5"}, app...), "10.99.0.5")
	})
	t.Run("IP outside range with default", func(t *testing.T) {
		// default is added (and must be rolled back) before lan fails.
		bad(t, append([]string{"--net=default,lan:IP=10.99.0.5"}, app...), "10.99.0.5")
	})
	t.Run("undeclared port", func(t *testing.T) {
		bad(t, append([]string{"--port=nosuchport:8081"}, app...), "nosuchport")
	})
	t.Run("port with none", func(t *testing.T) {
		bad(t, append([]string{"--net=none", fmt.Sprintf("--port=http:%d", freePort(t))}, app...), "--port")
	})
	t.Run("bad port", func(t *testing.T) {
		bad(t, append([]string{"--port=http:70000"}, app...), "70000")
	})
	t.Run("host port in use", func(t *testing.T) {
		l, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		bad(t, append([]string{"--port=http:" + port}, app...), port)
	})
	t.Run("host port taken by another pod", func(t *testing.T) {
		port := freePort(t)
		p, uuid := servingPod(t, c, "--net=default", fmt.Sprintf("--port=http:%d", port), aci, "--", "--serve-http=:8080")
		r := runInsecure(t, c, append([]string{fmt.Sprintf("--port=http:%d", port)}, app...)...)
		wantExit(t, r, 254)
		oneLineError(t, r, strconv.Itoa(port))
		// The first pod keeps its port.
		if body, err := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil || !strings.Contains(body, "hello from") {
			t.Errorf("the first pod lost its port: %q, %v", body, err)
		}
		c.MustRun(t, "stop", uuid)
		p.Wait(t, 30*time.Second)
	})

	// Configuration errors: a Ctx of their own, since a malformed file
	// makes every network unusable.
	t.Run("malformed conf", func(t *testing.T) {
		c := testutil.NewCtx(t)
		p := writeNetConf(t, c, "10-broken.conf", `{"name": "broken", "type": `)
		r := runInsecure(t, c, "--net=default", aci)
		wantExit(t, r, 254)
		oneLineError(t, r, p)
	})
	t.Run("missing plugin", func(t *testing.T) {
		c := testutil.NewCtx(t)
		writeNetConf(t, c, "10-ghost.conf", `{"cniVersion": "1.0.0", "name": "ghost", "type": "nosuchplugin",
  "ipam": {"type": "host-local", "subnet": "10.231.9.0/24"}}`)
		r := runInsecure(t, c, append([]string{"--net=default,ghost"}, app...)...)
		wantExit(t, r, 254)
		oneLineError(t, r, "nosuchplugin")
		uuids, hostIfs := podNetRecords(t, c)
		checkNoNetLeft(t, c, uuids, hostIfs)
	})
	t.Run("missing chained plugin", func(t *testing.T) {
		c := testutil.NewCtx(t)
		writeNetConf(t, c, "10-chain.conflist", `{"cniVersion": "1.0.0", "name": "chain", "plugins": [
  {"type": "ptp", "ipam": {"type": "host-local", "subnet": "10.231.10.0/24"}},
  {"type": "nosuchmeta"}]}`)
		r := runInsecure(t, c, append([]string{"--net=chain"}, app...)...)
		wantExit(t, r, 254)
		oneLineError(t, r, "nosuchmeta")
		uuids, hostIfs := podNetRecords(t, c)
		checkNoNetLeft(t, c, uuids, hostIfs)
	})
}

// hostIPAMDir is where the built-in networks keep their IP leases, for every
// data dir of the host.
const hostIPAMDir = "/run/rkt/networks"

// TestNetIPAMHostWide runs a pod on the default network in each of two data
// dirs at once: they must get different addresses (issue 17), and gc of
// each releases its own lease.
func TestNetIPAMHostWide(t *testing.T) {
	testutil.RequireRoot(t)
	iptablesRestoredAfter(t)
	testutil.RequireCommand(t, "ip")
	testutil.RequireCommand(t, "iptables")
	web := inspectACI(t, "rkt-ng.test/ipam")
	var ips []netip.Addr
	var ctxs []*testutil.Ctx
	var uuids []string
	for range 2 {
		c := testutil.NewCtx(t)
		_, uuid := servingPod(t, c, "--net=default", web, "--", "--serve-http=:8080")
		ips = append(ips, netIP(t, statusNetworks(t, c, uuid), "default", "ip4"))
		ctxs, uuids = append(ctxs, c), append(uuids, uuid)
	}
	if ips[0] == ips[1] {
		t.Errorf("pods of two data dirs both got %s on the default network", ips[0])
	}
	for i, c := range ctxs {
		c.MustRun(t, "stop", "--force", uuids[i])
		c.MustRun(t, "status", "--wait", uuids[i])
		_, hostIfs := podNetRecords(t, c)
		c.MustRun(t, "gc", "--grace-period=0s")
		checkNoNetLeft(t, c, uuids[i:i+1], hostIfs)
	}
}
