package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/utils"
	"github.com/containernetworking/cni/pkg/version"
)

// cleanupTimeout bounds the DELs of a rollback, which run even when the
// context of Setup is cancelled.
const cleanupTimeout = time.Minute

// SetupConfig says what Setup attaches a pod to.
type SetupConfig struct {
	// PodUUID is CNI_CONTAINERID.
	PodUUID string
	// NetNSPath is the namespace made by NewNetNS.
	NetNSPath string
	// PluginDirs is CNI_PATH: where plugin binaries are looked up, in order.
	PluginDirs []string
	// Networks are attached in order as eth0, eth1, ...
	Networks []Request
	// Ports are forwarded with the portmap plugin on the first network with
	// ipMasq, or on the last network if none has it.
	Ports []PortMapping
	// DataDir holds host-local IPAM leases (<DataDir>/<network>/<ip>, set as
	// "dataDir" of every host-local IPAM that does not set its own) and
	// libcni's result cache (<DataDir>/.cni-cache). Network names cannot
	// start with a dot, so the two never clash.
	DataDir string
	// InfoPath, if set, is where the teardown record (net-info.json) is
	// written before each ADD and when Setup returns, so that gc after a
	// crash at any point can still run DEL.
	InfoPath string
	// SharedIPAMDir, if set, holds the host-local IPAM leases of the
	// built-in networks (those without a ConfPath) instead of DataDir: it
	// is host-wide (for example /run/rkt/networks), so that pods of two
	// data dirs never get the same address from the same built-in subnet.
	// Networks from net.d files keep theirs in DataDir, like the libcni
	// cache. The directory is recorded in each network's Config, so DEL
	// releases the lease where ADD took it.
	SharedIPAMDir string
	// PortsDir is the host-wide registry of forwarded host ports (for
	// example /run/rkt/ports), so that two pods cannot forward the same
	// port; "" checks only for host programs listening on them. It is
	// recorded in the teardown record.
	PortsDir string
	// PluginStderr receives the plugins' diagnostics; nil discards them.
	// Plugin errors are returned either way.
	PluginStderr io.Writer
	// Log receives debug records; nil discards them.
	Log *slog.Logger
}

// Setup runs CNI ADD for each network of s in order. If one fails, DEL runs
// for that network and every network added before it, in reverse order, the
// namespace at s.NetNSPath is removed, and the error of the ADD is returned.
func Setup(ctx context.Context, s SetupConfig) (*Info, error) {
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := checkSetup(&s); err != nil {
		return nil, err
	}
	for _, d := range []string{s.DataDir, s.SharedIPAMDir} {
		if d == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create network data dir: %w", err)
		}
	}
	r := newRunner(s.PluginDirs, s.DataDir, s.PluginStderr)
	pm := -1
	if len(s.Ports) > 0 {
		pm = portmapNetwork(s.Networks)
	}
	info := &Info{PodUUID: s.PodUUID, NetNS: s.NetNSPath, PortsDir: s.PortsDir, Networks: make([]NetInfo, 0, len(s.Networks))}
	if err := reservePorts(s.PortsDir, s.PodUUID, s.NetNSPath, s.Ports); err != nil {
		return nil, rollback(ctx, log, r, info, s, err)
	}
	for i, req := range s.Networks {
		ipamDir := s.DataDir
		if req.ConfPath == "" && s.SharedIPAMDir != "" {
			ipamDir = s.SharedIPAMDir
		}
		conf, err := effectiveConfig(req.Config, ipamDir, i == pm)
		var masq bool
		if err == nil {
			conf, masq, err = takeOverMasq(conf)
		}
		if err != nil {
			err = fmt.Errorf("network %q: %w", req.Name, err)
			return nil, rollback(ctx, log, r, info, s, err)
		}
		ni := NetInfo{
			NetName:  req.Name,
			ConfPath: req.ConfPath,
			IfName:   fmt.Sprintf("eth%d", i),
			Args:     req.Args,
			Config:   conf,
			IPMasq:   masq,
		}
		if i == pm {
			ni.Ports = s.Ports
		}
		info.Networks = append(info.Networks, ni)
		if s.InfoPath != "" {
			if err := info.Save(s.InfoPath); err != nil {
				return nil, rollback(ctx, log, r, info, s, err)
			}
		}
		if err := r.add(ctx, s.PodUUID, s.NetNSPath, &info.Networks[i]); err != nil {
			if taken := ipTaken(req.Name, conf, req.Args, err); taken != nil {
				err = taken
			} else {
				err = fmt.Errorf("add network %q: %w", req.Name, err)
			}
			return nil, rollback(ctx, log, r, info, s, err)
		}
		if masq {
			if err := setupMasq(ctx, req.Name, s.PodUUID, info.Networks[i].IPs); err != nil {
				err = fmt.Errorf("add network %q: %w", req.Name, err)
				return nil, rollback(ctx, log, r, info, s, err)
			}
		}
		log.Debug("network added", "pod", s.PodUUID, "net", ni.NetName, "ifname", ni.IfName,
			"ips", info.Networks[i].IPs, "host_ifname", info.Networks[i].HostIfName)
	}
	if s.InfoPath != "" {
		if err := info.Save(s.InfoPath); err != nil {
			return nil, rollback(ctx, log, r, info, s, err)
		}
	}
	return info, nil
}

