package ocibundle

import (
	"errors"
	"fmt"
	"path"
	"runtime"
	"slices"
	"strings"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"github.com/rkt-ng/rkt/stage1"
	"github.com/rkt-ng/rkt/stage1/cgroups"
	"github.com/rkt-ng/rkt/stage1/podsetup"
	"github.com/rkt-ng/rkt/stage1/podspec"
	"github.com/rkt-ng/rkt/stage2"
	"github.com/rkt-ng/rkt/stage2/seccomp"
)

// RootfsDir is the bundle's root filesystem directory, next to config.json.
const RootfsDir = "rootfs"

// ConfigFile is the name of the bundle's configuration.
const ConfigFile = "config.json"

// Input is the app to describe and where its rendered rootfs is.
type Input struct {
	Image   *schema.ImageManifest
	ImageID string
	// App is an app of a prepared pod (its pod manifest entry); nil means
	// the image's own app, named after the image.
	App *schema.RuntimeApp
	// Options names the isolators of App the user gave.
	Options stage1.AppOptions
	// Rootfs is the rendered root filesystem (with the image's
	// dependencies), read for the user and group databases.
	Rootfs string
}

// Config builds the bundle configuration of the app. Isolators that came
// from the image and ask for more than the default confinement are
// refused, as `rkt run` refuses them unless the user grants them; an
// image export has no grant flags, an app of a prepared pod carries the
// grants given to `rkt prepare`.
func Config(in Input) (*Spec, error) {
	im := in.Image
	ra := in.App
	what := "image " + string(im.Name)
	if ra == nil {
		if im.App == nil {
			return nil, fmt.Errorf("image %s has no app to run", im.Name)
		}
		name, err := types.SanitizeACName(path.Base(string(im.Name)))
		if err != nil {
			return nil, fmt.Errorf("image %s: cannot derive an app name: %w", im.Name, err)
		}
		ra = &schema.RuntimeApp{Name: types.ACName(name), App: im.App}
	} else {
		what = "app " + ra.Name.String()
		if ra.App == nil {
			return nil, fmt.Errorf("app %s has no app section in the pod manifest", ra.Name)
		}
	}
	name := ra.Name.String()
	isos, err := podspec.ConfineImage(name, ra.App.Isolators, in.Options, podspec.Insecure{})
	var pe *podspec.ImagePrivilegesError
	if errors.As(err, &pe) {
		return nil, fmt.Errorf("%s: image isolators %s ask for privileges beyond the default confinement, which an export does not grant",
			what, strings.Join(widening(ra.App.Isolators, in.Options.UserIsolators), ", "))
	}
	if err != nil {
		return nil, err
	}
	if err := podspec.CheckIsolators(isos); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	p, err := podspec.Proc(podspec.Input{App: ra, Image: im, HostRootfs: in.Rootfs, PodRootfs: "/"})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if _, err := podspec.Confine(&p, isos, podspec.Insecure{}); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	limits, err := cgroups.FromIsolators(isos)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	sc, err := seccompProfile(p.Seccomp)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	s := &Spec{
		Version: Version,
		Process: Process{
			User:            User{UID: p.UID, GID: p.GID, AdditionalGids: p.Groups},
			Args:            p.Args,
			Env:             p.Env,
			Cwd:             p.WorkingDir,
			Capabilities:    capabilities(p),
			NoNewPrivileges: p.NoNewPrivs,
			OOMScoreAdj:     p.OOMScoreAdj,
		},
		Root:     Root{Path: RootfsDir},
		Hostname: name,
		Mounts:   defaultMounts(),
		Annotations: map[string]string{
			"org.opencontainers.image.title": string(im.Name),
			"io.rkt-ng.image.id":             in.ImageID,
			"io.rkt-ng.app.name":             name,
		},
		Linux: Linux{
			Namespaces: []Namespace{
				{Type: "pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}, {Type: "network"}, {Type: "cgroup"},
			},
			Resources:     resources(limits),
			Seccomp:       sc,
			MaskedPaths:   podsetup.MaskedPaths(),
			ReadonlyPaths: podsetup.ReadOnlyPaths(),
		},
	}
	return s, nil
}

// widening names the isolators ConfineImage refuses: those of the image
// (not named in user) that ask for more than the default confinement.
func widening(isos types.Isolators, user []string) []string {
	var out []string
	for _, iso := range isos {
		if slices.Contains(user, iso.Name.String()) {
			continue
		}
		switch v := iso.Value().(type) {
		case *types.LinuxCapabilitiesRetainSet, *types.LinuxSeccompRetainSet:
			out = append(out, iso.Name.String())
		case *types.LinuxNoNewPrivileges:
			if !bool(*v) {
				out = append(out, iso.Name.String()+"=false")
			}
		case *types.LinuxOOMScoreAdj:
			if int(*v) < 0 {
				out = append(out, fmt.Sprintf("%s=%d", iso.Name, int(*v)))
			}
		}
	}
	return out
}

// capabilities gives the sets stage2/caps.Apply gives: root holds the whole
// set; another user holds it (ambient too) only when it came from a retain
// set, and is otherwise only bounded by it.
func capabilities(p stage2.Proc) *Capabilities {
	set := p.Caps
	if set == nil {
		set = []string{}
	}
	c := &Capabilities{Bounding: set, Effective: []string{}, Inheritable: []string{}, Permitted: []string{}, Ambient: []string{}}
	switch {
	case p.UID == 0:
		c.Effective, c.Inheritable, c.Permitted = set, set, set
	case p.CapsRetained:
		c.Effective, c.Inheritable, c.Permitted, c.Ambient = set, set, set, set
	}
	return c
}

// defaultMounts are the pod's /proc, /dev (appc's nodes, which runc and crun
// create), /sys read-only and the cgroup view, as the ns flavor gives them.
func defaultMounts() []Mount {
	return []Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
}

// resources maps the app's cgroup limits; every device is denied except
// the runtime's defaults (null, zero, full, random, urandom, tty, pts).
func resources(l cgroups.Limits) *Resources {
	r := &Resources{Devices: []DeviceRule{{Allow: false, Access: "rwm"}}}
	if l.MemoryBytes != nil {
		r.Memory = &Memory{Limit: l.MemoryBytes}
	}
	if l.CPUMilli != nil || l.CPUShares != nil {
		r.CPU = &CPU{Shares: l.CPUShares}
		if l.CPUMilli != nil {
			q := cgroups.MilliToQuota(*l.CPUMilli)
			period := uint64(cgroups.CFSPeriodUS)
			r.CPU.Quota, r.CPU.Period = &q, &period
		}
	}
	return r
}

// archNames are libseccomp's names of the architectures stage2/seccomp
// filters, keyed by GOARCH.
var archNames = map[string]string{"amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64"}

// seccompProfile turns stage2's seccomp set into a libseccomp profile that
// lets the same syscalls through: blocked ones fail with the isolator's
// errno, or kill the process when it has none. clone3 fails with ENOSYS
// when blocked, as under stage2, so that libc falls back to clone. A nil
// set, or a retain set of @all, is no filter.
func seccompProfile(s *stage2.Seccomp) (*Seccomp, error) {
	if s == nil || (s.Retain && slices.Contains(s.Syscalls, seccomp.GroupAll)) {
		return nil, nil
	}
	arch, ok := archNames[runtime.GOARCH]
	if !ok {
		return nil, fmt.Errorf("seccomp: unsupported architecture %s", runtime.GOARCH)
	}
	if _, err := seccomp.Build(seccomp.Retain, s.Syscalls, s.Errno); s.Retain && err != nil {
		return nil, err
	}
	if _, err := seccomp.Build(seccomp.Remove, s.Syscalls, s.Errno); !s.Retain && err != nil {
		return nil, err
	}
	blocked := "SCMP_ACT_KILL_PROCESS"
	var errno *uint
	if s.Errno != "" {
		e, err := seccomp.ParseErrno(s.Errno)
		if err != nil {
			return nil, err
		}
		n := uint(e)
		errno, blocked = &n, "SCMP_ACT_ERRNO"
	}
	enosys := uint(38) // ENOSYS
	clone3 := SyscallActions{Names: []string{"clone3"}, Action: "SCMP_ACT_ERRNO", ErrnoRet: &enosys}
	// Retain mode: Allowed lists what passes. Remove mode: the set's
	// syscalls (Allowed in retain mode lists them with the essential ones)
	// are blocked, except the essential ones, which are never blocked.
	listed, err := seccomp.Allowed(seccomp.Retain, s.Syscalls)
	if err != nil {
		return nil, err
	}
	p := &Seccomp{Architectures: []string{arch}}
	if s.Retain {
		p.DefaultAction, p.DefaultErrnoRet = blocked, errno
		p.Syscalls = []SyscallActions{{Names: listed, Action: "SCMP_ACT_ALLOW"}}
		if !slices.Contains(listed, "clone3") {
			p.Syscalls = append(p.Syscalls, clone3)
		}
		return p, nil
	}
	essential := seccomp.Essential()
	var deny []string
	for _, n := range listed {
		if !slices.Contains(essential, n) {
			deny = append(deny, n)
		}
	}
	if len(deny) == 0 {
		return nil, nil
	}
	p.DefaultAction = "SCMP_ACT_ALLOW"
	if slices.Contains(deny, "clone3") {
		deny = slices.DeleteFunc(deny, func(n string) bool { return n == "clone3" })
		p.Syscalls = append(p.Syscalls, clone3)
	}
	if len(deny) > 0 {
		p.Syscalls = append(p.Syscalls, SyscallActions{Names: deny, Action: blocked, ErrnoRet: errno})
	}
	return p, nil
}
