package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/utils"
	"github.com/containernetworking/cni/pkg/version"
)

// Names with a meaning of their own in a --net value. They can not be used as
// network names.
const (
	// NetDefault is the built-in network with outside access.
	NetDefault = "default"
	// NetDefaultRestricted is the built-in host-only network, added whenever
	// NetDefault is not selected so that the metadata service stays reachable.
	NetDefaultRestricted = "default-restricted"
	// NetHost shares the caller's network namespace.
	NetHost = "host"
	// NetNone gives the pod a network namespace with loopback only.
	NetNone = "none"
	// NetAll selects every configured network and NetDefault.
	NetAll = "all"
)

// ErrUnknownNetwork is returned by Select for a name that no configuration
// defines.
var ErrUnknownNetwork = errors.New("unknown network")

// defaultCNIVersion is used for configurations without "cniVersion". The CNI
// spec reads a missing version as 0.1.0, which cannot chain plugins (portmap);
// rkt's own configurations never set it, and every reference plugin accepts
// 0.3.1, so that is what they get.
const defaultCNIVersion = "0.3.1"

// maxConfSize bounds a configuration file; real ones are a few hundred bytes.
const maxConfSize = 1 << 20

// The built-in networks, as in rkt's stage1/net/rootfs/etc/rkt/net.d. Their
// file names only decide the order (networks are applied in lexical order of
// their file names, as in rkt), so they sort after the usual "10-foo.conf".
var builtins = []struct{ file, conf string }{
	{"99-default.conflist", `{
  "cniVersion": "1.0.0",
  "name": "default",
  "plugins": [{
    "type": "ptp",
    "ipMasq": true,
    "ipam": {
      "type": "host-local",
      "ranges": [[{"subnet": "172.16.28.0/24"}]],
      "routes": [{"dst": "0.0.0.0/0"}]
    }
  }]
}`},
	{"99-default-restricted.conflist", `{
  "cniVersion": "1.0.0",
  "name": "default-restricted",
  "plugins": [{
    "type": "ptp",
    "ipMasq": false,
    "ipam": {
      "type": "host-local",
      "ranges": [[{"subnet": "172.31.0.0/16"}]]
    }
  }]
}`},
}

// Network is one loaded network configuration.
type Network struct {
	// Name is the network name ("name" in the configuration).
	Name string
	// ConfPath is the file the configuration came from, or "" for a
	// built-in network.
	ConfPath string
	// Config is the configuration as a CNI conflist (a single-plugin .conf
	// is wrapped into a list), with "cniVersion" filled in.
	Config []byte

	order string // file base name: the application order
}

// Catalog is the set of networks a pod can join: the built-in ones and those
// in net.d.
type Catalog struct {
	nets map[string]*Network
}

// Load reads <localConfig>/net.d and <systemConfig>/net.d (*.conf and
// *.conflist; an empty argument or a missing directory is skipped). A network
// in localConfig replaces one of the same name in systemConfig, and a
// configured network named "default" or "default-restricted" replaces the
// built-in one. A file that cannot be parsed is an error naming it.
func Load(localConfig, systemConfig string) (*Catalog, error) {
	c := &Catalog{nets: map[string]*Network{}}
	for _, b := range builtins {
		n, err := parseNetwork([]byte(b.conf))
		if err != nil {
			return nil, fmt.Errorf("built-in network %s: %w", b.file, err)
		}
		n.order = b.file
		c.nets[n.Name] = n
	}
	// System first, so that local configuration overrides it.
	for _, root := range []string{systemConfig, localConfig} {
		if root == "" {
			continue
		}
		nets, err := loadDir(filepath.Join(root, "net.d"))
		if err != nil {
			return nil, err
		}
		for _, n := range nets {
			c.nets[n.Name] = n
		}
	}
	return c, nil
}

// loadDir loads every configuration in dir; two files defining the same
// network are an error.
func loadDir(dir string) ([]*Network, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read network configs: %w", err)
	}
	var nets []*Network
	seen := map[string]string{}
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".conf" && ext != ".conflist") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		data, err := readConf(p)
		if err != nil {
			return nil, err
		}
		n, err := parseNetwork(data)
		if err != nil {
			return nil, fmt.Errorf("network config %s: %w", p, err)
		}
		if prev, ok := seen[n.Name]; ok {
			return nil, fmt.Errorf("network config %s: network %q already defined in %s", p, n.Name, prev)
		}
		seen[n.Name] = p
		n.ConfPath = p
		n.order = e.Name()
		nets = append(nets, n)
	}
	return nets, nil
}

func readConf(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfSize+1))
	if err != nil {
		return nil, fmt.Errorf("read network config: %w", err)
	}
	if len(data) > maxConfSize {
		return nil, fmt.Errorf("network config %s: larger than %d bytes", p, maxConfSize)
	}
	return data, nil
}

// parseNetwork parses a .conf or .conflist document and returns it as a
// normalised conflist.
func parseNetwork(data []byte) (*Network, error) {
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if raw == nil {
		return nil, errors.New("parse: not a JSON object")
	}
	if _, ok := raw["plugins"]; !ok {
		// A single-plugin .conf: wrap it. The plugin keeps its own copy of
		// name and cniVersion; libcni overwrites them with the list's.
		raw = map[string]any{
			"name":       raw["name"],
			"cniVersion": raw["cniVersion"],
			"plugins":    []any{raw},
		}
		if raw["cniVersion"] == nil {
			delete(raw, "cniVersion")
		}
	}
	if _, ok := raw["cniVersion"]; !ok {
		if _, ok := raw["cniVersions"]; !ok {
			raw["cniVersion"] = defaultCNIVersion
		}
	}
	norm, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	list, err := libcni.ConfListFromBytes(norm)
	if err != nil {
		return nil, err
	}
	if err := checkList(list); err != nil {
		return nil, err
	}
	return &Network{Name: list.Name, Config: norm}, nil
}

