package cni

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func writeConf(t *testing.T, root, file, conf string) string {
	t.Helper()
	dir := filepath.Join(root, "net.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, file)
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const lanConf = `{"cniVersion": "0.4.0", "name": "lan", "type": "bridge", "ipam": {"type": "host-local", "subnet": "10.9.0.0/24"}}`

// summary is what the tests compare of a Request.
type summary struct {
	Name, ConfPath string
	Args           [][2]string
}

func summarize(reqs []Request) []summary {
	if reqs == nil {
		return nil
	}
	out := []summary{}
	for _, r := range reqs {
		out = append(out, summary{r.Name, r.ConfPath, r.Args})
	}
	return out
}

func TestSelect(t *testing.T) {
	local, system := t.TempDir(), t.TempDir()
	lan := writeConf(t, local, "10-lan.conf", lanConf)
	writeConf(t, system, "10-lan.conf", `{"name": "lan", "type": "macvlan"}`)
	wan := writeConf(t, system, "20-wan.conflist", `{"cniVersion": "1.0.0", "name": "wan",
		"plugins": [{"type": "ptp", "ipMasq": true, "ipam": {"type": "host-local", "subnet": "10.8.0.0/24"}},
		            {"type": "tuning"}]}`)
	writeConf(t, local, "README", "not a config")
	c, err := Load(local, system)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"default", "default-restricted", "lan", "wan"}, c.Names()); diff != "" {
		t.Errorf("Names() mismatch (-want +got):\n%s", diff)
	}
	def := summary{Name: "default"}
	restricted := summary{Name: "default-restricted"}
	tests := []struct {
		name string
		spec string
		want []summary
	}{
		{"empty means default", "", []summary{def}},
		{"default", "default", []summary{def}},
		{"host", "host", nil},
		{"none", "none", []summary{}},
		{"named adds restricted", "lan", []summary{{Name: "lan", ConfPath: lan}, restricted}},
		{"file order not spec order", "wan,lan", []summary{{Name: "lan", ConfPath: lan}, {Name: "wan", ConfPath: wan}, restricted}},
		{"explicit restricted", "default-restricted", []summary{restricted}},
		{"with default", "default,wan", []summary{{Name: "wan", ConfPath: wan}, def}},
		{"all", "all", []summary{{Name: "lan", ConfPath: lan}, {Name: "wan", ConfPath: wan}, def}},
		{"args", " lan:IP=10.9.0.7;K=V=W ", []summary{
			{Name: "lan", ConfPath: lan, Args: [][2]string{{"IP", "10.9.0.7"}, {"K", "V=W"}}}, restricted}},
		{"all with args", "all,wan:IP=10.8.0.9", []summary{
			{Name: "lan", ConfPath: lan}, {Name: "wan", ConfPath: wan, Args: [][2]string{{"IP", "10.8.0.9"}}}, def}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := c.Select(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, summarize(got)); diff != "" {
				t.Errorf("Select(%q) mismatch (-want +got):\n%s", tc.spec, diff)
			}
		})
	}
}

