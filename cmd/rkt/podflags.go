package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rkt-ng/rkt/stage0"
	"github.com/rkt-ng/rkt/stage1"
)

// podFlags are the pod-wide flags of run and prepare.
type podFlags struct {
	volumes, setEnv                      []string
	podManifest, podName, setEnvFile     string
	pullPolicy, uuidFileSave             string
	noOverlay, inheritEnv                bool
	stage1Path, stage1URL, stage1Name    string
	stage1Hash, stage1FromDir            string
	stopTimeout                          time.Duration
	mdsRegister                          bool
	deprecated                           deprecatedFlags
	privateUsers                         bool
	ports                                []string
	dns, dnsSearch, dnsOpt, hostsEntries []string
	dnsDomain                            string
	// run-only
	net, hostname, ipc string
	interactive        bool
	quiet              bool
}

func (p *podFlags) register(fs *pflag.FlagSet, run bool) {
	fs.StringArrayVar(&p.volumes, "volume", nil, "volumes to make available in the pod: NAME,kind=host|empty,source=PATH,readOnly=BOOL,recursive=BOOL,mode=,uid=,gid=")
	fs.StringArrayVar(&p.setEnv, "set-env", nil, "environment variable to set for all apps (NAME=VALUE)")
	fs.StringVar(&p.setEnvFile, "set-env-file", "", "file of NAME=VALUE lines to set for all apps")
	fs.BoolVar(&p.inheritEnv, "inherit-env", false, "apps inherit the environment of rkt")
	fs.StringVar(&p.podManifest, "pod-manifest", "", "path to an appc pod manifest to run as given")
	fs.StringVar(&p.podName, "pod-name", "", "name of the pod, unique among live pods")
	fs.StringVar(&p.pullPolicy, "pull-policy", "new", "when to fetch images: new, update or never")
	fs.StringVar(&p.uuidFileSave, "uuid-file-save", "", "write the pod UUID to this file")
	fs.BoolVar(&p.noOverlay, "no-overlay", false, "copy image trees into the pod instead of using overlayfs")
	fs.StringVar(&p.stage1Path, "stage1-path", "", "path to the stage1 image")
	fs.StringVar(&p.stage1URL, "stage1-url", "", "URL of the stage1 image")
	fs.StringVar(&p.stage1Name, "stage1-name", "", "name of the stage1 image")
	fs.StringVar(&p.stage1Hash, "stage1-hash", "", "image ID of a stage1 image in the store")
	fs.StringVar(&p.stage1FromDir, "stage1-from-dir", "", "file name of a stage1 image in the stage1 images directory")
	fs.DurationVar(&p.stopTimeout, "stop-timeout", 10*time.Second, "time apps get between their stop signal and SIGKILL")
	fs.BoolVar(&p.mdsRegister, "mds-register", true, "serve the appc metadata service to the pod")
	fs.BoolVar(&p.privateUsers, "private-users", false, "run the pod in a user namespace")
	fs.StringArrayVar(&p.ports, "port", nil, "forward a host port to a named app port: NAME:[HOSTIP:]HOSTPORT")
	p.registerDNS(fs)
	if run {
		p.registerRun(fs)
	}
}

// registerDNS adds the DNS and hosts flags (run, prepare, run-prepared).
func (p *podFlags) registerDNS(fs *pflag.FlagSet) {
	fs.StringSliceVar(&p.dns, "dns", nil, "name servers for the pod (IP, host or none)")
	fs.StringSliceVar(&p.dnsSearch, "dns-search", nil, "DNS search domains")
	fs.StringSliceVar(&p.dnsOpt, "dns-opt", nil, "DNS resolver options")
	fs.StringVar(&p.dnsDomain, "dns-domain", "", "DNS local domain")
	fs.StringArrayVar(&p.hostsEntries, "hosts-entry", nil, "extra /etc/hosts entry IP=NAME, or host to use the host's file")
}

func (p *podFlags) dnsFlags() stage0.DNSFlags {
	return stage0.DNSFlags{DNS: p.dns, Search: p.dnsSearch, Options: p.dnsOpt, Domain: p.dnsDomain, HostsEntries: p.hostsEntries}
}