func checkSetup(s *SetupConfig) error {
	if e := utils.ValidateContainerID(s.PodUUID); e != nil {
		return fmt.Errorf("invalid pod UUID %q", s.PodUUID)
	}
	if s.NetNSPath == "" || s.DataDir == "" || len(s.PluginDirs) == 0 {
		return errors.New("network setup needs a netns path, a data dir and plugin dirs")
	}
	if len(s.Ports) > 0 && len(s.Networks) == 0 {
		return errors.New("port forwarding needs a network other than host or none")
	}
	type key struct {
		proto, ip string
		port      int
	}
	seen := map[key]bool{}
	for _, p := range s.Ports {
		if p.Protocol != "tcp" && p.Protocol != "udp" {
			return fmt.Errorf("port %q: protocol %q is not tcp or udp", p.Name, p.Protocol)
		}
		if p.HostPort < 1 || p.HostPort > 65535 || p.PodPort < 1 || p.PodPort > 65535 {
			return fmt.Errorf("port %q: port numbers %d:%d out of range", p.Name, p.HostPort, p.PodPort)
		}
		if p.HostIP != "" {
			if _, err := netip.ParseAddr(p.HostIP); err != nil {
				return fmt.Errorf("port %q: host IP: %w", p.Name, err)
			}
		}
		k := key{p.Protocol, p.HostIP, p.HostPort}
		if seen[k] {
			return fmt.Errorf("port %q: host port %s/%d forwarded twice", p.Name, p.Protocol, p.HostPort)
		}
		seen[k] = true
	}
	return nil
}

// rollback undoes a failed Setup and returns cause. Failures of the cleanup
// itself are logged, since cause is what the caller must see; if a DEL
// failed the teardown record at s.InfoPath is kept for gc to retry.
func rollback(ctx context.Context, log *slog.Logger, r *runner, info *Info, s SetupConfig, cause error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	clean := true
	for i := len(info.Networks) - 1; i >= 0; i-- {
		// Not strict: a plugin that cannot be found never ran ADD either.
		if err := r.del(ctx, info.PodUUID, s.NetNSPath, &info.Networks[i], false); err != nil {
			clean = false
			log.Warn("network rollback failed", "pod", s.PodUUID, "net", info.Networks[i].NetName, "err", err)
		}
	}
	if err := releasePorts(s.PortsDir, s.PodUUID, s.Ports); err != nil {
		log.Warn("network rollback failed", "pod", s.PodUUID, "err", err)
	}
	if err := RemoveNetNS(s.NetNSPath); err != nil {
		log.Warn("network rollback failed", "pod", s.PodUUID, "netns", s.NetNSPath, "err", err)
	}
	if clean && s.InfoPath != "" {
		if err := os.Remove(s.InfoPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Warn("network rollback failed", "pod", s.PodUUID, "err", err)
		}
	}
	return cause
}

