package cri

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/appc/spec/schema/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/rkt-ng/rkt/stage0"
	"github.com/rkt-ng/rkt/stage0/images"
)

// defaultCaps are the capabilities an app gets without a capability
// isolator (stage2's caps.DefaultSet: appc's and Docker's 14).
var defaultCaps = []string{
	"CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_KILL", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETFCAP", "CAP_SYS_CHROOT",
}

// allCaps are the names of Linux's capabilities.
var allCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
	"CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
	"CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// maskedPaths are the paths a container may ask to have masked: those
// rkt's stage1 masks for every app (runc's and Docker's defaults, rkt's),
// and the kubelet's defaults, of which /proc/asound, /proc/timer_stats
// and /sys/devices/virtual/powercap are not masked by rkt (docs/cri.md).
var maskedPaths = []string{
	"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats",
	"/proc/acpi", "/proc/scsi", "/sys/firmware", "/proc/interrupts", "/proc/config.gz", "/proc/kallsyms",
	"/proc/kmem", "/proc/mem", "/sys/hypervisor", "/sys/module", "/sys/power",
	"/proc/asound", "/proc/timer_stats", "/sys/devices/virtual/powercap",
}

// readonlyPaths are the paths rkt's stage1 makes read-only for every app
// (the kubelet's default list).
var readonlyPaths = []string{"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs"}

// checkPaths refuses masked or read-only paths beyond those rkt applies to
// every app: rkt has no per-app list.
func checkPaths(kind string, asked, have []string) error {
	for _, p := range asked {
		if !slices.Contains(have, path.Clean(p)) {
			return status.Errorf(codes.Unimplemented, "%s path %s: rkt applies a fixed list of %s paths to every app, without it", kind, p, kind)
		}
	}
	return nil
}

// unconfinedSeccomp is the nearest rkt has to no seccomp filter for one
// app: a remove set of no syscall (appc's empty group). Every native
// syscall is allowed; the filter stage2 installs still refuses other
// architectures' calls.
const unconfinedSeccomp = "mode=remove,@appc.io/empty"

// imageEntrypoint returns the Docker entrypoint an image kept from its
// conversion (appc.io/docker/entrypoint), or nil: the kubelet's args
// replace only the image's Cmd.
func (s *Server) imageEntrypoint(ctx context.Context, image string) ([]string, error) {
	st, err := s.stage0.Store()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "image store: %v", err)
	}
	id, err := s.stage0.Images().Fetch(ctx, st, image, images.FetchOptions{PullPolicy: "never"})
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "image %s: %v", image, err)
	}
	im, err := st.Manifest(id)
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "image %s: %v", image, err)
	}
	if v, ok := im.Annotations.Get("appc.io/docker/entrypoint"); ok {
		var ep []string
		if json.Unmarshal([]byte(v), &ep) == nil {
			return ep, nil
		}
	}
	if im.App != nil && len(im.App.Exec) > 0 {
		if _, ok := im.Annotations.Get("appc.io/docker/cmd"); !ok {
			// An appc image: its exec is the entrypoint.
			return []string{im.App.Exec[0]}, nil
		}
	}
	return nil, nil
}

