package cri

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func podConfig() *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "ns", Uid: "u1", Attempt: 2},
		Hostname:     "web-0",
		LogDirectory: "/var/log/pods/ns_web_u1",
		DnsConfig:    &runtimeapi.DNSConfig{Servers: []string{"10.0.0.10"}, Searches: []string{"ns.svc.cluster.local"}, Options: []string{"ndots:5"}},
		Linux:        &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"net.core.somaxconn": "1024"}},
		PortMappings: []*runtimeapi.PortMapping{
			{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: 8080},
			{Protocol: runtimeapi.Protocol_UDP, ContainerPort: 53, HostPort: 5353, HostIp: "127.0.0.1"},
			{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 9000}, // not published
		},
		Labels:      map[string]string{"app": "web"},
		Annotations: map[string]string{"note": "x"},
	}
}

func TestSandboxArgs(t *testing.T) {
	args, meta, err := sandboxArgs(DefaultConfig(), podConfig(), "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"--stop-timeout=30s", "--net=default", "--hostname=web-0", "--ipc=private", "--dns=10.0.0.10", "--dns-search=ns.svc.cluster.local",
		"--dns-opt=ndots:5", "--port=tcp-80-8080:tcp:80:0.0.0.0:8080", "--port=udp-53-5353:udp:53:127.0.0.1:5353",
		"--sysctl=net.core.somaxconn=1024", "--user-label=app=web",
	}
	if args[0] != "app" || args[1] != "sandbox" || !strings.HasPrefix(args[2], "--annotation="+sandboxAnnotation+"=") {
		t.Fatalf("args start %q", args[:3])
	}
	if !slices.Equal(args[3:], want) {
		t.Errorf("args\n got %q\nwant %q", args[3:], want)
	}
	var back sandboxMeta
	if err := json.Unmarshal([]byte(strings.TrimPrefix(args[2], "--annotation="+sandboxAnnotation+"=")), &back); err != nil {
		t.Fatal(err)
	}
	if back.Name != "web" || back.Namespace != "ns" || back.UID != "u1" || back.Attempt != 2 || back.LogDirectory != meta.LogDirectory || back.Labels["app"] != "web" {
		t.Errorf("metadata round trip: %+v", back)
	}

	// Host network: --net=host, no port forwards; IPC NODE: --ipc=parent.
	pc := podConfig()
	pc.Linux = &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE},
	}}
	args, _, err = sandboxArgs(Config{Network: "mynet", PodAnnotationsPassThrough: true}, pc, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(args, "--net=host") || !slices.Contains(args, "--ipc=parent") || !slices.Contains(args, "--user-annotation=note=x") {
		t.Errorf("host network args %q", args)
	}
	for _, a := range args {
		if strings.HasPrefix(a, "--port") {
			t.Errorf("host network sandbox got %s", a)
		}
	}
}