// Teardown runs CNI DEL for every network of info in reverse order, then
// unmounts and removes the namespace file at netnsPath. It needs nothing but
// info (net-info.json), so it works from gc after the pod's stage1 was
// killed. A missing or unmounted namespace still gets DEL (with an empty
// CNI_NETNS), which releases IPAM leases. Running it again after success is
// harmless. If a DEL fails the namespace is kept, so that a retry can still
// find the interfaces, and the errors are returned. A nil info only removes
// the namespace.
func Teardown(ctx context.Context, info *Info, netnsPath string, pluginDirs []string, dataDir string) error {
	// The namespace goes first. Nothing of the pod holds it any more (its
	// processes are gone), so with the bind mount removed the kernel
	// destroys the pod's interfaces, and with them the host ends of veth
	// pairs, in the background, where a plugin's DEL inside the namespace
	// deletes a veth synchronously (10-25 ms, peers.md). DEL without a
	// namespace is what the CNI spec requires plugins to handle; it still
	// releases addresses and the host's routes and forwards.
	//
	// A network whose plugins may need the namespace for their DEL (any
	// plugin not known otherwise, needsNetNSForDel) gets it: then every
	// network is deleted before the namespace goes.
	haveNS := netnsPath != "" && isNetNS(netnsPath)
	nsPath := ""
	if haveNS && info != nil && slices.ContainsFunc(info.Networks, func(n NetInfo) bool { return needsNetNSForDel(n.Config) }) {
		nsPath = netnsPath
	}
	if haveNS && nsPath == "" {
		if err := RemoveNetNS(netnsPath); err != nil {
			return err
		}
	}
	if info != nil && len(info.Networks) > 0 {
		r := newRunner(pluginDirs, dataDir, nil)
		var errs []error
		for i := len(info.Networks) - 1; i >= 0; i-- {
			n := &info.Networks[i]
			if err := r.del(ctx, info.PodUUID, nsPath, n, n.Added); err != nil {
				errs = append(errs, fmt.Errorf("delete network %q: %w", n.NetName, err))
			}
		}
		if len(errs) > 0 {
			return join(errs)
		}
		if nsPath != "" {
			if err := RemoveNetNS(netnsPath); err != nil {
				return err
			}
		}
		// Only now are the forwards really gone.
		for _, n := range info.Networks {
			if err := releasePorts(info.PortsDir, info.PodUUID, n.Ports); err != nil {
				return err
			}
		}
	}
	return nil
}

// runner runs plugins through libcni.
type runner struct {
	cni  *libcni.CNIConfig
	dirs []string
}

func newRunner(dirs []string, dataDir string, stderr io.Writer) *runner {
	exec := &invoke.DefaultExec{
		RawExec:       &invoke.RawExec{Stderr: stderr},
		PluginDecoder: version.PluginDecoder{},
	}
	return &runner{
		cni:  libcni.NewCNIConfigWithCacheDir(dirs, filepath.Join(dataDir, ".cni-cache"), exec),
		dirs: dirs,
	}
}

func runtimeConf(podUUID, nsPath string, n *NetInfo) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{ContainerID: podUUID, NetNS: nsPath, IfName: n.IfName}
	if len(n.Args) > 0 {
		// CONVENTIONS.md: lets plugins ignore the keys they do not know
		// instead of failing on them; rkt's users pass free-form K=V.
		rt.Args = append([][2]string{{"IgnoreUnknown", "1"}}, n.Args...)
	}
	if len(n.Ports) > 0 {
		type entry struct {
			HostPort      int    `json:"hostPort"`
			ContainerPort int    `json:"containerPort"`
			Protocol      string `json:"protocol"`
			HostIP        string `json:"hostIP,omitempty"`
		}
		pms := make([]entry, 0, len(n.Ports))
		for _, p := range n.Ports {
			pms = append(pms, entry{p.HostPort, p.PodPort, p.Protocol, p.HostIP})
		}
		rt.CapabilityArgs = map[string]any{"portMappings": pms}
	}
	return rt
}

// add runs ADD for n and fills in its result.
func (r *runner) add(ctx context.Context, podUUID, nsPath string, n *NetInfo) error {
	list, err := libcni.ConfListFromBytes(n.Config)
	if err != nil {
		return err
	}
	if p, err := invoke.FindInPath(list.Plugins[0].Network.Type, r.dirs); err == nil {
		n.PluginPath = p
	}
	res, err := r.cni.AddNetworkList(ctx, list, runtimeConf(podUUID, nsPath, n))
	if err != nil {
		return err
	}
	n.Added = true
	cur, err := current.NewResultFromResult(res)
	if err != nil {
		return fmt.Errorf("convert result: %w", err)
	}
	fillResult(n, cur)
	return nil
}

