package cni

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// pluginDir holds the plugins built by build-plugins.sh, for tests run as
// root; "" otherwise.
var pluginDir string

func TestMain(m *testing.M) {
	if os.Getenv(killChildEnv) != "" {
		killChild()
		return
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	flag.Parse()
	if os.Geteuid() == 0 && !testing.Short() {
		dir, err := os.MkdirTemp("", "cni-plugins-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		cmd := exec.Command("sh", "build-plugins.sh", dir)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build-plugins.sh: %v\n", err)
			return 1
		}
		pluginDir = dir
	}
	return m.Run()
}

// requireNet skips tests that create network namespaces and run plugins.
func requireNet(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("requires root (uid=%d); run: sudo -E go test ./cni/", os.Geteuid())
	}
	if pluginDir == "" {
		t.Skip("plugins not built in -short mode; run: sudo -E go test ./cni/")
	}
	if _, err := exec.LookPath("iptables-save"); err != nil {
		t.Skip("requires iptables (ptp ipMasq and portmap use it); run: apt-get install iptables")
	}
}

func newUUID(t *testing.T) string {
	t.Helper()
	var b [16]byte
	if _, err := crand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// netnsDir returns a directory for netns files that is unmounted at the end
// of the test (NewNetNS makes it a mount point).
func netnsDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "netns")
	t.Cleanup(func() { unmountDir(t, dir) })
	return dir
}

func unmountDir(t testing.TB, dir string) {
	t.Helper()
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		t.Errorf("unmount %s: %v", dir, err)
	}
}

// pod is one test pod: a netns and a setup config for it.
type pod struct {
	uuid, ns string
	cfg      SetupConfig
}

func newPod(t *testing.T, nsDir, dataDir string, reqs []Request) *pod {
	t.Helper()
	uuid := newUUID(t)
	ns := filepath.Join(nsDir, uuid)
	if err := NewNetNS(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { RemoveNetNS(ns) })
	return &pod{uuid: uuid, ns: ns, cfg: SetupConfig{
		PodUUID: uuid, NetNSPath: ns, PluginDirs: []string{pluginDir}, Networks: reqs, DataDir: dataDir,
		PluginStderr: tWriter{t},
	}}
}

func (p *pod) setup(t *testing.T) *Info {
	t.Helper()
	info, err := Setup(t.Context(), p.cfg)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() { Teardown(context.Background(), info, p.ns, p.cfg.PluginDirs, p.cfg.DataDir) })
	return info
}

func (p *pod) teardown(t *testing.T, info *Info) {
	t.Helper()
	// A pod's processes are gone when it is torn down; the sockets the test
	// opened inside the namespace stand for them and would keep it alive.
	closeListeners(p.ns)
	if err := Teardown(t.Context(), info, p.ns, p.cfg.PluginDirs, p.cfg.DataDir); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
}

// tWriter sends plugin stderr to the test log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Logf("plugin: %s", strings.TrimSpace(string(b)))
	return len(b), nil
}

// conflist builds a test network on its own subnet, so that leftovers are
// easy to find and tests of other packages running at the same time do not
// interfere.
func conflist(t *testing.T, name string, plugins string) Request {
	t.Helper()
	n, err := parseNetwork(fmt.Appendf(nil, `{"cniVersion": "1.0.0", "name": %q, "plugins": [%s]}`, name, plugins))
	if err != nil {
		t.Fatal(err)
	}
	return Request{Name: n.Name, Config: n.Config}
}

func ptpConf(subnet string, ipMasq bool, defaultRoute bool) string {
	routes := ""
	if defaultRoute {
		routes = `, "routes": [{"dst": "0.0.0.0/0"}]`
	}
	return fmt.Sprintf(`{"type": "ptp", "ipMasq": %v, "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]]%s}}`,
		ipMasq, subnet, routes)
}

// serve accepts connections on l and answers each with "hello".
func serve(t *testing.T, l net.Listener) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello"))
			c.Close()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
}

