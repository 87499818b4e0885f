package kvm

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"github.com/google/go-cmp/cmp"

	"github.com/rkt-ng/rkt/manifests"
	"github.com/rkt-ng/rkt/pods/layout"
	"github.com/rkt-ng/rkt/stage1"
	"github.com/rkt-ng/rkt/stage1/kvm/channel"
)

// podManifest decodes a pod manifest with one app per isolator list.
func podManifest(t *testing.T, apps ...string) *schema.PodManifest {
	t.Helper()
	var ra []string
	for i, isos := range apps {
		ra = append(ra, `{"name": "a`+string(rune('0'+i))+`", "image": {"id": "sha512-`+strings.Repeat("0", 64)+`"},
			"app": {"exec": ["/x"], "user": "0", "group": "0", "isolators": [`+isos+`]}}`)
	}
	js := `{"acKind": "PodManifest", "acVersion": "0.8.11", "apps": [` + strings.Join(ra, ",") + `],
		"volumes": [{"name": "data", "kind": "host", "source": "/srv/data", "readOnly": true},
			{"name": "scratch", "kind": "empty"}]}`
	m, err := manifests.DecodePod([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

const (
	mem64  = `{"name": "resource/memory", "value": {"limit": "64Mi"}}`
	cpu1_5 = `{"name": "resource/cpu", "value": {"limit": "1500m"}}`
)

func TestSize(t *testing.T) {
	host := runtime.NumCPU()
	for _, tc := range []struct {
		name       string
		apps       []string
		mem, cpus  int
		errContain string
	}{
		{name: "defaults", apps: []string{""}, mem: overheadMiB + defaultAppMiB, cpus: host},
		{name: "memory limits", apps: []string{mem64, mem64}, mem: overheadMiB + 128, cpus: host},
		{name: "mixed", apps: []string{mem64, ""}, mem: overheadMiB + 64 + defaultAppMiB, cpus: host},
		{name: "cpu limit", apps: []string{cpu1_5}, mem: overheadMiB + defaultAppMiB, cpus: min(host, 2)},
		{name: "one app unlimited", apps: []string{cpu1_5, ""}, mem: overheadMiB + 2*defaultAppMiB, cpus: host},
		{name: "above the host", apps: []string{`{"name": "resource/memory", "value": {"limit": "64Ti"}}`}, errContain: "more than the host's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &pod{manifest: podManifest(t, tc.apps...)}
			mem, cpus, err := p.size()
			if tc.errContain != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errContain) {
					t.Fatalf("size() error %v, want %q", err, tc.errContain)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if mem != tc.mem || cpus != tc.cpus {
				t.Errorf("size() = %d MiB, %d CPUs; want %d MiB, %d CPUs", mem, cpus, tc.mem, tc.cpus)
			}
		})
	}
}

func TestStartRequest(t *testing.T) {
	dir := t.TempDir()
	m := podManifest(t, "")
	d := layout.Dir(dir)
	if err := os.WriteFile(d.PodManifest(), []byte("pod"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(d.AppInfo("a0"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.AppManifest("a0"), []byte("image"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &pod{dir: dir, manifest: m,
		args: stage1.RunArgs{UUID: "u-1", Net: "default", MDSToken: "secret", LocalConfig: "/etc/rkt", DisableSeccomp: true},
		opts: stage1.Options{DataDir: "/var/lib/rkt", StopTimeout: stage1.Duration(5e9)}}
	nics := []nic{{iface: channel.Interface{MAC: "02:00:00:00:00:01", Addrs: []string{"10.0.0.2/24"}}}}
	req, err := p.startRequest(nil, nics)
	if err != nil {
		t.Fatal(err)
	}
	rel := layout.Dir("")
	if diff := cmp.Diff([]string{rel.AppManifest("a0"), rel.MDSToken(), rel.PodManifest(), rel.Options()}, keys(req.Files)); diff != "" {
		t.Errorf("files mismatch (-want +got):\n%s", diff)
	}
	if string(req.Files[rel.MDSToken()]) != "secret" {
		t.Errorf("guest token %q, want the pod's", req.Files[rel.MDSToken()])
	}
	if string(req.Files[rel.Options()]) != `{"stopTimeout":"5s"}` {
		t.Errorf("guest options %s: want the host's without host paths", req.Files[rel.Options()])
	}
	wantMounts := []channel.Mount{{Tag: tagRootfs, Path: rel.Stage1Rootfs()}, {Tag: tagVolumes, Path: rel.SharedVolumes()},
		{Tag: "vol0", Path: "/srv/data", ReadOnly: true}}
	if diff := cmp.Diff(wantMounts, req.Mounts); diff != "" {
		t.Errorf("mounts mismatch (-want +got):\n%s", diff)
	}
	// The guest's stage1 shares the guest's network and gets no token or
	// host configuration.
	if diff := cmp.Diff([]string{"--net=host", "--disable-seccomp", "u-1"}, req.Args); diff != "" {
		t.Errorf("args mismatch (-want +got):\n%s", diff)
	}
	if req.Hostname != "rkt-u-1" || len(req.Interfaces) != 1 || req.Interfaces[0].MAC != "02:00:00:00:00:01" {
		t.Errorf("hostname %q, interfaces %+v", req.Hostname, req.Interfaces)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestGuestOptionsDNS(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    pod
		want string
	}{
		{"user mode", pod{args: stage1.RunArgs{Net: "host"}}, `{"dns":["10.0.2.3"]}`},
		{"user flags win", pod{args: stage1.RunArgs{Net: "host"}, opts: stage1.Options{DNS: []string{"1.1.1.1"}}}, `{"dns":["1.1.1.1"]}`},
		{"none", pod{args: stage1.RunArgs{Net: "none"}}, `{}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.p.guestOptions(nil)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Errorf("guestOptions = %s, want %s", b, tc.want)
			}
		})
	}
}

func TestShares(t *testing.T) {
	dir := t.TempDir()
	vol := filepath.Join(t.TempDir(), "v")
	if err := os.Mkdir(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	m := podManifest(t, "")
	m.Volumes = []types.Volume{{Name: "data", Kind: "host", Source: vol}}
	p := &pod{dir: dir, manifest: m}
	args, err := p.shares()
	if err != nil {
		t.Fatal(err)
	}
	d := layout.Dir(dir)
	want := []string{
		"-fsdev", "local,id=fs0,path=" + d.Stage1Rootfs() + ",security_model=passthrough,multidevs=remap",
		"-device", "virtio-9p-pci,fsdev=fs0,mount_tag=rootfs",
		"-fsdev", "local,id=fs1,path=" + d.SharedVolumes() + ",security_model=passthrough,multidevs=remap",
		"-device", "virtio-9p-pci,fsdev=fs1,mount_tag=volumes",
		"-fsdev", "local,id=fs2,path=" + vol + ",security_model=passthrough,multidevs=remap",
		"-device", "virtio-9p-pci,fsdev=fs2,mount_tag=vol0",
	}
	if diff := cmp.Diff(want, args); diff != "" {
		t.Errorf("shares mismatch (-want +got):\n%s", diff)
	}
	if err := os.Mkdir(vol+",x", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{filepath.Join(vol, "missing"), vol + ",x"} {
		m.Volumes = []types.Volume{{Name: "data", Kind: "host", Source: bad}}
		if _, err := p.shares(); err == nil {
			t.Errorf("shares() with host volume %q: no error", bad)
		}
	}
}

func TestNetDevices(t *testing.T) {
	tap, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	args, files := netDevices([]nic{{iface: channel.Interface{MAC: "52:54:00:12:34:56"}}, {tap: tap, iface: channel.Interface{MAC: "02:00:00:00:00:07"}}}, 4)
	want := []string{
		"-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56,romfile=",
		"-netdev", "tap,id=net1,fd=4,vhost=off", "-device", "virtio-net-pci,netdev=net1,mac=02:00:00:00:00:07,romfile=",
	}
	if diff := cmp.Diff(want, args); diff != "" {
		t.Errorf("netDevices mismatch (-want +got):\n%s", diff)
	}
	if len(files) != 1 || files[0] != tap {
		t.Errorf("files %v, want the tap", files)
	}
}

func TestTail(t *testing.T) {
	tl := newTail(16)
	if got := tl.lastLines(3); got != "(no console output)" {
		t.Errorf("empty tail = %q", got)
	}
	tl.Write([]byte("first line\r\nsecond\x1b[0m\nthird\nfourth\n"))
	if got, want := tl.lastLines(2), "third\nfourth"; got != want {
		t.Errorf("lastLines(2) = %q, want %q", got, want)
	}
	if got := tl.lastLines(10); strings.Contains(got, "first") || strings.ContainsRune(got, 0x1b) {
		t.Errorf("lastLines(10) = %q: kept more than 16 bytes or a control character", got)
	}
}

func TestMachineNoKernel(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(layout.Dir(dir).Stage1Rootfs(), 0o755); err != nil {
		t.Fatal(err)
	}
	p := &pod{dir: dir, manifest: podManifest(t, "")}
	_, err := p.machine("/usr/bin/qemu-system-x86_64")
	if err == nil || !strings.Contains(err.Error(), "no guest kernel in the stage1 image") || strings.Contains(err.Error(), dir) {
		t.Errorf("machine() without a kernel: %v; want one line naming the image's missing kernel, not the host path", err)
	}
}
