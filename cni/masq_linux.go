package cni

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
)

// IP masquerade of ptp and bridge networks ("ipMasq": true) is done here
// rather than by the plugin, with the same rules, chain and comments
// (containernetworking/plugins pkg/ip/ipmasq_iptables_linux.go). The plugin
// runs iptables (iptables-nft on current distributions) about ten times for
// ADD and, since plugins v1.5, both iptables and nft again for DEL: most of
// the cost of a pod on the default network. Here ADD is one
// iptables-restore per address family and DEL one iptables-save plus at
// most one iptables-restore. The DEL works from the record alone, so it also
// removes the rules when the pod's namespace is already gone, where ptp's
// and bridge's DEL return early and leave them.
//
// Only the iptables backend is taken over (no "ipMasqBackend", or
// "iptables"), and only where the iptables tools exist; otherwise the plugin
// does the work as usual.

// masqChainLength is maxChainLength of plugins/pkg/utils.
const masqChainLength = 28

// masqChain is the chain of network name and pod id: utils.FormatChainName.
func masqChain(name, id string) string {
	sum := sha512.Sum512([]byte(name + id))
	return ("CNI-" + hex.EncodeToString(sum[:]))[:masqChainLength]
}

// masqComment is utils.FormatComment.
func masqComment(name, id string) string {
	return fmt.Sprintf("name: %q id: %q", name, id)
}

// masqTools are the programs the takeover needs; without any of them the
// plugin keeps doing the masquerade.
var masqTools = []string{"iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore"}

func haveMasqTools() bool {
	for _, t := range masqTools {
		if _, err := exec.LookPath(t); err != nil {
			return false
		}
	}
	return true
}

// takeOverMasq turns off "ipMasq" of the ptp and bridge plugins of conf that would use
// the iptables backend and reports whether it did, in which case the caller
// sets up the masquerade with setupMasq after ADD.
func takeOverMasq(conf json.RawMessage) (json.RawMessage, bool, error) {
	var raw map[string]any
	if err := json.Unmarshal(conf, &raw); err != nil {
		return nil, false, fmt.Errorf("parse config: %w", err)
	}
	plugins, _ := raw["plugins"].([]any)
	took := false
	for _, p := range plugins {
		pm, ok := p.(map[string]any)
		if !ok || (pm["type"] != "ptp" && pm["type"] != "bridge") || pm["ipMasq"] != true {
			continue
		}
		if b, set := pm["ipMasqBackend"]; set && b != "iptables" {
			continue
		}
		if !took && !haveMasqTools() {
			return conf, false, nil
		}
		pm["ipMasq"] = false
		took = true
	}
	if !took {
		return conf, false, nil
	}
	out, err := json.Marshal(raw)
	if err != nil {
		return nil, false, fmt.Errorf("encode config: %w", err)
	}
	return out, true, nil
}

// setupMasq masquerades traffic from the pod's addresses ips that leaves
// their subnets, as ptp's ipMasq does, for network name and pod id.
func setupMasq(ctx context.Context, name, id string, ips []netip.Prefix) error {
	chain, comment := masqChain(name, id), masqComment(name, id)
	for _, fam := range []struct {
		restore   string
		is6       bool
		multicast string
	}{{"iptables-restore", false, "224.0.0.0/4"}, {"ip6tables-restore", true, "ff00::/8"}} {
		var rules bytes.Buffer
		for _, ip := range ips {
			if ip.Addr().Is6() != fam.is6 {
				continue
			}
			// The same order as SetupIPMasq: own subnet untouched,
			// multicast untouched, then the jump from POSTROUTING.
			fmt.Fprintf(&rules, "-A %s -d %s -j ACCEPT -m comment --comment %s\n", chain, ip, quoteRestore(comment))
			fmt.Fprintf(&rules, "-A %s ! -d %s -j MASQUERADE -m comment --comment %s\n", chain, fam.multicast, quoteRestore(comment))
			fmt.Fprintf(&rules, "-A POSTROUTING -s %s -j %s -m comment --comment %s\n", ip.Addr(), chain, quoteRestore(comment))
		}
		if rules.Len() == 0 {
			continue
		}
		// A chain line creates the chain (or empties one left over).
		in := "*nat\n:" + chain + " - [0:0]\n" + rules.String() + "COMMIT\n"
		if err := runRestore(ctx, fam.restore, in); err != nil {
			return fmt.Errorf("set up IP masquerade: %w", err)
		}
	}
	return nil
}