func TestSandboxArgsRefused(t *testing.T) {
	for name, tc := range map[string]struct {
		mod     func(*runtimeapi.PodSandboxConfig)
		handler string
		code    codes.Code
	}{
		"no metadata":  {func(c *runtimeapi.PodSandboxConfig) { c.Metadata = nil }, "", codes.InvalidArgument},
		"no uid":       {func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Uid = "" }, "", codes.InvalidArgument},
		"handler":      {func(c *runtimeapi.PodSandboxConfig) {}, "kata", codes.InvalidArgument},
		"sctp":         {func(c *runtimeapi.PodSandboxConfig) { c.PortMappings[0].Protocol = runtimeapi.Protocol_SCTP }, "", codes.Unimplemented},
		"bad port":     {func(c *runtimeapi.PodSandboxConfig) { c.PortMappings[0].ContainerPort = 70000 }, "", codes.InvalidArgument},
		"bad host ip":  {func(c *runtimeapi.PodSandboxConfig) { c.PortMappings[0].HostIp = "nope" }, "", codes.InvalidArgument},
		"bad dns":      {func(c *runtimeapi.PodSandboxConfig) { c.DnsConfig.Servers = []string{"x y"} }, "", codes.InvalidArgument},
		"bad search":   {func(c *runtimeapi.PodSandboxConfig) { c.DnsConfig.Searches = []string{"a,b"} }, "", codes.InvalidArgument},
		"bad hostname": {func(c *runtimeapi.PodSandboxConfig) { c.Hostname = "a/b" }, "", codes.InvalidArgument},
		"ipc sysctl": {func(c *runtimeapi.PodSandboxConfig) {
			c.Linux = &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"kernel.shm_rmid_forced": "1"}}
		}, "", codes.Unimplemented},
		"sysctl on host network": {func(c *runtimeapi.PodSandboxConfig) {
			c.Linux = &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"net.core.somaxconn": "1024"},
				SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}}
		}, "", codes.InvalidArgument},
		"host pid": {func(c *runtimeapi.PodSandboxConfig) {
			c.Linux = &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_NODE}}}
		}, "", codes.Unimplemented},
	} {
		pc := podConfig()
		tc.mod(pc)
		_, _, err := sandboxArgs(DefaultConfig(), pc, tc.handler)
		if status.Code(err) != tc.code {
			t.Errorf("%s: %v, want code %s", name, err, tc.code)
		}
	}
}

func TestFilters(t *testing.T) {
	labels := map[string]string{"app": "web", "tier": "front"}
	ready := runtimeapi.PodSandboxState_SANDBOX_READY
	for i, tc := range []struct {
		f    *runtimeapi.PodSandboxFilter
		want bool
	}{
		{nil, true},
		{&runtimeapi.PodSandboxFilter{Id: "abcd"}, true},
		{&runtimeapi.PodSandboxFilter{Id: "abce"}, false},
		{&runtimeapi.PodSandboxFilter{State: &runtimeapi.PodSandboxStateValue{State: ready}}, true},
		{&runtimeapi.PodSandboxFilter{State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY}}, false},
		{&runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "web"}}, true},
		{&runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "web", "tier": "back"}}, false},
		{&runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"missing": ""}}, false},
	} {
		if got := sandboxMatches(tc.f, "abcdef", ready, labels); got != tc.want {
			t.Errorf("sandbox filter %d: %v, want %v", i, got, tc.want)
		}
	}
	running := runtimeapi.ContainerState_CONTAINER_RUNNING
	for i, tc := range []struct {
		f    *runtimeapi.ContainerFilter
		want bool
	}{
		{nil, true},
		{&runtimeapi.ContainerFilter{Id: "c0ff"}, true},
		{&runtimeapi.ContainerFilter{Id: "dead"}, false},
		{&runtimeapi.ContainerFilter{PodSandboxId: "abc"}, true},
		{&runtimeapi.ContainerFilter{PodSandboxId: "xyz"}, false},
		{&runtimeapi.ContainerFilter{State: &runtimeapi.ContainerStateValue{State: running}}, true},
		{&runtimeapi.ContainerFilter{State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_EXITED}}, false},
		{&runtimeapi.ContainerFilter{LabelSelector: map[string]string{"tier": "front"}}, true},
		{&runtimeapi.ContainerFilter{LabelSelector: map[string]string{"tier": "x"}}, false},
	} {
		if got := containerMatches(tc.f, "c0ffee", "abcdef", running, labels); got != tc.want {
			t.Errorf("container filter %d: %v, want %v", i, got, tc.want)
		}
	}
}

