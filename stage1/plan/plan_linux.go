package plan

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/manifests"
	"github.com/rkt-ng/rkt/pods/layout"
	"github.com/rkt-ng/rkt/stage1"
	"github.com/rkt-ng/rkt/stage1/cgroups"
	"github.com/rkt-ng/rkt/stage1/podspec"
	"github.com/rkt-ng/rkt/stage2"
)

// AnnotationNotify marks an image whose app speaks sd_notify; the pod is
// ready only when it has sent READY=1 (appc executor annotation).
const AnnotationNotify = "appc.io/executor/supports-systemd-notify"

// Paths in the pod's root of the files Build generates.
const (
	ResolvConfFile = "/etc/rkt-resolv.conf"
	HostsFile      = "/etc/rkt-hosts"
	HostnameFile   = "/etc/rkt-hostname"
)

// Users resolves appc's user and group fields of an app, as
// podspec.ResolveUser does in the app's rootfs.
type Users interface {
	Resolve(app, user, group string) (podspec.User, error)
}

// DNS is the DNS configuration the pod's networks returned (cni.Info.DNS).
type DNS struct {
	// Network is the name of the network that returned it.
	Network     string
	Nameservers []string
	Domain      string
	Search      []string
	Options     []string
}

func (d DNS) isZero() bool {
	return len(d.Nameservers) == 0 && d.Domain == "" && len(d.Search) == 0 && len(d.Options) == 0
}

// Input is everything the plan depends on.
type Input struct {
	// Manifest is the decoded pod manifest, with the isolators the run
	// entrypoint's checks chose to apply (podspec.ConfineImage).
	Manifest *schema.PodManifest
	// Images are the apps' image manifests by app name.
	Images  map[string]*schema.ImageManifest
	Options stage1.Options
	// Args are the run entrypoint's arguments: UUID, hostname, --net (for
	// sysctls), --interactive, --debug and the insecure options count.
	Args stage1.RunArgs
	// Terminal says the caller's stdin is a terminal: with --interactive the
	// pod then gets a pseudo-terminal of its own.
	Terminal bool
	// Cgroups says the pod has cgroups, so resource isolators apply.
	Cgroups bool
	// DNS is what the networks returned; zero without networking.
	DNS DNS
	// ExtraEnv is added last to every app's environment (AC_METADATA_URL).
	ExtraEnv []string
	Users    Users
}

// Plan is what the stage1 does to run the pod, decided and not done.
type Plan struct {
	Hostname string
	// Dirs are directories to create in the pod's root (mode 0755), as
	// the pod's root user.
	Dirs []string
	// Files are files to write, as the pod's root user.
	Files []File
	// Volumes are the empty volumes the apps mount, each once, in the order
	// of their first mount.
	Volumes []Volume
	// Sysctls are namespaced net.* sysctls of the pod's network namespace.
	Sysctls map[string]string
	// Limits are the pod-wide cgroup limits.
	Limits      cgroups.Limits
	StopTimeout time.Duration
	Apps        []App
}

// File is a file stage1 writes, in the pod's root or in an app's rootfs.
type File struct {
	// App is the app whose rootfs holds Path; empty for the pod's root.
	App  string
	Path string
	Data string
	Mode os.FileMode
	// IfMissing leaves an existing file (or symlink) alone (appc ace.md:
	// an image's own /etc/hosts is never modified).
	IfMissing bool
}

// Volume is an empty volume (appc kind "empty") to create.
type Volume struct {
	Name     string
	Mode     os.FileMode
	UID, GID int
	// Seed, when set, makes the volume a copy of what the app's image has
	// at the path, if that is a directory (Options.SeedVolumes; Docker's
	// volume semantics). Otherwise it is an empty directory with Mode, UID
	// and GID.
	Seed *Seed
}

// Seed names the image content a volume starts as: the first mount of the
// volume.
type Seed struct {
	App, Path string
}

// SourceKind says what the Source of a Bind names.
type SourceKind string

const (
	// HostVolume: Source is a host path the user gave (appc kind "host");
	// it must not be a symlink.
	HostVolume SourceKind = "host-volume"
	// EmptyVolume: Source is the name of one of Plan.Volumes.
	EmptyVolume SourceKind = "empty-volume"
	// PodFile: Source is one of Plan.Files in the pod's root.
	PodFile SourceKind = "pod-file"
	// PodDir: Source is one of Plan.Dirs in the pod's root.
	PodDir SourceKind = "pod-dir"
	// HostFile: Source is a host file given to the pod (--dns=host,
	// --hosts-entry=host).
	HostFile SourceKind = "host-file"
)

