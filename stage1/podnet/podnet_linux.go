// Package podnet sets up and tears down a pod's networks on the host, the
// same way for every stage1 flavor: a network namespace for the pod
// (recorded in the pod directory before it exists), the CNI networks of
// rkt's --net spec attached to it, with the pod manifest's exposed ports
// (--port), and a teardown that works from the records alone
// (pods/layout NetNS and NetInfo), so gc can run it after a crash.
//
// The namespace stage1 runs the pod's processes in the namespace; the KVM
// stage1 connects a tap device in it to the guest.
//
// The package is Linux-only.
package podnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/appc/spec/schema"

	"github.com/rkt-ng/rkt/cni"
	"github.com/rkt-ng/rkt/internal/atomicfile"
	"github.com/rkt-ng/rkt/internal/pausepoint"
	"github.com/rkt-ng/rkt/pods/layout"
)

// netnsDir holds the bind mounts of pod network namespaces. It lives under
// /run so that a reboot forgets them with the namespaces themselves.
const netnsDir = "/run/rkt/netns"

// portsDir is the host-wide registry of host ports that pods forward (see
// cni.SetupConfig.PortsDir); like the namespaces it does not survive a
// reboot.
const portsDir = "/run/rkt/ports"

// ipamDir holds the IP leases of the built-in networks for every data dir
// of the host (cni.SetupConfig.SharedIPAMDir), so that two data dirs never
// hand out the same address; like the namespaces it does not survive a
// reboot.
const ipamDir = "/run/rkt/networks"

// Config is what Setup needs to know about the pod.
type Config struct {
	PodDir   string
	UUID     string
	Manifest *schema.PodManifest
	// Net is rkt's --net spec ("" means default).
	Net string
	// LocalConfig and SystemConfig are rkt's --local-config and
	// --system-config, where net.d and plugin dirs are found.
	LocalConfig, SystemConfig string
	// DataDir is rkt's --dir (stage1.Options.DataDir), for IPAM leases;
	// "" keeps them in the pod directory.
	DataDir string
	Log     *slog.Logger
}

// PluginDirs is where CNI plugins are looked up, as rkt: $CNI_PATH, the
// plugin dirs of the local and system config, and those in the stage1 image.
func PluginDirs(localConfig, systemConfig string) []string {
	var dirs []string
	if env := os.Getenv("CNI_PATH"); env != "" {
		dirs = append(dirs, filepath.SplitList(env)...)
	}
	for _, c := range []string{localConfig, systemConfig} {
		if c != "" {
			dirs = append(dirs, filepath.Join(c, "plugins", "net"), filepath.Join(c, "net.d"))
		}
	}
	// The plugins bundled in the stage1 image sit beside the entrypoint,
	// which stage0 always runs from the stage1 tree in the store, never from
	// the pod's stage1 rootfs: nothing the pod could have written is
	// executed on the host.
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Join(filepath.Dir(exe), "usr", "lib", "rkt", "plugins", "net"))
	}
	return dirs
}

// DataDir is where IPAM keeps the pod's leases.
func DataDir(dataDir, podDir string) string {
	if dataDir != "" {
		return filepath.Join(dataDir, "networks")
	}
	return filepath.Join(podDir, "networks")
}

// Setup creates the pod's netns and attaches its networks. It returns the
// netns path, "" for --net=host, and the networks' record (nil without
// networks).
func Setup(ctx context.Context, c Config) (string, *cni.Info, error) {
	spec := c.Net
	if spec == "" {
		spec = "default"
	}
	if cni.IsHost(spec) {
		return "", nil, nil
	}
	cat, err := cni.Load(c.LocalConfig, c.SystemConfig)
	if err != nil {
		return "", nil, err
	}
	reqs, err := cat.Select(spec)
	if err != nil {
		return "", nil, err
	}
	ports, err := PortMappings(c.Manifest)
	if err != nil {
		return "", nil, err
	}
	if len(ports) > 0 && len(reqs) == 0 {
		return "", nil, errors.New("--port needs a network; --net=none has none")
	}
	nsPath := filepath.Join(netnsDir, c.UUID)
	// Record the netns before creating it, so that gc finds it after a crash.
	if err := atomicfile.Replace(layout.Dir(c.PodDir).NetNS(), []byte(nsPath), 0o644); err != nil {
		return "", nil, err
	}
	if err := cni.NewNetNS(nsPath); err != nil {
		return "", nil, fmt.Errorf("create network namespace: %w", err)
	}
	if err := pausepoint.Reach(ctx, pausepoint.Stage1NetNS); err != nil {
		return "", nil, err
	}
	if len(reqs) == 0 {
		return nsPath, nil, nil
	}
	info, err := cni.Setup(ctx, cni.SetupConfig{
		PodUUID: c.UUID, NetNSPath: nsPath, PluginDirs: PluginDirs(c.LocalConfig, c.SystemConfig), Networks: reqs, Ports: ports,
		DataDir: DataDir(c.DataDir, c.PodDir), SharedIPAMDir: ipamDir, PortsDir: portsDir, InfoPath: layout.Dir(c.PodDir).NetInfo(), PluginStderr: os.Stderr, Log: c.Log,
	})
	if err != nil {
		return "", nil, fmt.Errorf("network: %w", err)
	}
	if err := pausepoint.Reach(ctx, pausepoint.Stage1NetAdded); err != nil {
		return "", nil, err
	}
	return nsPath, info, nil
}

// PortMappings resolves the pod manifest's exposed ports against the apps'
// declared ports; an exposed port with a full podPort (protocol and port)
// is forwarded to that pod port as given, as rkt did.
func PortMappings(m *schema.PodManifest) ([]cni.PortMapping, error) {
	var out []cni.PortMapping
	for _, ep := range m.Ports {
		if pp := ep.PodPort; pp != nil && pp.Protocol != "" {
			// A forward to a pod port, naming no app (rkt app sandbox).
			pm := cni.PortMapping{Name: ep.Name.String(), Protocol: pp.Protocol, HostPort: int(ep.HostPort), PodPort: int(pp.Port)}
			if ep.HostIP != nil && !ep.HostIP.IsUnspecified() {
				pm.HostIP = ep.HostIP.String()
			}
			out = append(out, pm)
			continue
		}
		found := false
		for _, ra := range m.Apps {
			if ra.App == nil {
				continue
			}
			for _, port := range ra.App.Ports {
				if port.Name != ep.Name {
					continue
				}
				pm := cni.PortMapping{Name: ep.Name.String(), Protocol: port.Protocol, HostPort: int(ep.HostPort), PodPort: int(port.Port)}
				if ep.HostIP != nil {
					pm.HostIP = ep.HostIP.String()
				}
				if ep.PodPort != nil {
					pm.PodPort = int(ep.PodPort.Port)
				}
				out = append(out, pm)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("--port %s: no app of the pod declares a port named %q", ep.Name, ep.Name)
		}
	}
	return out, nil
}

// Teardown releases everything the pod's networks hold; it works from the
// records alone and is idempotent.
func Teardown(ctx context.Context, podDir string, pluginDirs []string, dataDir string) error {
	b, err := os.ReadFile(layout.Dir(podDir).NetNS())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	nsPath := strings.TrimSpace(string(b))
	var info *cni.Info
	if i, err := cni.LoadInfo(layout.Dir(podDir).NetInfo()); err == nil {
		info = i
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return cni.Teardown(ctx, info, nsPath, pluginDirs, dataDir)
}