func TestSelectConfig(t *testing.T) {
	local := t.TempDir()
	writeConf(t, local, "10-lan.conf", lanConf)
	writeConf(t, local, "50-old.conf", `{"name": "old", "type": "ptp"}`)
	c, err := Load(local, "")
	if err != nil {
		t.Fatal(err)
	}
	reqs, err := c.Select("lan,old")
	if err != nil {
		t.Fatal(err)
	}
	type plugin struct {
		Type string `json:"type"`
	}
	type list struct {
		Name       string   `json:"name"`
		CNIVersion string   `json:"cniVersion"`
		Plugins    []plugin `json:"plugins"`
	}
	var got []list
	for _, r := range reqs {
		var l list
		if err := json.Unmarshal(r.Config, &l); err != nil {
			t.Fatal(err)
		}
		got = append(got, l)
	}
	want := []list{
		{Name: "lan", CNIVersion: "0.4.0", Plugins: []plugin{{"bridge"}}},
		{Name: "old", CNIVersion: defaultCNIVersion, Plugins: []plugin{{"ptp"}}},
		{Name: "default-restricted", CNIVersion: "1.0.0", Plugins: []plugin{{"ptp"}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("configs mismatch (-want +got):\n%s", diff)
	}
}

func TestDefaultOverride(t *testing.T) {
	local := t.TempDir()
	p := writeConf(t, local, "10-mine.conf", `{"name": "default", "type": "bridge"}`)
	c, err := Load(local, "")
	if err != nil {
		t.Fatal(err)
	}
	reqs, err := c.Select("default")
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 1 || reqs[0].ConfPath != p || !strings.Contains(string(reqs[0].Config), `"bridge"`) {
		t.Errorf("Select(default) = %+v, want the user's %s", reqs, p)
	}
}

func TestIsHost(t *testing.T) {
	for spec, want := range map[string]bool{"host": true, " host ": true, "": false, "default": false, "none": false} {
		if got := IsHost(spec); got != want {
			t.Errorf("IsHost(%q) = %v, want %v", spec, got, want)
		}
	}
}

func TestSelectErrors(t *testing.T) {
	c, err := Load("", "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, spec, want string
		unknown          bool
	}{
		{"unknown", "default,nosuchnet", `"nosuchnet"`, true},
		{"twice", "default,default", `"default" given twice`, false},
		{"host with others", "host,default", "cannot be combined", false},
		{"none and host", "none,host", "cannot be combined", false},
		{"empty item", "default,", "empty network name", false},
		{"bad arg", "default:IP", `"IP" is not KEY=VALUE`, false},
		{"args on all", "all:K=V", "takes no arguments", false},
		{"bad name", "a/b", "invalid network name", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := c.Select(tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Select(%q) error = %v, want it to contain %q", tc.spec, err, tc.want)
			}
			if got := errors.Is(err, ErrUnknownNetwork); got != tc.unknown {
				t.Errorf("errors.Is(%v, ErrUnknownNetwork) = %v, want %v", err, got, tc.unknown)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"not json", map[string]string{"10-bad.conf": `{"name": "x", `}, "10-bad.conf"},
		{"no type", map[string]string{"10-bad.conf": `{"name": "x"}`}, "missing 'type'"},
		{"no name", map[string]string{"10-bad.conflist": `{"plugins": [{"type": "ptp"}]}`}, "10-bad.conflist"},
		{"reserved", map[string]string{"10-bad.conf": `{"name": "host", "type": "ptp"}`}, "reserved"},
		{"bad name", map[string]string{"10-bad.conf": `{"name": "a b", "type": "ptp"}`}, "invalid network name"},
		{"path type", map[string]string{"10-bad.conf": `{"name": "x", "type": "../../bin/sh"}`}, "invalid type"},
		{"bad version", map[string]string{"10-bad.conf": `{"name": "x", "cniVersion": "one", "type": "ptp"}`}, "cniVersion"},
		{"array", map[string]string{"10-bad.conf": `[1]`}, "10-bad.conf"},
		{"null", map[string]string{"10-bad.conf": `null`}, "not a JSON object"},
		{"empty plugins", map[string]string{"10-bad.conflist": `{"name": "x", "plugins": []}`}, "no plugins"},
		{"duplicate", map[string]string{"10-a.conf": `{"name": "x", "type": "ptp"}`, "20-b.conf": `{"name": "x", "type": "ptp"}`}, "already defined in"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			local := t.TempDir()
			for f, conf := range tc.files {
				writeConf(t, local, f, conf)
			}
			_, err := Load(local, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), filepath.Join(local, "net.d")) {
				t.Fatalf("Load() error = %v, want it to contain %q and the file name", err, tc.want)
			}
		})
	}
}

func TestInfoRoundTrip(t *testing.T) {
	reqs, err := mustCatalog(t).Select("default")
	if err != nil {
		t.Fatal(err)
	}
	conf, err := effectiveConfig(reqs[0].Config, "/var/lib/rkt/networks", true)
	if err != nil {
		t.Fatal(err)
	}
	want := &Info{
		PodUUID: "6c8fd7a7-4b6b-4d6c-9d2a-1b0f1b1e2a3c",
		NetNS:   "/run/rkt/netns/6c8fd7a7-4b6b-4d6c-9d2a-1b0f1b1e2a3c",
		Networks: []NetInfo{{
			NetName: "default", IfName: "eth0", HostIfName: "veth1234", Added: true,
			Ports:  []PortMapping{{Name: "http", Protocol: "tcp", HostPort: 8080, PodPort: 80}},
			Config: conf,
			DNS:    DNS{Nameservers: []string{"10.0.0.53"}},
		}},
	}
	p := filepath.Join(t.TempDir(), "net-info.json")
	if err := want.Save(p); err != nil {
		t.Fatal(err)
	}
	got, err := LoadInfo(p)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmpInfo); diff != "" {
		t.Errorf("LoadInfo mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want.Networks[0].DNS, got.DNS()); diff != "" {
		t.Errorf("DNS() mismatch (-want +got):\n%s", diff)
	}
	var list struct {
		Plugins []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(got.Networks[0].Config, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Plugins) != 2 || list.Plugins[1]["type"] != "portmap" ||
		list.Plugins[0]["ipam"].(map[string]any)["dataDir"] != "/var/lib/rkt/networks" {
		t.Errorf("effective config = %s, want dataDir set and portmap appended", got.Networks[0].Config)
	}
}

func mustCatalog(t *testing.T) *Catalog {
	t.Helper()
	c, err := Load("", "")
	if err != nil {
		t.Fatal(err)
	}
	return c
}