// listenIn opens a TCP listener inside the namespace at ns and serves it.
func listenIn(t *testing.T, ns, network, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	err := Do(ns, func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen in netns: %v", err)
	}
	serve(t, l)
	nsListenersMu.Lock()
	nsListeners[ns] = append(nsListeners[ns], l)
	nsListenersMu.Unlock()
	return l
}

// nsListeners are the listeners tests opened inside each namespace.
var (
	nsListenersMu sync.Mutex
	nsListeners   = map[string][]net.Listener{}
)

func closeListeners(ns string) {
	nsListenersMu.Lock()
	defer nsListenersMu.Unlock()
	for _, l := range nsListeners[ns] {
		l.Close()
	}
	delete(nsListeners, ns)
}

// hello dials addr and expects "hello"; with ns, it dials from inside it.
func hello(ns, addr string) error {
	dial := func() error {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil {
			return err
		}
		if string(b) != "hello" {
			return fmt.Errorf("read %q from %s", b, addr)
		}
		return nil
	}
	if ns == "" {
		return dial()
	}
	return Do(ns, dial)
}

func mustHello(t *testing.T, ns, addr string) {
	t.Helper()
	if err := hello(ns, addr); err != nil {
		where := "host"
		if ns != "" {
			where = "pod"
		}
		t.Errorf("connect from %s to %s: %v", where, addr, err)
	}
}

// iptablesLines returns the lines of iptables-save (IPv4, all tables) that
// contain any of the given strings.
func iptablesLines(t *testing.T, subs ...string) []string {
	t.Helper()
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		for _, s := range subs {
			if s != "" && strings.Contains(sc.Text(), s) {
				lines = append(lines, sc.Text())
				break
			}
		}
	}
	return lines
}

// chainsOf returns the chains named in rules: what a pod's rules jump to.
func chainsOf(lines []string) []string {
	var chains []string
	for _, l := range lines {
		f := strings.Fields(l)
		for i := range f {
			if (f[i] == "-j" || f[i] == "-A") && i+1 < len(f) && strings.HasPrefix(f[i+1], "CNI-") &&
				!strings.HasPrefix(f[i+1], "CNI-HOSTPORT-") {
				chains = append(chains, f[i+1])
			}
		}
	}
	return chains
}

// leases lists the IPs host-local has reserved in dataDir/net.
func leases(t *testing.T, dataDir, net string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dataDir, net))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err == nil {
			ips = append(ips, e.Name())
		}
	}
	return ips
}

// hostAddrsIn returns host addresses inside prefix (the ptp host side of a
// pod holds the gateway address).
func hostAddrsIn(t *testing.T, prefix string) []string {
	t.Helper()
	p := netip.MustParsePrefix(prefix)
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && p.Contains(ip.Unmap()) {
			out = append(out, a.String())
		}
	}
	return out
}

// checkClean fails if anything of the pods is left on the host.
func checkClean(t *testing.T, dataDir string, nets []string, subnets []string, uuids []string, chains []string) {
	t.Helper()
	for _, n := range nets {
		if l := leases(t, dataDir, n); len(l) > 0 {
			t.Errorf("IPAM leases left in network %s: %v", n, l)
		}
	}
	for _, s := range subnets {
		if a := eventually(func() []string { return hostAddrsIn(t, s) }); len(a) > 0 {
			t.Errorf("host addresses left in %s: %v", s, a)
		}
	}
	if l := iptablesLines(t, append(append(uuids, chains...), subnets...)...); len(l) > 0 {
		t.Errorf("iptables rules left:\n%s", strings.Join(l, "\n"))
	}
	if e, _ := os.ReadDir(filepath.Join(dataDir, ".cni-cache", "results")); len(e) > 0 {
		t.Errorf("libcni cache entries left: %d", len(e))
	}
}

// eventually polls f until it returns nothing or two seconds pass: the
// kernel destroys a removed namespace's interfaces, and so the host ends of
// their veth pairs, in the background.
func eventually(f func() []string) []string {
	deadline := time.Now().Add(2 * time.Second)
	for {
		out := f()
		if len(out) == 0 || time.Now().After(deadline) {
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
}