func TestAppNameFor(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":           "nginx-3",
		"My_Container.v2": "my-container-v2-3",
		"--":              "container-3",
		"a--b":            "a-b-3",
	} {
		if got := appNameFor(in, 3); got != want {
			t.Errorf("appNameFor(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestContainerSpec(t *testing.T) {
	id := strings.Repeat("ab", 32)
	sb := sandboxMeta{LogDirectory: "/var/log/pods/x"}
	cc := &runtimeapi.ContainerConfig{
		Metadata:   &runtimeapi.ContainerMetadata{Name: "app", Attempt: 1},
		Image:      &runtimeapi.ImageSpec{Image: "busybox"},
		Args:       []string{"-c", "echo hi"},
		WorkingDir: "/srv",
		Envs:       []*runtimeapi.KeyValue{{Key: "A", Value: []byte("1")}},
		Mounts:     []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "/tmp/data", Readonly: true}},
		LogPath:    "app/0.log",
		Labels:     map[string]string{"l": "1"},
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20, CpuShares: 512, CpuQuota: 50000, CpuPeriod: 100000},
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				RunAsUser: &runtimeapi.Int64Value{Value: 1000}, RunAsGroup: &runtimeapi.Int64Value{Value: 100},
				SupplementalGroups: []int64{5, 6}, ReadonlyRootfs: true,
				MaskedPaths: []string{"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
					"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"},
				ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
				Capabilities:  &runtimeapi.Capability{DropCapabilities: []string{"NET_RAW"}},
				Seccomp:       &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined},
			},
		},
	}
	spec, meta, err := containerSpec(id, cc, sb, "sha512-0123", []string{"/bin/sh"})
	if err != nil {
		t.Fatal(err)
	}
	if spec.Image != "sha512-0123" || spec.Exec != "/bin/sh" || !slices.Equal(spec.Args, []string{"-c", "echo hi"}) || !spec.HasArgs {
		t.Errorf("exec %q args %q (image %q)", spec.Exec, spec.Args, spec.Image)
	}
	if spec.WorkingDir != "/srv" || !slices.Equal(spec.Environment, []string{"A=1"}) || spec.User != "1000" || spec.Group != "100" ||
		!slices.Equal(spec.SupplementaryGIDs, []int{5, 6}) || !spec.ReadOnlyRootfs {
		t.Errorf("spec %+v", spec)
	}
	if spec.Memory != "67108864" || spec.CPU != "500m" || spec.CPUShares == nil || *spec.CPUShares != 512 {
		t.Errorf("resources: memory %q cpu %q shares %v", spec.Memory, spec.CPU, spec.CPUShares)
	}
	if !slices.Equal(spec.CapsRemove, []string{"CAP_NET_RAW"}) || len(spec.CapsRetain) != 0 || spec.Seccomp != unconfinedSeccomp {
		t.Errorf("caps retain %q remove %q seccomp %q", spec.CapsRetain, spec.CapsRemove, spec.Seccomp)
	}
	if len(spec.Volumes) != 1 || spec.Volumes[0].Kind != "host" || spec.Volumes[0].Source != "/tmp/data" || !*spec.Volumes[0].ReadOnly ||
		len(spec.Mounts) != 1 || spec.Mounts[0].Target != "/data" || spec.Mounts[0].Volume != spec.Volumes[0].Name.String() {
		t.Errorf("volumes %+v mounts %+v", spec.Volumes, spec.Mounts)
	}
	if meta.LogPath != "/var/log/pods/x/app/0.log" || meta.Image != "busybox" || meta.ImageRef != "sha512-0123" {
		t.Errorf("meta %+v", meta)
	}
	if spec.Annotations[containerIDAnnotation] != id {
		t.Errorf("annotations %v", spec.Annotations)
	}
	var back containerMeta
	if err := json.Unmarshal([]byte(spec.Annotations[containerMetaAnnotation]), &back); err != nil || back.Name != "app" || back.Labels["l"] != "1" {
		t.Errorf("meta annotation %v: %+v", err, back)
	}

	// command replaces the entrypoint; args follow it.
	cc2 := &runtimeapi.ContainerConfig{Metadata: cc.Metadata, Image: cc.Image, Command: []string{"/bin/echo"}, Args: []string{"a"}}
	if spec, _, err := containerSpec(id, cc2, sb, "img", []string{"/ep"}); err != nil || spec.Exec != "/bin/echo" || !slices.Equal(spec.Args, []string{"a"}) {
		t.Errorf("command: %v %q %q", err, spec.Exec, spec.Args)
	}
	// Neither: the image's own exec. No seccomp profile: unconfined.
	cc3 := &runtimeapi.ContainerConfig{Metadata: cc.Metadata, Image: cc.Image}
	if spec, _, err := containerSpec(id, cc3, sb, "img", []string{"/ep"}); err != nil || spec.Exec != "" || spec.HasArgs || spec.Seccomp != unconfinedSeccomp {
		t.Errorf("image exec: %v %q %v seccomp %q", err, spec.Exec, spec.HasArgs, spec.Seccomp)
	}
	// RuntimeDefault, also by the deprecated path: rkt's default filter.
	for _, sc := range []*runtimeapi.LinuxContainerSecurityContext{
		{Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}},
		{SeccompProfilePath: "runtime/default"},
	} {
		cc4 := &runtimeapi.ContainerConfig{Metadata: cc.Metadata, Image: cc.Image, Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: sc}}
		if spec, _, err := containerSpec(id, cc4, sb, "img", nil); err != nil || spec.Seccomp != "" {
			t.Errorf("runtime default %v: %v seccomp %q", sc, err, spec.Seccomp)
		}
	}
}

