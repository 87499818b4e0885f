package ns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rkt-ng/rkt/cni"
	"github.com/rkt-ng/rkt/internal/atomicfile"
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

// pluginDirs is where CNI plugins are looked up, as rkt: $CNI_PATH, the
// plugin dirs of the local and system config, and those in the stage1 image.
func (p *pod) pluginDirs() []string {
	var dirs []string
	if env := os.Getenv("CNI_PATH"); env != "" {
		dirs = append(dirs, filepath.SplitList(env)...)
	}
	for _, c := range []string{p.args.LocalConfig, p.opts.SystemConfig} {
		if c != "" {
			dirs = append(dirs, filepath.Join(c, "plugins", "net"), filepath.Join(c, "net.d"))
		}
	}
	// The plugins bundled in the stage1 image sit beside this program, which
	// stage0 always runs from the stage1 tree in the store, never from the
	// pod's stage1 rootfs: nothing the pod could have written is executed
	// on the host.
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Join(filepath.Dir(exe), "usr", "lib", "rkt", "plugins", "net"))
	}
	return dirs
}

func (p *pod) netDataDir() string {
	if p.opts.DataDir != "" {
		return filepath.Join(p.opts.DataDir, "networks")
	}
	return filepath.Join(p.dir, "networks")
}

// setupNetwork creates the pod's netns and attaches its networks. It returns
// the netns path, "" for --net=host.
func (p *pod) setupNetwork(ctx context.Context) (string, *cni.Info, error) {
	spec := p.args.Net
	if spec == "" {
		spec = "default"
	}
	if cni.IsHost(spec) {
		return "", nil, nil
	}
	cat, err := cni.Load(p.args.LocalConfig, p.opts.SystemConfig)
	if err != nil {
		return "", nil, err
	}
	reqs, err := cat.Select(spec)
	if err != nil {
		return "", nil, err
	}
	ports, err := p.portMappings()
	if err != nil {
		return "", nil, err
	}
	if len(ports) > 0 && len(reqs) == 0 {
		return "", nil, errors.New("--port needs a network; --net=none has none")
	}
	nsPath := filepath.Join(netnsDir, p.args.UUID)
	// Record the netns before creating it, so that gc finds it after a crash.
	if err := atomicfile.Replace(p.layout().NetNS(), []byte(nsPath), 0o644); err != nil {
		return "", nil, err
	}
	if err := cni.NewNetNS(nsPath); err != nil {
		return "", nil, fmt.Errorf("create network namespace: %w", err)
	}
	if len(reqs) == 0 {
		return nsPath, nil, nil
	}
	info, err := cni.Setup(ctx, cni.SetupConfig{
		PodUUID: p.args.UUID, NetNSPath: nsPath, PluginDirs: p.pluginDirs(), Networks: reqs, Ports: ports,
		DataDir: p.netDataDir(), SharedIPAMDir: ipamDir, PortsDir: portsDir, InfoPath: p.layout().NetInfo(), PluginStderr: os.Stderr, Log: p.log,
	})
	if err != nil {
		return "", nil, fmt.Errorf("network: %w", err)
	}
	return nsPath, info, nil
}

// portMappings resolves the pod manifest's exposed ports against the apps'
// declared ports.
func (p *pod) portMappings() ([]cni.PortMapping, error) {
	var out []cni.PortMapping
	for _, ep := range p.manifest.Ports {
		found := false
		for _, ra := range p.manifest.Apps {
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

// teardownNetwork releases everything the pod's networks hold; it works
// from the records alone and is idempotent.
func teardownNetwork(ctx context.Context, podDir string, pluginDirs []string, dataDir string) error {
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
