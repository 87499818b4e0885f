package cni

import (
	"context"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/utils"
	"github.com/google/go-cmp/cmp"
)

func TestMasqChainName(t *testing.T) {
	for _, tc := range [][2]string{{"default", "0b1c2d3e-aaaa-4bbb-8ccc-123456789abc"}, {"a", "b"}, {"x.y-z_1", strings.Repeat("f", 64)}} {
		if got, want := masqChain(tc[0], tc[1]), utils.FormatChainName(tc[0], tc[1]); got != want {
			t.Errorf("masqChain(%q, %q) = %q, want %q", tc[0], tc[1], got, want)
		}
		if got, want := masqComment(tc[0], tc[1]), utils.FormatComment(tc[0], tc[1]); got != want {
			t.Errorf("masqComment(%q, %q) = %q, want %q", tc[0], tc[1], got, want)
		}
	}
}

func TestTakeOverMasq(t *testing.T) {
	if !haveMasqTools() {
		t.Skip("requires the iptables tools; run: apt-get install iptables")
	}
	for _, tc := range []struct {
		name, conf string
		took       bool
	}{
		{"ptp", `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"ptp","ipMasq":true}]}`, true},
		{"ptp iptables backend", `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"ptp","ipMasq":true,"ipMasqBackend":"iptables"}]}`, true},
		{"ptp nftables backend", `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"ptp","ipMasq":true,"ipMasqBackend":"nftables"}]}`, false},
		{"no masq", `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"ptp","ipMasq":false}]}`, false},
		{"bridge", `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge","ipMasq":true}]}`, true},
		{"bridge nftables backend", `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge","ipMasq":true,"ipMasqBackend":"nftables"}]}`, false},
		{"macvlan", `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"macvlan","ipMasq":true}]}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, took, err := takeOverMasq([]byte(tc.conf))
			if err != nil || took != tc.took {
				t.Fatalf("takeOverMasq = %v, %v; want took %v", took, err, tc.took)
			}
			if took && strings.Contains(string(out), `"ipMasq":true`) || !took && string(out) != tc.conf {
				t.Errorf("takeOverMasq(%s) = %s", tc.conf, out)
			}
		})
	}
}

// natLines returns the nat table lines of tool that mention any of subs,
// with the chain and id of the pod replaced by placeholders.
func natLines(t *testing.T, tool string, repl *strings.Replacer, subs ...string) []string {
	t.Helper()
	out, err := exec.Command(tool, "-t", "nat").Output()
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	var lines []string
	for l := range strings.SplitSeq(string(out), "\n") {
		for _, s := range subs {
			if strings.Contains(l, s) {
				lines = append(lines, repl.Replace(l))
				break
			}
		}
	}
	slices.Sort(lines)
	return lines
}

// TestMasqSameAsPlugin checks that setupMasq makes exactly the rules of the
// plugins' own ipMasq code, and that teardownMasq removes them.
func TestMasqSameAsPlugin(t *testing.T) {
	requireNet(t)
	if !haveMasqTools() {
		t.Skip("requires the iptables tools; run: apt-get install iptables")
	}
	const name = "masqtest"
	ours, theirs := newUUID(t), newUUID(t)
	ips := []netip.Prefix{netip.MustParsePrefix("10.251.20.7/24"), netip.MustParsePrefix("fd00:251:20::7/64")}
	var ipns []*net.IPNet
	for _, p := range ips {
		ipns = append(ipns, &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())})
	}
	if err := setupMasq(t.Context(), name, ours, ips); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { teardownMasq(context.Background(), name, ours, nil) })
	backend := "iptables"
	if err := ip.SetupIPMasqForNetworks(&backend, ipns, name, "eth0", theirs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ip.TeardownIPMasqForNetworks(ipns, name, "eth0", theirs) })
	for _, tool := range []string{"iptables-save", "ip6tables-save"} {
		got := natLines(t, tool, strings.NewReplacer(masqChain(name, ours), "CHAIN", ours, "ID"), ours, masqChain(name, ours))
		want := natLines(t, tool, strings.NewReplacer(masqChain(name, theirs), "CHAIN", theirs, "ID"), theirs, masqChain(name, theirs))
		if len(want) == 0 {
			t.Fatalf("%s: the plugin code made no rules", tool)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: rules differ from the plugin's (-plugin +ours):\n%s", tool, diff)
		}
	}
	// With the addresses, then again without (as after a crash in ADD).
	for _, known := range [][]netip.Prefix{ips, nil} {
		if err := teardownMasq(t.Context(), name, ours, known); err != nil {
			t.Fatal(err)
		}
		for _, tool := range []string{"iptables-save", "ip6tables-save"} {
			if left := natLines(t, tool, strings.NewReplacer(), ours, masqChain(name, ours)); len(left) != 0 {
				t.Errorf("%s after teardown: %q", tool, left)
			}
		}
	}
}

func TestNeedsNetNSForDel(t *testing.T) {
	for _, tc := range []struct {
		conf string
		want bool
	}{
		{`{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"ptp","ipam":{"type":"host-local"}}]}`, false},
		{`{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge","ipMasq":true,"ipam":{"type":"host-local"}},{"type":"portmap"},{"type":"tuning"}]}`, false},
		{`{"cniVersion":"1.0.0","name":"n","type":"bridge","ipam":{"type":"host-local"}}`, false},
		{`{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge","macspoofchk":true}]}`, true},
		{`{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"},{"type":"firewall"}]}`, true},
		{`{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"ptp","ipam":{"type":"dhcp"}}]}`, true},
		{`not json`, true},
	} {
		if got := needsNetNSForDel([]byte(tc.conf)); got != tc.want {
			t.Errorf("needsNetNSForDel(%s) = %v, want %v", tc.conf, got, tc.want)
		}
	}
}