// fillResult copies what the pod needs to know from a CNI result.
func fillResult(n *NetInfo, res *current.Result) {
	for _, itf := range res.Interfaces {
		if itf.Sandbox == "" && n.HostIfName == "" {
			n.HostIfName = itf.Name
		}
	}
	for _, ipc := range res.IPs {
		if ipc.Interface != nil && *ipc.Interface >= 0 && *ipc.Interface < len(res.Interfaces) {
			if itf := res.Interfaces[*ipc.Interface]; itf.Sandbox == "" || itf.Name != n.IfName {
				continue
			}
		}
		addr, ok := netip.AddrFromSlice(ipc.Address.IP)
		if !ok {
			continue
		}
		ones, _ := ipc.Address.Mask.Size()
		n.IPs = append(n.IPs, netip.PrefixFrom(addr.Unmap(), ones))
		gw, ok := netip.AddrFromSlice(ipc.Gateway)
		if !ok {
			continue
		}
		gw = gw.Unmap()
		if gw.Is4() && !n.Gateway.IsValid() {
			n.Gateway = gw
		}
		if gw.Is6() && !n.Gateway6.IsValid() {
			n.Gateway6 = gw
		}
	}
	n.DNS = DNS{
		Nameservers: res.DNS.Nameservers,
		Domain:      res.DNS.Domain,
		Search:      res.DNS.Search,
		Options:     res.DNS.Options,
	}
}

// del runs DEL for n. libcni stops at the first plugin that fails, so
// plugins that cannot be found are left out beforehand, letting the others
// release what they hold; with strict, each of them is an error.
func (r *runner) del(ctx context.Context, podUUID, nsPath string, n *NetInfo, strict bool) error {
	list, err := libcni.ConfListFromBytes(n.Config)
	if err != nil {
		return err
	}
	var errs []error
	found := *list
	found.Plugins = nil
	for _, p := range list.Plugins {
		if _, err := invoke.FindInPath(p.Network.Type, r.dirs); err != nil {
			if strict {
				errs = append(errs, err)
			}
			continue
		}
		found.Plugins = append(found.Plugins, p)
	}
	if len(found.Plugins) > 0 {
		if err := r.cni.DelNetworkList(ctx, &found, runtimeConf(podUUID, nsPath, n)); err != nil {
			errs = append(errs, err)
		}
	}
	if n.IPMasq {
		if err := teardownMasq(ctx, n.NetName, podUUID, n.IPs); err != nil {
			errs = append(errs, err)
		}
	}
	return join(errs)
}

// portmapNetwork picks the network that forwards ports: the first with
// ipMasq (its address is reachable from outside through the host), else the
// last, as rkt did.
func portmapNetwork(reqs []Request) int {
	for i, req := range reqs {
		var list struct {
			Plugins []struct {
				IPMasq bool `json:"ipMasq"`
			} `json:"plugins"`
		}
		if json.Unmarshal(req.Config, &list) != nil {
			continue
		}
		for _, p := range list.Plugins {
			if p.IPMasq {
				return i
			}
		}
	}
	return len(reqs) - 1
}

// effectiveConfig returns conf as it is run: host-local IPAM gets dataDir
// unless it sets one, and with portmap the list gets a portmap plugin unless
// it already has one that takes port mappings.
func effectiveConfig(conf []byte, dataDir string, portmap bool) (json.RawMessage, error) {
	var raw map[string]any
	if err := json.Unmarshal(conf, &raw); err != nil {
		return nil, fmt.Errorf("parse config: %w", err)
	}
	plugins, _ := raw["plugins"].([]any)
	hasPortmap := false
	for _, p := range plugins {
		pm, ok := p.(map[string]any)
		if !ok {
			continue
		}
		if ipam, ok := pm["ipam"].(map[string]any); ok && ipam["type"] == "host-local" {
			if _, set := ipam["dataDir"]; !set {
				ipam["dataDir"] = dataDir
			}
		}
		if caps, ok := pm["capabilities"].(map[string]any); ok && caps["portMappings"] == true {
			hasPortmap = true
		}
	}
	if portmap && !hasPortmap {
		v, _ := raw["cniVersion"].(string)
		if ok, err := version.GreaterThanOrEqualTo(v, "0.3.0"); err != nil || !ok {
			return nil, fmt.Errorf("port forwarding needs cniVersion 0.3.0 or later, not %q", v)
		}
		raw["plugins"] = append(plugins, map[string]any{
			"type":         "portmap",
			"capabilities": map[string]any{"portMappings": true},
			// SNAT makes 127.0.0.1:port and hairpin (pod to its own host
			// port) work: portmap masquerades such traffic and sets
			// route_localnet on the host interface (rkt #1256, #2283,
			// #3751 were these cases).
			"snat": true,
		})
	}
	out, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	list, err := libcni.ConfListFromBytes(out)
	if err != nil {
		return nil, err
	}
	if err := checkList(list); err != nil {
		return nil, err
	}
	return out, nil
}