// Bind makes Source visible at Target in an app's rootfs.
type Bind struct {
	Kind   SourceKind
	Source string
	// Volume is the appc volume of a HostVolume or EmptyVolume.
	Volume   string
	Target   string
	ReadOnly bool
	// Recursive binds the submounts too (host volumes, appc "recursive").
	Recursive bool
}

// File says the source is known to be a regular file; volumes are whatever
// their source is.
func (b Bind) File() bool { return b.Kind == PodFile || b.Kind == HostFile }

// App is one app of the plan.
type App struct {
	Name string
	// ReadOnly makes the app's rootfs read-only.
	ReadOnly bool
	// Binds are made in order: the app's volumes, then the pod files
	// (which so win over a volume on the same path: rkt's precedence).
	Binds []Bind
	// Limits are the app's cgroup limits (when Input.Cgroups).
	Limits cgroups.Limits
	// Ignored are the app's isolators this stage1 does not apply, to be
	// reported to the user (appc requires it).
	Ignored []string
	// Stage2 is what stage2 starts. Proc.CgroupProcs and the listener
	// fields are left to the executor.
	Stage2 stage2.App
}

// Hostname is the pod's hostname: --hostname, else rkt-<uuid>.
func Hostname(a stage1.RunArgs) string {
	if a.Hostname != "" {
		return a.Hostname
	}
	return "rkt-" + a.UUID
}

// Build decides the pod's plan.
func Build(in Input) (*Plan, error) {
	if in.Manifest == nil {
		return nil, fmt.Errorf("no pod manifest")
	}
	p := &Plan{Hostname: Hostname(in.Args), StopTimeout: time.Duration(in.Options.StopTimeout)}
	files := p.dnsFiles(in.Options, in.DNS)
	var err error
	if p.Sysctls, err = sysctls(in.Manifest.Isolators, in.Args.Net); err != nil {
		return nil, err
	}
	if p.Limits, err = cgroups.FromIsolators(in.Manifest.Isolators); err != nil {
		return nil, fmt.Errorf("pod isolators: %w", err)
	}
	if in.Args.Interactive && len(in.Manifest.Apps) != 1 {
		return nil, fmt.Errorf("--interactive: interactive option only supports one image, this pod has %d apps", len(in.Manifest.Apps))
	}
	vols := map[types.ACName]types.Volume{}
	for _, v := range in.Manifest.Volumes {
		vols[v.Name] = v
	}
	insecure := podspec.Insecure{Capabilities: in.Args.DisableCaps, Seccomp: in.Args.DisableSeccomp}
	for i := range in.Manifest.Apps {
		ra := &in.Manifest.Apps[i]
		name := ra.Name.String()
		image := in.Images[name]
		if image == nil {
			return nil, fmt.Errorf("app %s: no image manifest", name)
		}
		resolve := func(user, group string) (podspec.User, error) {
			if in.Users == nil {
				return podspec.User{}, fmt.Errorf("no user database")
			}
			return in.Users.Resolve(name, user, group)
		}
		proc, err := podspec.ProcAs(podspec.Input{App: ra, Image: image, PodRootfs: podspec.AppRootfs(name), ExtraEnv: in.ExtraEnv}, resolve)
		if err != nil {
			return nil, err
		}
		p.Files = append(p.Files, File{App: name, Path: "/etc/hosts", Data: hosts(p.Hostname, nil), Mode: 0o644, IfMissing: true})
		binds, err := p.binds(ra, vols, in.Options.SeedVolumes)
		if err != nil {
			return nil, fmt.Errorf("app %s: %w", name, err)
		}
		binds = append(binds, files...)
		notify := ""
		if v, ok := image.Annotations.Get(AnnotationNotify); ok && v == "true" {
			dir := layout.AppNotify(name)
			p.Dirs = append(p.Dirs, dir)
			binds = append(binds, Bind{Kind: PodDir, Source: dir, Target: layout.AppNotifyDir})
			proc.Env = append(proc.Env, "NOTIFY_SOCKET="+layout.AppNotifySocketInApp())
			notify = layout.AppNotifySocket(name)
		}
		applied, err := podspec.Confine(&proc, ra.App.Isolators, insecure)
		if err != nil {
			return nil, fmt.Errorf("app %s: %w", name, err)
		}
		a := App{Name: name, ReadOnly: ra.ReadOnlyRootFS, Binds: binds}
		if in.Cgroups {
			if a.Limits, err = cgroups.FromIsolators(ra.App.Isolators); err != nil {
				return nil, fmt.Errorf("app %s: %w", name, err)
			}
			for _, n := range cgroupIsolators {
				applied[n] = true
			}
		}
		a.Ignored = manifests.Unapplied(ra.App.Isolators, applied)
		a.Stage2 = stage2.App{Name: name, Root: podspec.AppRootfs(name), Proc: proc, NotifySocket: notify,
			Terminal: in.Args.Interactive && in.Terminal}
		for _, eh := range ra.App.EventHandlers {
			switch eh.Name {
			case "pre-start":
				a.Stage2.PreStart = eh.Exec
			case "post-stop":
				a.Stage2.PostStop = eh.Exec
			}
		}
		if o, ok := in.Options.Apps[name]; ok && o.StopSignal != "" {
			a.Stage2.StopSignal = stopSignal(o.StopSignal)
		}
		p.Apps = append(p.Apps, a)
	}
	return p, nil
}

