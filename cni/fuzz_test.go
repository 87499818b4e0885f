package cni

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var cmpInfo = cmp.Options{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmp.Comparer(func(a, b json.RawMessage) bool {
		var ca, cb bytes.Buffer
		return json.Compact(&ca, a) == nil && json.Compact(&cb, b) == nil && bytes.Equal(ca.Bytes(), cb.Bytes())
	}),
}

func FuzzParseNetwork(f *testing.F) {
	f.Add([]byte(lanConf))
	f.Add([]byte(builtins[0].conf))
	f.Add([]byte(`{"name": "x", "cniVersions": ["0.4.0", "1.0.0"], "plugins": [{"type": "ptp"}, {"type": "portmap", "capabilities": {"portMappings": true}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		n, err := parseNetwork(data)
		if err != nil {
			return
		}
		// A network that parses must parse again to itself, and must
		// survive the changes Setup makes.
		again, err := parseNetwork(n.Config)
		if err != nil {
			t.Fatalf("normalised config %s does not parse: %v", n.Config, err)
		}
		if again.Name != n.Name {
			t.Fatalf("name changed from %q to %q", n.Name, again.Name)
		}
		if _, err := effectiveConfig(n.Config, "/var/lib/rkt/networks", false); err != nil {
			t.Fatalf("effectiveConfig(%s): %v", n.Config, err)
		}
	})
}

func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"", "default", "host", "none", "all", "a,b:IP=10.1.2.3;K=V", "x:IP=fd00::5", "a,,b", "a:"} {
		f.Add(s)
	}
	c, err := Load("", "")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		if len(spec) > 4096 {
			return
		}
		reqs, err := c.Select(spec)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, r := range reqs {
			if seen[r.Name] {
				t.Fatalf("Select(%q) returned %q twice", spec, r.Name)
			}
			seen[r.Name] = true
		}
		if reqs != nil && len(reqs) > 0 && !seen[NetDefault] && !seen[NetDefaultRestricted] {
			t.Fatalf("Select(%q) = %v, lacks both default networks", spec, reqs)
		}
	})
}

func FuzzParseInfo(f *testing.F) {
	conf, err := effectiveConfig([]byte(builtins[0].conf), "/d", true)
	if err != nil {
		f.Fatal(err)
	}
	seed, err := json.Marshal(&Info{PodUUID: "6c8fd7a7-4b6b-4d6c-9d2a-1b0f1b1e2a3c", Networks: []NetInfo{{
		NetName: "default", IfName: "eth0", Config: conf,
		IPs: []netip.Prefix{netip.MustParsePrefix("172.16.28.2/24")}, Gateway: netip.MustParseAddr("172.16.28.1"),
	}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"podUUID": "x", "networks": [{"netName": "a", "ifName": "../x", "config": {}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		i, err := parseInfo(data)
		if err != nil {
			return
		}
		out, err := json.Marshal(i)
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseInfo(out)
		if err != nil {
			t.Fatalf("re-encoded info %s does not parse: %v", out, err)
		}
		if diff := cmp.Diff(i, again, cmpInfo, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip mismatch (-first +second):\n%s", diff)
		}
	})
}