// checkList validates what libcni leaves to the runtime.
func checkList(list *libcni.NetworkConfigList) error {
	if e := utils.ValidateNetworkName(list.Name); e != nil {
		return fmt.Errorf("invalid network name %q: %s", list.Name, e.Msg)
	}
	switch list.Name {
	case NetHost, NetNone, NetAll:
		return fmt.Errorf("network name %q is reserved", list.Name)
	}
	if _, _, _, err := version.ParseVersion(list.CNIVersion); err != nil {
		return fmt.Errorf("network %q: cniVersion %q: %w", list.Name, list.CNIVersion, err)
	}
	if len(list.Plugins) == 0 {
		return fmt.Errorf("network %q: no plugins", list.Name)
	}
	for i, p := range list.Plugins {
		t := p.Network.Type
		// The type is a file name looked up in the plugin directories.
		if strings.ContainsRune(t, '/') || t == "." || t == ".." {
			return fmt.Errorf("network %q: plugin %d: invalid type %q", list.Name, i, t)
		}
	}
	return nil
}

// Names returns the names of all networks in the catalog, sorted.
func (c *Catalog) Names() []string {
	names := make([]string, 0, len(c.nets))
	for n := range c.nets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Network returns the network called name.
func (c *Catalog) Network(name string) (*Network, bool) {
	n, ok := c.nets[name]
	return n, ok
}

// Request is one network a pod joins: the configuration and the CNI_ARGS
// given for it on the command line.
type Request struct {
	Name     string
	ConfPath string
	Config   []byte
	Args     [][2]string
}

// IsHost reports whether spec (a --net value) asks for the host network, in
// which case no network namespace is created.
func IsHost(spec string) bool {
	return strings.TrimSpace(spec) == NetHost
}

// netSpec is a parsed --net value.
type netSpec struct {
	host, none, all bool
	names           []string
	args            map[string][][2]string
}

// parseSpec parses rkt's --net syntax: a comma-separated list of names, each
// optionally followed by ":" and ";"-separated CNI_ARGS, as in
// "default,lan:IP=10.1.2.3;FOO=bar". An empty value means "default".
func parseSpec(spec string) (*netSpec, error) {
	s := &netSpec{args: map[string][][2]string{}}
	if strings.TrimSpace(spec) == "" {
		spec = NetDefault
	}
	for item := range strings.SplitSeq(spec, ",") {
		name, argStr, hasArgs := strings.Cut(strings.TrimSpace(item), ":")
		if name == "" {
			return nil, fmt.Errorf("net %q: empty network name", spec)
		}
		if slices.Contains(s.names, name) || (name == NetAll && s.all) {
			return nil, fmt.Errorf("net %q: network %q given twice", spec, name)
		}
		switch name {
		case NetHost, NetNone, NetAll:
			if hasArgs {
				return nil, fmt.Errorf("net %q: %q takes no arguments", spec, name)
			}
			s.host = s.host || name == NetHost
			s.none = s.none || name == NetNone
			s.all = s.all || name == NetAll
			continue
		}
		if e := utils.ValidateNetworkName(name); e != nil {
			return nil, fmt.Errorf("net %q: invalid network name %q", spec, name)
		}
		s.names = append(s.names, name)
		if !hasArgs {
			continue
		}
		for kv := range strings.SplitSeq(argStr, ";") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("net %q: network %q: argument %q is not KEY=VALUE", spec, name, kv)
			}
			s.args[name] = append(s.args[name], [2]string{k, v})
		}
	}
	if (s.host || s.none) && (len(s.names) > 0 || s.all || (s.host && s.none)) {
		return nil, fmt.Errorf("net %q: %q and %q cannot be combined with other networks", spec, NetHost, NetNone)
	}
	return s, nil
}

// Select resolves spec, rkt's --net value, to the networks to set up, in the
// order they are applied (lexical order of configuration file names, as in
// rkt; the built-in networks are named 99-default*.conflist). "host" gives no
// networks (see IsHost), "none" an empty non-nil list (loopback only), "all"
// every configured network plus "default". When "default" is not selected,
// "default-restricted" is added so that the pod can reach the metadata
// service. A name that no configuration defines is an error wrapping
// ErrUnknownNetwork.
func (c *Catalog) Select(spec string) ([]Request, error) {
	s, err := parseSpec(spec)
	if err != nil {
		return nil, err
	}
	if s.host {
		return nil, nil
	}
	if s.none {
		return []Request{}, nil
	}
	chosen := map[string]bool{}
	for _, name := range s.names {
		if _, ok := c.nets[name]; !ok {
			return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownNetwork, name, strings.Join(c.Names(), ", "))
		}
		chosen[name] = true
	}
	if s.all {
		for name := range c.nets {
			if name != NetDefaultRestricted {
				chosen[name] = true
			}
		}
	}
	if !chosen[NetDefault] {
		chosen[NetDefaultRestricted] = true
	}
	nets := make([]*Network, 0, len(chosen))
	for name := range chosen {
		nets = append(nets, c.nets[name])
	}
	slices.SortFunc(nets, func(a, b *Network) int {
		if r := strings.Compare(a.order, b.order); r != 0 {
			return r
		}
		return strings.Compare(a.Name, b.Name)
	})
	reqs := make([]Request, 0, len(nets))
	for _, n := range nets {
		reqs = append(reqs, Request{
			Name:     n.Name,
			ConfPath: n.ConfPath,
			Config:   slices.Clone(n.Config),
			Args:     slices.Clone(s.args[n.Name]),
		})
	}
	return reqs, nil
}