// cgroupIsolators are the isolators applied through cgroups.
var cgroupIsolators = []types.ACIdentifier{types.ResourceMemoryName, types.ResourceCPUName, types.LinuxCPUSharesName}

// stopSignal is the number of a signal named "TERM", "sigterm" or
// "SIGTERM"; 0 (the default, SIGTERM) for a name it does not know.
func stopSignal(name string) int {
	sig := unix.SignalNum(strings.ToUpper(name))
	if sig == 0 {
		sig = unix.SignalNum("SIG" + strings.ToUpper(name))
	}
	return int(sig)
}

// binds resolves an app's mounts against the pod's volumes: the pod
// manifest's, else the mount's own (appVolume).
func (p *Plan) binds(ra *schema.RuntimeApp, vols map[types.ACName]types.Volume, seed []string) ([]Bind, error) {
	var out []Bind
	for _, m := range ra.Mounts {
		v, ok := vols[m.Volume]
		if !ok {
			if m.AppVolume == nil {
				return nil, fmt.Errorf("mount %s: volume %q is not declared", m.Path, m.Volume)
			}
			v = *m.AppVolume
		}
		b := Bind{Volume: v.Name.String(), Target: m.Path, ReadOnly: v.ReadOnly != nil && *v.ReadOnly}
		for _, mp := range ra.App.MountPoints {
			if mp.Path == m.Path && mp.ReadOnly {
				b.ReadOnly = true
			}
		}
		switch v.Kind {
		case "host":
			b.Kind, b.Source = HostVolume, v.Source
			b.Recursive = v.Recursive == nil || *v.Recursive
		case "empty":
			b.Kind, b.Source = EmptyVolume, v.Name.String()
			if err := p.addVolume(v, ra.Name.String(), m.Path, slices.Contains(seed, v.Name.String())); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("volume %s: unknown kind %q", v.Name, v.Kind)
		}
		out = append(out, b)
	}
	return out, nil
}

// addVolume adds empty volume v at its first mount, by app at path.
func (p *Plan) addVolume(v types.Volume, app, path string, seed bool) error {
	for _, have := range p.Volumes {
		if have.Name == v.Name.String() {
			return nil
		}
	}
	out := Volume{Name: v.Name.String(), Mode: 0o755}
	if v.Mode != nil {
		m, err := strconv.ParseUint(*v.Mode, 8, 32)
		if err != nil {
			return fmt.Errorf("volume %s: invalid mode %q", v.Name, *v.Mode)
		}
		out.Mode = os.FileMode(m)
	}
	if v.UID != nil {
		out.UID = *v.UID
	}
	if v.GID != nil {
		out.GID = *v.GID
	}
	if seed {
		out.Seed = &Seed{App: app, Path: path}
	}
	p.Volumes = append(p.Volumes, out)
	return nil
}