func TestContainerSpecRefused(t *testing.T) {
	id := strings.Repeat("cd", 32)
	base := func() *runtimeapi.ContainerConfig {
		return &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "a"}, Image: &runtimeapi.ImageSpec{Image: "i"}}
	}
	sec := func(sc *runtimeapi.LinuxContainerSecurityContext) *runtimeapi.LinuxContainerConfig {
		return &runtimeapi.LinuxContainerConfig{SecurityContext: sc}
	}
	for name, tc := range map[string]struct {
		mod  func(*runtimeapi.ContainerConfig)
		code codes.Code
	}{
		"log path escapes": {func(c *runtimeapi.ContainerConfig) { c.LogPath = "../../etc/x" }, codes.InvalidArgument},
		"relative workdir": {func(c *runtimeapi.ContainerConfig) { c.WorkingDir = "srv" }, codes.InvalidArgument},
		"bad env":          {func(c *runtimeapi.ContainerConfig) { c.Envs = []*runtimeapi.KeyValue{{Key: "A=B"}} }, codes.InvalidArgument},
		"relative mount": {func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "data", HostPath: "/x"}}
		}, codes.InvalidArgument},
		"propagation": {func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/d", HostPath: "/x", Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}}
		}, codes.Unimplemented},
		"devices": {func(c *runtimeapi.ContainerConfig) { c.Devices = []*runtimeapi.Device{{HostPath: "/dev/null"}} }, codes.Unimplemented},
		"privileged": {func(c *runtimeapi.ContainerConfig) {
			c.Linux = sec(&runtimeapi.LinuxContainerSecurityContext{Privileged: true})
		}, codes.Unimplemented},
		"seccomp localhost": {func(c *runtimeapi.ContainerConfig) {
			c.Linux = sec(&runtimeapi.LinuxContainerSecurityContext{Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/p.json"}})
		}, codes.Unimplemented},
		"seccomp localhost path": {func(c *runtimeapi.ContainerConfig) {
			c.Linux = sec(&runtimeapi.LinuxContainerSecurityContext{SeccompProfilePath: "localhost/p.json"})
		}, codes.Unimplemented},
		"bad cap": {func(c *runtimeapi.ContainerConfig) {
			c.Linux = sec(&runtimeapi.LinuxContainerSecurityContext{Capabilities: &runtimeapi.Capability{AddCapabilities: []string{"NOT_A_CAP"}}})
		}, codes.InvalidArgument},
		"add all": {func(c *runtimeapi.ContainerConfig) {
			c.Linux = sec(&runtimeapi.LinuxContainerSecurityContext{Capabilities: &runtimeapi.Capability{AddCapabilities: []string{"ALL"}}})
		}, codes.Unimplemented},
		"group without user": {func(c *runtimeapi.ContainerConfig) {
			c.Linux = sec(&runtimeapi.LinuxContainerSecurityContext{RunAsGroup: &runtimeapi.Int64Value{Value: 5}})
		}, codes.InvalidArgument},
		"masked path": {func(c *runtimeapi.ContainerConfig) {
			c.Linux = sec(&runtimeapi.LinuxContainerSecurityContext{MaskedPaths: []string{"/proc/kcore", "/bin/ls"}})
		}, codes.Unimplemented},
		"readonly path": {func(c *runtimeapi.ContainerConfig) {
			c.Linux = sec(&runtimeapi.LinuxContainerSecurityContext{ReadonlyPaths: []string{"/etc"}})
		}, codes.Unimplemented},
		"negative memory": {func(c *runtimeapi.ContainerConfig) {
			c.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: -1}}
		}, codes.InvalidArgument},
	} {
		cc := base()
		tc.mod(cc)
		_, _, err := containerSpec(id, cc, sandboxMeta{LogDirectory: "/var/log/pods/x"}, "i", nil)
		if status.Code(err) != tc.code {
			t.Errorf("%s: %v, want code %s", name, err, tc.code)
		}
	}
}

