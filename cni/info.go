package cni

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/utils"

	"github.com/rkt-ng/rkt/internal/atomicfile"
)

// maxInfoSize bounds net-info.json; a pod with dozens of networks stays far
// below it.
const maxInfoSize = 4 << 20

// Info is the record of a pod's networks: what `rkt status` shows and what
// Teardown needs to run DEL after the process that ran ADD is gone. It is
// stored as <podDir>/net-info.json.
type Info struct {
	PodUUID string `json:"podUUID"`
	NetNS   string `json:"netns,omitempty"`
	// PortsDir is SetupConfig.PortsDir, where Teardown releases the host
	// ports of the pod.
	PortsDir string    `json:"portsDir,omitempty"`
	Networks []NetInfo `json:"networks"`
}

// NetInfo describes one network attachment.
type NetInfo struct {
	NetName  string `json:"netName"`
	ConfPath string `json:"confPath,omitempty"`
	// PluginPath is the first plugin of the list, as found at ADD.
	PluginPath string `json:"pluginPath,omitempty"`
	IfName     string `json:"ifName"`
	// HostIfName is the host side of the link, if the plugin made one
	// (the veth of ptp or bridge).
	HostIfName string         `json:"hostIfName,omitempty"`
	IPs        []netip.Prefix `json:"ips,omitempty"`
	// Gateway and Gateway6 are the IPv4 and IPv6 gateways of IPs, if any.
	Gateway  netip.Addr    `json:"gateway,omitzero"`
	Gateway6 netip.Addr    `json:"gateway6,omitzero"`
	DNS      DNS           `json:"dns,omitzero"`
	Args     [][2]string   `json:"args,omitempty"`
	Ports    []PortMapping `json:"ports,omitempty"`
	// Config is the conflist used for ADD, as modified by Setup (IPAM
	// dataDir, portmap). DEL replays it, so a net.d file changed or removed
	// since does not matter.
	Config json.RawMessage `json:"config"`
	// IPMasq is set when the ptp plugin's ipMasq was turned off in Config
	// and the masquerade rules are set up and removed by this package
	// (see masq_linux.go).
	IPMasq bool `json:"ipMasq,omitempty"`
	// Added is false while ADD has not returned: the record is written
	// before ADD so that a crash mid-ADD still gets a DEL from gc.
	Added bool `json:"added"`
}

// DNS is the DNS configuration a plugin returned.
type DNS struct {
	Nameservers []string `json:"nameservers,omitempty"`
	Domain      string   `json:"domain,omitempty"`
	Search      []string `json:"search,omitempty"`
	Options     []string `json:"options,omitempty"`
}

// IsZero reports whether d holds nothing.
func (d DNS) IsZero() bool {
	return len(d.Nameservers) == 0 && d.Domain == "" && len(d.Search) == 0 && len(d.Options) == 0
}

// PortMapping forwards a host port to a pod port (rkt's --port, with the
// protocol and pod port taken from the app's port declaration).
type PortMapping struct {
	// Name is the app port name (informational).
	Name string `json:"name,omitempty"`
	// Protocol is "tcp" or "udp".
	Protocol string `json:"protocol"`
	// HostIP restricts the forward to one host address; "" means all.
	HostIP   string `json:"hostIP,omitempty"`
	HostPort int    `json:"hostPort"`
	PodPort  int    `json:"podPort"`
}

// DNS returns the DNS configuration of the first network that returned one,
// for the caller to write the pod's resolv.conf.
func (i *Info) DNS() DNS {
	for _, n := range i.Networks {
		if !n.DNS.IsZero() {
			return n.DNS
		}
	}
	return DNS{}
}

// Save writes i to path atomically.
func (i *Info) Save(path string) error {
	data, err := json.MarshalIndent(i, "", "  ")
	if err != nil {
		return fmt.Errorf("encode net info: %w", err)
	}
	if err := atomicfile.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write net info: %w", err)
	}
	return nil
}

// LoadInfo reads and validates a file written by Save.
func LoadInfo(path string) (*Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read net info: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxInfoSize+1))
	if err != nil {
		return nil, fmt.Errorf("read net info: %w", err)
	}
	i, err := parseInfo(data)
	if err != nil {
		return nil, fmt.Errorf("net info %s: %w", path, err)
	}
	return i, nil
}

func parseInfo(data []byte) (*Info, error) {
	if len(data) > maxInfoSize {
		return nil, fmt.Errorf("larger than %d bytes", maxInfoSize)
	}
	var i Info
	if err := json.Unmarshal(data, &i); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if e := utils.ValidateContainerID(i.PodUUID); e != nil {
		return nil, fmt.Errorf("invalid pod UUID %q", i.PodUUID)
	}
	if i.PortsDir != "" && !filepath.IsAbs(i.PortsDir) {
		return nil, fmt.Errorf("ports dir %q is not an absolute path", i.PortsDir)
	}
	for _, n := range i.Networks {
		if e := utils.ValidateInterfaceName(n.IfName); e != nil {
			return nil, fmt.Errorf("network %q: invalid interface name %q", n.NetName, n.IfName)
		}
		list, err := libcni.ConfListFromBytes(n.Config)
		if err != nil {
			return nil, fmt.Errorf("network %q: %w", n.NetName, err)
		}
		if err := checkList(list); err != nil {
			return nil, err
		}
		if list.Name != n.NetName {
			return nil, fmt.Errorf("network %q: config is for network %q", n.NetName, list.Name)
		}
	}
	return &i, nil
}

// errList joins errors on one line (they end up as one-line user errors),
// keeping errors.Is/As working on each.
type errList []error

func (e errList) Error() string {
	s := ""
	for i, err := range e {
		if i > 0 {
			s += "; "
		}
		s += err.Error()
	}
	return s
}

func (e errList) Unwrap() []error { return e }

// join returns nil, the only error, or an errList.
func join(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errList(errs)
}