// dnsFiles decides the pod's /etc/hostname, /etc/resolv.conf and /etc/hosts
// with rkt's precedence: --dns flags, then DNS from the networks;
// --hosts-entry lines (or the host's file for "host"). Apps keep their
// image's own files when nothing applies. It returns the binds every app
// gets, after its volumes, so that a generated file also covers a volume
// mounted on the same path: rkt's precedence is --dns* flags > DNS from CNI
// > a volume on /etc/resolv.conf > the image's own file, and --hosts-entry
// likewise beats a volume on /etc/hosts. Without a generated file the volume
// stays visible.
func (p *Plan) dnsFiles(o stage1.Options, net DNS) []Bind {
	var out []Bind
	podFile := func(path, data, target string) {
		p.Files = append(p.Files, File{Path: path, Data: data, Mode: 0o644})
		out = append(out, Bind{Kind: PodFile, Source: path, Target: target, ReadOnly: true})
	}
	switch {
	case len(o.DNS) == 1 && o.DNS[0] == "host":
		out = append(out, Bind{Kind: HostFile, Source: "/etc/resolv.conf", Target: "/etc/resolv.conf", ReadOnly: true})
	case len(o.DNS) == 1 && o.DNS[0] == "none":
	case len(o.DNS) > 0 || len(o.DNSSearch) > 0 || len(o.DNSOptions) > 0 || o.DNSDomain != "":
		podFile(ResolvConfFile, resolvConf(DNS{Nameservers: o.DNS, Search: o.DNSSearch, Options: o.DNSOptions, Domain: o.DNSDomain},
			"Generated by rkt run"), "/etc/resolv.conf")
	case !net.isZero():
		podFile(ResolvConfFile, resolvConf(net, "Generated by rkt from network "+net.Network), "/etc/resolv.conf")
	}
	// /etc/hostname, as rkt gave every app; it covers the image's own.
	podFile(HostnameFile, p.Hostname+"\n", "/etc/hostname")
	switch {
	case len(o.HostsEntries) == 1 && o.HostsEntries[0] == "host":
		out = append(out, Bind{Kind: HostFile, Source: "/etc/hosts", Target: "/etc/hosts", ReadOnly: true})
	case len(o.HostsEntries) > 0:
		podFile(HostsFile, hosts(p.Hostname, o.HostsEntries), "/etc/hosts")
	}
	return out
}

// hosts is an /etc/hosts with localhost, the hostname and extra lines.
func hosts(hostname string, extra []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "127.0.0.1\tlocalhost localhost.localdomain %s\n::1\tlocalhost ip6-localhost ip6-loopback\n", hostname)
	if len(extra) > 0 {
		// rkt marked the lines it added so.
		b.WriteString("\n# Added by rkt run --hosts-entry\n")
	}
	for _, e := range extra {
		fmt.Fprintln(&b, e)
	}
	return b.String()
}

// resolvConf is resolv.conf(5) for d, laid out as rkt 1.30 wrote it
// (common.MakeResolvConf): a comment, search, nameservers, options, then
// domain, so that domain, the last of the two, wins over search as in rkt.
func resolvConf(d DNS, comment string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", comment)
	if len(d.Search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(d.Search, " "))
	}
	for _, ns := range d.Nameservers {
		fmt.Fprintf(&b, "nameserver %s\n", ns)
	}
	if len(d.Options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(d.Options, " "))
	}
	if d.Domain != "" {
		fmt.Fprintf(&b, "domain %s\n", d.Domain)
	}
	return b.String()
}

// sysctls returns the pod's os/unix/sysctl isolator. Only net.* keys are
// namespaced with the pod's network namespace; anything else would change
// the host, and so would any key under --net=host.
func sysctls(isos types.Isolators, net string) (map[string]string, error) {
	out := map[string]string{}
	for _, iso := range isos {
		v, ok := iso.Value().(*types.UnixSysctl)
		if !ok {
			continue
		}
		for k, val := range *v {
			if err := CheckSysctl(k, net); err != nil {
				return nil, err
			}
			out[k] = val
		}
	}
	return out, nil
}

// CheckSysctl rejects sysctls that are not confined to the pod's own
// network namespace.
func CheckSysctl(key, net string) error {
	if !strings.HasPrefix(key, "net.") || strings.Contains(key, "..") || strings.Contains(key, "/") {
		return fmt.Errorf("sysctl %q: only namespaced net.* sysctls may be set", key)
	}
	if net == "host" {
		return fmt.Errorf("sysctl %q: not allowed with --net=host (it would change the host)", key)
	}
	return nil
}