// containerSpec maps a ContainerConfig to the AppSpec of AppAdd and the
// metadata kept with the app.
func containerSpec(id string, cc *runtimeapi.ContainerConfig, sb sandboxMeta, image string, entrypoint []string) (stage0.AppSpec, containerMeta, error) {
	md := cc.GetMetadata()
	meta := containerMeta{
		Name: md.GetName(), Attempt: md.GetAttempt(), Labels: cc.Labels, Annotations: cc.Annotations,
		Image: cc.GetImage().GetImage(), ImageRef: image,
	}
	spec := stage0.AppSpec{Image: image}
	if cc.LogPath != "" {
		if sb.LogDirectory == "" || !filepath.IsAbs(sb.LogDirectory) {
			return spec, meta, status.Errorf(codes.InvalidArgument, "log path %q: the sandbox has no absolute log directory", cc.LogPath)
		}
		p := filepath.Join(sb.LogDirectory, cc.LogPath)
		if !strings.HasPrefix(p, filepath.Clean(sb.LogDirectory)+"/") {
			return spec, meta, status.Errorf(codes.InvalidArgument, "log path %q leaves the log directory", cc.LogPath)
		}
		meta.LogPath = p
		spec.CRILogPath = p
	}
	// Command replaces the image's entrypoint, args its Cmd.
	var argv []string
	switch {
	case len(cc.Command) > 0:
		argv = append(append(argv, cc.Command...), cc.Args...)
	case len(cc.Args) > 0:
		argv = append(append(argv, entrypoint...), cc.Args...)
	}
	if len(argv) > 0 {
		if argv[0] == "" {
			return spec, meta, status.Error(codes.InvalidArgument, "command: empty program name")
		}
		spec.Exec, spec.Args, spec.HasArgs = argv[0], argv[1:], true
	}
	spec.WorkingDir = cc.WorkingDir
	if spec.WorkingDir != "" && !path.IsAbs(spec.WorkingDir) {
		return spec, meta, status.Errorf(codes.InvalidArgument, "working dir %q is not absolute", spec.WorkingDir)
	}
	for _, kv := range cc.Envs {
		if kv.Key == "" || strings.Contains(kv.Key, "=") {
			return spec, meta, status.Errorf(codes.InvalidArgument, "env %q: malformed name", kv.Key)
		}
		spec.Environment = append(spec.Environment, kv.Key+"="+string(kv.Value))
	}
	spec.Annotations = map[string]string{containerIDAnnotation: id}
	if len(cc.Devices) > 0 {
		return spec, meta, status.Error(codes.Unimplemented, "devices: rkt-ng has no way to give an app a host device")
	}
	// stdin stays open for attach clients, tty gives the app a terminal
	// (stage0/cri/streams).
	spec.Stdin, spec.StdinOnce, spec.TTY = cc.Stdin, cc.Stdin && cc.StdinOnce, cc.Tty
	for i, m := range cc.Mounts {
		if !filepath.IsAbs(m.HostPath) || !path.IsAbs(m.ContainerPath) {
			return spec, meta, status.Errorf(codes.InvalidArgument, "mount %q -> %q: both paths must be absolute", m.HostPath, m.ContainerPath)
		}
		if m.Propagation != runtimeapi.MountPropagation_PROPAGATION_PRIVATE {
			return spec, meta, status.Errorf(codes.Unimplemented, "mount %s: propagation %s; rkt binds are private", m.ContainerPath, m.Propagation)
		}
		if m.Image != nil || len(m.UidMappings) > 0 || len(m.GidMappings) > 0 {
			return spec, meta, status.Errorf(codes.Unimplemented, "mount %s: image mounts and idmapped mounts are not supported", m.ContainerPath)
		}
		// SelinuxRelabel: CreateContainer refuses it where SELinux is on;
		// elsewhere there is nothing to relabel.
		name := fmt.Sprintf("cri-%s-%d", id[:12], i)
		vn, err := types.NewACName(name)
		if err != nil {
			return spec, meta, status.Errorf(codes.Internal, "volume name: %v", err)
		}
		ro, rec := m.Readonly, true
		spec.Volumes = append(spec.Volumes, types.Volume{Name: *vn, Kind: "host", Source: filepath.Clean(m.HostPath), ReadOnly: &ro, Recursive: &rec})
		spec.Mounts = append(spec.Mounts, stage0.Mount{Volume: name, Target: path.Clean(m.ContainerPath)})
		meta.Mounts = append(meta.Mounts, mountMeta{ContainerPath: m.ContainerPath, HostPath: m.HostPath, ReadOnly: m.Readonly})
		meta.Volumes = append(meta.Volumes, name)
	}
	if err := linuxSpec(cc.GetLinux(), &spec, &meta); err != nil {
		return spec, meta, err
	}
	b, err := json.Marshal(meta)
	if err != nil {
		return spec, meta, status.Errorf(codes.InvalidArgument, "container metadata: %v", err)
	}
	spec.Annotations[containerMetaAnnotation] = string(b)
	return spec, meta, nil
}

// linuxSpec maps the Linux part of a ContainerConfig: resources and the
// security context.
func linuxSpec(l *runtimeapi.LinuxContainerConfig, spec *stage0.AppSpec, meta *containerMeta) error {
	// No seccomp profile means unconfined in the CRI (the kubelet sends
	// RuntimeDefault when it wants the runtime's filter).
	spec.Seccomp = unconfinedSeccomp
	if l == nil {
		return nil
	}
	if err := resourcesSpec(l.Resources, spec, meta); err != nil {
		return err
	}
	sc := l.SecurityContext
	if sc == nil {
		return nil
	}
	if sc.Privileged {
		return status.Error(codes.Unimplemented, "privileged containers are not supported: rkt-ng has no grant for host devices and a writable /sys")
	}
	if ns := sc.NamespaceOptions; ns != nil && ns.Pid == runtimeapi.NamespaceMode_NODE {
		return status.Error(codes.Unimplemented, "pid namespace mode NODE: apps share their pod's PID namespace")
	}
	switch {
	case sc.RunAsUser != nil:
		spec.User = strconv.FormatInt(sc.RunAsUser.Value, 10)
	case sc.RunAsUsername != "":
		spec.User = sc.RunAsUsername
	}
	if sc.RunAsGroup != nil && sc.RunAsUser == nil && sc.RunAsUsername == "" {
		return status.Error(codes.InvalidArgument, "run_as_group without run_as_user or run_as_username")
	}
	if err := checkPaths("masked", sc.MaskedPaths, maskedPaths); err != nil {
		return err
	}
	if err := checkPaths("readonly", sc.ReadonlyPaths, append(readonlyPaths, maskedPaths...)); err != nil {
		return err
	}
	if sc.RunAsGroup != nil {
		spec.Group = strconv.FormatInt(sc.RunAsGroup.Value, 10)
	}
	for _, g := range sc.SupplementalGroups {
		if g < 0 || g > 1<<31-1 {
			return status.Errorf(codes.InvalidArgument, "supplemental group %d out of range", g)
		}
		spec.SupplementaryGIDs = append(spec.SupplementaryGIDs, int(g))
	}
	spec.ReadOnlyRootfs = sc.ReadonlyRootfs
	if c := sc.Capabilities; c != nil {
		retain, remove, err := capsSpec(c.AddCapabilities, c.DropCapabilities, c.AddAmbientCapabilities)
		if err != nil {
			return err
		}
		spec.CapsRetain, spec.CapsRemove = retain, remove
	}
	profile := runtimeapi.SecurityProfile_Unconfined
	switch p := sc.Seccomp; {
	case p != nil:
		profile = p.ProfileType
	case sc.SeccompProfilePath == "runtime/default" || sc.SeccompProfilePath == "docker/default":
		// The deprecated field's names.
		profile = runtimeapi.SecurityProfile_RuntimeDefault
	case strings.HasPrefix(sc.SeccompProfilePath, "localhost/"):
		profile = runtimeapi.SecurityProfile_Localhost
	}
	switch profile {
	case runtimeapi.SecurityProfile_RuntimeDefault:
		spec.Seccomp = ""
	case runtimeapi.SecurityProfile_Unconfined:
	default:
		return status.Error(codes.Unimplemented, "seccomp localhost profiles are not supported: rkt's seccomp isolators are syscall sets, not OCI profiles")
	}
	if p := sc.Apparmor; p != nil && p.ProfileType == runtimeapi.SecurityProfile_Localhost {
		return status.Error(codes.Unimplemented, "apparmor profiles are not supported")
	}
	if sc.SelinuxOptions != nil && (sc.SelinuxOptions.Type != "" || sc.SelinuxOptions.Level != "") {
		return status.Error(codes.Unimplemented, "selinux options are not supported")
	}
	return nil
}

