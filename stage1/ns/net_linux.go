package ns

import (
	"context"

	"github.com/rkt-ng/rkt/cni"
	"github.com/rkt-ng/rkt/stage1/podnet"
)

// pluginDirs is where CNI plugins are looked up (podnet.PluginDirs).
func (p *pod) pluginDirs() []string {
	return podnet.PluginDirs(p.args.LocalConfig, p.opts.SystemConfig)
}

func (p *pod) netDataDir() string { return podnet.DataDir(p.opts.DataDir, p.dir) }

// setupNetwork creates the pod's netns and attaches its networks. It returns
// the netns path, "" for --net=host.
func (p *pod) setupNetwork(ctx context.Context) (string, *cni.Info, error) {
	return podnet.Setup(ctx, podnet.Config{
		PodDir: p.dir, UUID: p.args.UUID, Manifest: p.manifest, Net: p.args.Net,
		LocalConfig: p.args.LocalConfig, SystemConfig: p.opts.SystemConfig, DataDir: p.opts.DataDir, Log: p.log,
	})
}

// teardownNetwork releases everything the pod's networks hold; it works
// from the records alone and is idempotent.
func teardownNetwork(ctx context.Context, podDir string, pluginDirs []string, dataDir string) error {
	return podnet.Teardown(ctx, podDir, pluginDirs, dataDir)
}