// teardownMasq removes what setupMasq made for network name and pod id;
// what is already gone is not an error. ips are the pod's addresses if ADD
// returned them, so that only their families are looked at; without them
// (a crash during ADD) both are.
func teardownMasq(ctx context.Context, name, id string, ips []netip.Prefix) error {
	chain := masqChain(name, id)
	for _, fam := range [][2]string{{"iptables-save", "iptables-restore"}, {"ip6tables-save", "ip6tables-restore"}} {
		if len(ips) > 0 && !slices.ContainsFunc(ips, func(p netip.Prefix) bool { return p.Addr().Is6() == (fam[0] == "ip6tables-save") }) {
			continue
		}
		cmd := exec.CommandContext(ctx, fam[0], "-t", "nat")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("remove IP masquerade: %s: %w: %s", fam[0], err, strings.TrimSpace(stderr.String()))
		}
		var del strings.Builder
		exists := false
		for line := range strings.SplitSeq(string(out), "\n") {
			if strings.HasPrefix(line, ":"+chain+" ") {
				exists = true
			}
			f := strings.Fields(line)
			if len(f) > 2 && f[0] == "-A" && f[1] != chain && jumpsTo(f, chain) {
				// iptables-save quotes as iptables-restore reads.
				del.WriteString("-D" + strings.TrimPrefix(line, "-A") + "\n")
			}
		}
		if !exists && del.Len() == 0 {
			continue
		}
		in := "*nat\n" + del.String()
		if exists {
			in += "-F " + chain + "\n-X " + chain + "\n"
		}
		if err := runRestore(ctx, fam[1], in+"COMMIT\n"); err != nil {
			return fmt.Errorf("remove IP masquerade: %w", err)
		}
	}
	return nil
}

func jumpsTo(fields []string, chain string) bool {
	for i := 0; i+1 < len(fields); i++ {
		if (fields[i] == "-j" || fields[i] == "-g") && fields[i+1] == chain {
			return true
		}
	}
	return false
}

// runRestore feeds rules to iptables-restore, changing only the chains
// named in them and waiting for the xtables lock.
func runRestore(ctx context.Context, tool, rules string) error {
	cmd := exec.CommandContext(ctx, tool, "--noflush", "--wait")
	cmd.Stdin = strings.NewReader(rules)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", tool, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// quoteRestore quotes s as iptables-save does, for iptables-restore.
func quoteRestore(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}

// delWithoutNetNS are the plugins known to release everything on DEL
// without the pod's network namespace (the namespace's own links die with
// it; the rest is found from the container ID and the cached result). A
// network with any other plugin, or with bridge's MAC spoof check, is
// deleted while the namespace still exists.
var delWithoutNetNS = map[string]bool{
	"ptp": true, "bridge": true, "host-local": true, "static": true, "tuning": true, "portmap": true, "loopback": true,
}

// needsNetNSForDel reports whether a network's DEL needs the pod's network
// namespace to release what its ADD made on the host.
func needsNetNSForDel(conf json.RawMessage) bool {
	var raw struct {
		Type    string           `json:"type"`
		Plugins []map[string]any `json:"plugins"`
		IPAM    map[string]any   `json:"ipam"`
	}
	if err := json.Unmarshal(conf, &raw); err != nil {
		return true
	}
	plugins := raw.Plugins
	if len(plugins) == 0 {
		plugins = []map[string]any{{"type": raw.Type, "ipam": raw.IPAM}}
	}
	for _, p := range plugins {
		t, _ := p["type"].(string)
		if !delWithoutNetNS[t] || p["macspoofchk"] == true {
			return true
		}
		if ipam, ok := p["ipam"].(map[string]any); ok {
			if it, _ := ipam["type"].(string); it != "" && !delWithoutNetNS[it] {
				return true
			}
		}
	}
	return false
}