func TestCapsSpec(t *testing.T) {
	for name, tc := range map[string]struct {
		add, drop      []string
		retain, remove []string
	}{
		"none":        {nil, nil, nil, nil},
		"drop":        {nil, []string{"chown", "CAP_KILL"}, nil, []string{"CAP_CHOWN", "CAP_KILL"}},
		"add":         {[]string{"SYS_ADMIN"}, []string{"NET_RAW"}, append(without(defaultCaps, "CAP_NET_RAW"), "CAP_SYS_ADMIN"), nil},
		"drop all":    {[]string{"NET_ADMIN"}, []string{"ALL"}, []string{"CAP_NET_ADMIN"}, nil},
		"drop all 0":  {nil, []string{"ALL"}, nil, defaultCaps},
		"add default": {[]string{"CHOWN"}, nil, defaultCaps, nil},
	} {
		retain, remove, err := capsSpec(tc.add, tc.drop, nil)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !slices.Equal(retain, tc.retain) || !slices.Equal(remove, tc.remove) {
			t.Errorf("%s: retain %q remove %q, want %q %q", name, retain, remove, tc.retain, tc.remove)
		}
	}
}

func without(in []string, drop string) []string {
	var out []string
	for _, s := range in {
		if s != drop {
			out = append(out, s)
		}
	}
	return out
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	c, err := LoadConfig(filepath.Join(dir, "absent.json"))
	if err != nil || c.Network != "default" {
		t.Fatalf("absent config: %+v %v", c, err)
	}
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"network":"podnet","registryMirrors":{"docker.io":["http://127.0.0.1:5000"]},"podAnnotationsPassThrough":true}`), 0o644)
	c, err = LoadConfig(good)
	if err != nil || c.Network != "podnet" || c.RegistryMirrors["docker.io"][0] != "http://127.0.0.1:5000" || !c.PodAnnotationsPassThrough {
		t.Errorf("good config: %+v %v", c, err)
	}
	for name, body := range map[string]string{
		"unknown field": `{"netwrk":"x"}`,
		"bad mirror":    `{"registryMirrors":{"docker.io":["ftp://x"]}}`,
		"host network":  `{"network":"host"}`,
		"cni dir":       `{"cniConfDir":"/etc/cni/conf"}`,
		"not json":      `{`,
	} {
		p := filepath.Join(dir, "bad.json")
		os.WriteFile(p, []byte(body), 0o644)
		if _, err := LoadConfig(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