// registerRun adds the flags that only matter when the pod starts.
func (p *podFlags) registerRun(fs *pflag.FlagSet) {
	fs.StringVar(&p.net, "net", "default", "networks for the pod: default, default-restricted, host, none, all or net.d names, with NAME:K=V;K=V args")
	fs.StringVar(&p.hostname, "hostname", "", "pod hostname (default rkt-$UUID)")
	fs.StringVar(&p.ipc, "ipc", "auto", "IPC namespace: auto, private or parent")
	fs.BoolVar(&p.interactive, "interactive", false, "run the pod interactively (one app)")
}

func (p *podFlags) prepareConfig(apps []stage0.AppSpec) stage0.PrepareConfig {
	return stage0.PrepareConfig{
		Apps: apps, PodManifest: p.podManifest, Volumes: p.volumes, PodName: p.podName,
		Stage1:       stage0.Stage1Options{Path: p.stage1Path, URL: p.stage1URL, Name: p.stage1Name, Hash: p.stage1Hash, FromDir: p.stage1FromDir},
		NoOverlay:    p.noOverlay,
		PrivateUsers: p.privateUsers,
		Env:          stage0.EnvSources{Inherit: p.inheritEnv, File: p.setEnvFile, Set: p.setEnv},
		PullPolicy:   p.pullPolicy,
		Ports:        p.ports,
		DNS:          p.dnsFlags(),
		Options:      stage1.Options{StopTimeout: stage1.Duration(p.stopTimeout)},
	}
}

func (p *podFlags) runOptions(c *stage0.Config) stage0.RunOptions {
	return stage0.RunOptions{
		Args: stage1.RunArgs{
			Net: p.net, Hostname: p.hostname, Interactive: p.interactive, IPC: ipcArg(p.ipc), Debug: c.Debug,
			DisableCaps: c.Insecure.Capabilities, DisablePaths: c.Insecure.Paths, DisableSeccomp: c.Insecure.Seccomp,
		},
		UUIDFileSave: p.uuidFileSave,
		MDSRegister:  p.mdsRegister,
	}
}

func ipcArg(s string) string {
	if s == "auto" {
		return ""
	}
	return s
}

// parsePodCommand parses run/prepare arguments: global flags, pod flags and
// default app flags up to the first image, then the apps.
func parsePodCommand(cmd *cobra.Command, args []string, pf *podFlags, run bool) ([]stage0.AppSpec, bool, error) {
	fs := pflag.NewFlagSet(cmd.Name(), pflag.ContinueOnError)
	fs.SetInterspersed(false)
	shared := podFlagSet(cmd, pf, run)
	fs.AddFlagSet(shared)
	var defaults appFlags
	defaults.register(fs)
	help := fs.BoolP("help", "h", false, "help")
	if err := fs.Parse(args); err != nil {
		return nil, false, &usageError{err}
	}
	if *help {
		return nil, true, cmd.Help()
	}
	var def stage0.AppSpec
	if err := defaults.apply(fs, &def); err != nil {
		return nil, false, &usageError{err}
	}
	if pf.podManifest != "" {
		var changed []string
		appFS := pflag.NewFlagSet("app", pflag.ContinueOnError)
		defaults.register(appFS)
		appFS.VisitAll(func(f *pflag.Flag) {
			if fs.Changed(f.Name) {
				changed = append(changed, "--"+f.Name)
			}
		})
		for _, n := range []string{"volume", "set-env", "set-env-file", "inherit-env", "port"} {
			if fs.Changed(n) {
				changed = append(changed, "--"+n)
			}
		}
		if len(changed) > 0 {
			return nil, false, fmt.Errorf("--pod-manifest cannot be combined with %s: the pod manifest says it all", strings.Join(changed, ", "))
		}
	}
	apps, err := parseApps(fs.Args(), def, shared)
	if err != nil {
		return nil, false, err
	}
	if err := pf.check(); err != nil {
		return nil, false, err
	}
	if len(apps) == 0 && pf.podManifest == "" {
		return nil, false, &usageError{fmt.Errorf("%s: no image given", cmd.Name())}
	}
	return apps, false, nil
}