// capsSpec maps CRI's add and drop lists (relative to the default set) to
// rkt's retain or remove set.
func capsSpec(add, drop, ambient []string) (retain, remove []string, err error) {
	if len(ambient) > 0 {
		return nil, nil, status.Error(codes.Unimplemented, "ambient capabilities are not supported")
	}
	norm := func(in []string) ([]string, bool, error) {
		var out []string
		all := false
		for _, c := range in {
			c = strings.ToUpper(strings.TrimSpace(c))
			if c == "ALL" {
				all = true
				continue
			}
			if !strings.HasPrefix(c, "CAP_") {
				c = "CAP_" + c
			}
			if !slices.Contains(allCaps, c) {
				return nil, false, status.Errorf(codes.InvalidArgument, "capability %q: not a Linux capability", c)
			}
			out = append(out, c)
		}
		return out, all, nil
	}
	a, addAll, err := norm(add)
	if err != nil {
		return nil, nil, err
	}
	d, dropAll, err := norm(drop)
	if err != nil {
		return nil, nil, err
	}
	if addAll {
		return nil, nil, status.Error(codes.Unimplemented, "adding ALL capabilities is not supported (privileged apps are not)")
	}
	if len(a) == 0 && !dropAll {
		return nil, d, nil
	}
	set := map[string]bool{}
	if !dropAll {
		for _, c := range defaultCaps {
			set[c] = true
		}
	}
	for _, c := range a {
		set[c] = true
	}
	for _, c := range d {
		delete(set, c)
	}
	if len(set) == 0 {
		// Nothing to keep: remove every default capability.
		return nil, append([]string(nil), defaultCaps...), nil
	}
	for _, c := range append(append([]string(nil), defaultCaps...), a...) {
		if set[c] {
			retain = append(retain, c)
			delete(set, c)
		}
	}
	return retain, nil, nil
}

// resourcesSpec maps memory and CPU limits to rkt's isolators.
func resourcesSpec(r *runtimeapi.LinuxContainerResources, spec *stage0.AppSpec, meta *containerMeta) error {
	if r == nil {
		return nil
	}
	l := &limitsMeta{MemoryBytes: r.MemoryLimitInBytes, CPUShares: r.CpuShares, CPUQuota: r.CpuQuota, CPUPeriod: r.CpuPeriod}
	if r.MemoryLimitInBytes < 0 || r.CpuShares < 0 || r.CpuPeriod < 0 {
		return status.Error(codes.InvalidArgument, "resources: negative limit")
	}
	if r.MemoryLimitInBytes > 0 {
		spec.Memory = strconv.FormatInt(r.MemoryLimitInBytes, 10)
	}
	if r.CpuShares > 0 {
		// cgroup v1 shares range from 2 to 262144.
		v := int(min(max(r.CpuShares, 2), 262144))
		spec.CPUShares = &v
	}
	if r.CpuQuota > 0 {
		period := r.CpuPeriod
		if period == 0 {
			period = 100000
		}
		milli := max(r.CpuQuota*1000/period, 1)
		spec.CPU = strconv.FormatInt(milli, 10) + "m"
	}
	if r.OomScoreAdj != 0 {
		v := int(r.OomScoreAdj)
		spec.OOMScoreAdj = &v
	}
	if *l != (limitsMeta{}) {
		meta.Limits = l
	}
	return nil
}
