package plan

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/appc/spec/schema"
	"github.com/google/go-cmp/cmp"

	"github.com/rkt-ng/rkt/manifests"
	"github.com/rkt-ng/rkt/pods/layout"
	"github.com/rkt-ng/rkt/stage1"
	"github.com/rkt-ng/rkt/stage1/cgroups"
	"github.com/rkt-ng/rkt/stage1/podspec"
	"github.com/rkt-ng/rkt/stage2"
)

const imageID = "sha512-0000000000000000000000000000000000000000000000000000000000000000"

// fakeUsers resolves numeric users as themselves with HOME=/root, and
// knows no name.
type fakeUsers struct{}

func (fakeUsers) Resolve(app, user, group string) (podspec.User, error) {
	if user != "0" || group != "0" {
		return podspec.User{}, fmt.Errorf("user %q not found", user)
	}
	return podspec.User{Home: "/root"}, nil
}

// pod decodes a pod manifest given its apps and volumes as JSON.
func pod(t *testing.T, apps, volumes, isolators string) *schema.PodManifest {
	t.Helper()
	if volumes == "" {
		volumes = "[]"
	}
	if isolators == "" {
		isolators = "[]"
	}
	b := `{"acKind":"PodManifest","acVersion":"0.8.11","apps":` + apps + `,"volumes":` + volumes + `,"isolators":` + isolators + `}`
	m, err := manifests.DecodePod([]byte(b))
	if err != nil {
		t.Fatalf("DecodePod: %v\n%s", err, b)
	}
	return m
}

// image decodes an image manifest with the given annotations.
func image(t *testing.T, name, annotations string) *schema.ImageManifest {
	t.Helper()
	if annotations == "" {
		annotations = "[]"
	}
	b := `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/` + name + `","annotations":` + annotations + `}`
	m, err := manifests.DecodeImage([]byte(b))
	if err != nil {
		t.Fatalf("DecodeImage: %v", err)
	}
	return m
}

// confined is p with the default confinement (no isolators).
func confined(t *testing.T, p stage2.Proc) stage2.Proc {
	t.Helper()
	if _, err := podspec.Confine(&p, nil, podspec.Insecure{}); err != nil {
		t.Fatal(err)
	}
	return p
}

func proc(t *testing.T, app string, args []string, env ...string) stage2.Proc {
	return confined(t, stage2.Proc{Args: args, Root: layout.AppRootfs(app), WorkingDir: "/",
		Env: append([]string{"PATH=" + podspec.DefaultPath}, env...)})
}

func hostsFor(app string) File {
	return File{App: app, Path: "/etc/hosts", Mode: 0o644, IfMissing: true,
		Data: "127.0.0.1\tlocalhost localhost.localdomain rkt-u-1\n::1\tlocalhost ip6-localhost ip6-loopback\n"}
}

var (
	resolvBind   = Bind{Kind: PodFile, Source: ResolvConfFile, Target: "/etc/resolv.conf", ReadOnly: true}
	hostnameBind = Bind{Kind: PodFile, Source: HostnameFile, Target: "/etc/hostname", ReadOnly: true}
	hostnameFile = File{Path: HostnameFile, Data: "rkt-u-1\n", Mode: 0o644}
)

// TestBuild plans a pod of two apps with host, empty, seeded and inline
// volumes, mount points of the image, event handlers, a stop signal from
// the options and DNS from the network.
func TestBuild(t *testing.T) {
	t.Parallel()
	m := pod(t, `[
	 {"name":"a","image":{"id":"`+imageID+`"},"readOnlyRootFS":true,
	  "app":{"exec":["/bin/a"],"user":"0","group":"0",
	   "mountPoints":[{"name":"data","path":"/data","readOnly":true},{"name":"cache","path":"/cache"}],
	   "eventHandlers":[{"name":"pre-start","exec":["/bin/pre"]},{"name":"post-stop","exec":["/bin/post","x"]}]},
	  "mounts":[{"volume":"data","path":"/data"},{"volume":"cache","path":"/cache"}]},
	 {"name":"b","image":{"id":"`+imageID+`"},
	  "app":{"exec":["/bin/b","-x"],"user":"0","group":"0","workingDirectory":"/w","supplementaryGIDs":[7],
	   "environment":[{"name":"FOO","value":"bar"}]},
	  "mounts":[{"volume":"cache","path":"/var/cache"},{"volume":"seeded","path":"/var/lib/b"},
	   {"volume":"inline","path":"/x","appVolume":{"name":"inline","kind":"host","source":"/host/x","readOnly":true,"recursive":false}}]}]`,
		`[{"name":"data","kind":"host","source":"/srv/data"},
		  {"name":"cache","kind":"empty","mode":"0700","uid":1000,"gid":100},
		  {"name":"seeded","kind":"empty"}]`, "")
	in := Input{
		Manifest: m,
		Images:   map[string]*schema.ImageManifest{"a": image(t, "a", ""), "b": image(t, "b", "")},
		Options: stage1.Options{StopTimeout: stage1.Duration(5 * time.Second), SeedVolumes: []string{"seeded"},
			Apps: map[string]stage1.AppOptions{"b": {StopSignal: "hup"}}},
		Args:     stage1.RunArgs{UUID: "u-1", Net: "default"},
		DNS:      DNS{Nameservers: []string{"10.0.0.1"}},
		ExtraEnv: []string{"AC_METADATA_URL=http://mds"},
		Users:    fakeUsers{},
	}
	got, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	procB := proc(t, "b", []string{"/bin/b", "-x"}, "FOO=bar", "HOME=/root", "AC_APP_NAME=b", "container=rkt", "AC_METADATA_URL=http://mds")
	procB.WorkingDir, procB.Groups = "/w", []uint32{7}
	want := &Plan{
		Hostname: "rkt-u-1",
		Files: []File{
			{Path: ResolvConfFile, Data: "nameserver 10.0.0.1\n", Mode: 0o644},
			hostnameFile, hostsFor("a"), hostsFor("b"),
		},
		Volumes: []Volume{
			{Name: "cache", Mode: 0o700, UID: 1000, GID: 100},
			{Name: "seeded", Mode: 0o755, Seed: &Seed{App: "b", Path: "/var/lib/b"}},
		},
		Sysctls:     map[string]string{},
		StopTimeout: 5 * time.Second,
		Apps: []App{{
			Name: "a", ReadOnly: true,
			Binds: []Bind{
				{Kind: HostVolume, Source: "/srv/data", Volume: "data", Target: "/data", ReadOnly: true, Recursive: true},
				{Kind: EmptyVolume, Source: "cache", Volume: "cache", Target: "/cache"},
				resolvBind, hostnameBind,
			},
			Stage2: stage2.App{Name: "a", Root: layout.AppRootfs("a"),
				Proc:     proc(t, "a", []string{"/bin/a"}, "HOME=/root", "AC_APP_NAME=a", "container=rkt", "AC_METADATA_URL=http://mds"),
				PreStart: []string{"/bin/pre"}, PostStop: []string{"/bin/post", "x"}},
		}, {
			Name: "b",
			Binds: []Bind{
				{Kind: EmptyVolume, Source: "cache", Volume: "cache", Target: "/var/cache"},
				{Kind: EmptyVolume, Source: "seeded", Volume: "seeded", Target: "/var/lib/b"},
				{Kind: HostVolume, Source: "/host/x", Volume: "inline", Target: "/x", ReadOnly: true},
				resolvBind, hostnameBind,
			},
			Stage2: stage2.App{Name: "b", Root: layout.AppRootfs("b"), Proc: procB, StopSignal: 1},
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Build mismatch (-want +got):\n%s", diff)
	}
}

// oneApp is a pod of one app "a" with the given mounts.
func oneApp(t *testing.T, app, mounts, volumes string) Input {
	t.Helper()
	if app == "" {
		app = `{"exec":["/bin/a"],"user":"0","group":"0"}`
	}
	if mounts == "" {
		mounts = "[]"
	}
	return Input{
		Manifest: pod(t, `[{"name":"a","image":{"id":"`+imageID+`"},"app":`+app+`,"mounts":`+mounts+`}]`, volumes, ""),
		Images:   map[string]*schema.ImageManifest{"a": image(t, "a", "")},
		Args:     stage1.RunArgs{UUID: "u-1"},
		Users:    fakeUsers{},
	}
}

// TestDNS checks rkt's precedence for resolv.conf and hosts: --dns flags,
// then the networks' DNS, then a volume, then the image's file.
func TestDNS(t *testing.T) {
	t.Parallel()
	net := DNS{Nameservers: []string{"10.0.0.1"}, Search: []string{"cni.local"}}
	hosts := "127.0.0.1\tlocalhost localhost.localdomain rkt-u-1\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	for _, tc := range []struct {
		name      string
		opts      stage1.Options
		net       DNS
		mounts    string
		wantFiles []File
		wantBinds []Bind
	}{
		{name: "nothing", wantFiles: []File{hostnameFile}, wantBinds: []Bind{hostnameBind}},
		{name: "networks", net: net,
			wantFiles: []File{{Path: ResolvConfFile, Data: "nameserver 10.0.0.1\nsearch cni.local\n", Mode: 0o644}, hostnameFile},
			wantBinds: []Bind{resolvBind, hostnameBind}},
		{name: "flags beat networks", net: net,
			opts:      stage1.Options{DNS: []string{"1.1.1.1", "8.8.8.8"}, DNSDomain: "d", DNSOptions: []string{"ndots:1"}},
			wantFiles: []File{{Path: ResolvConfFile, Data: "nameserver 1.1.1.1\nnameserver 8.8.8.8\ndomain d\noptions ndots:1\n", Mode: 0o644}, hostnameFile},
			wantBinds: []Bind{resolvBind, hostnameBind}},
		{name: "search alone is a flag", net: net, opts: stage1.Options{DNSSearch: []string{"s"}},
			wantFiles: []File{{Path: ResolvConfFile, Data: "search s\n", Mode: 0o644}, hostnameFile},
			wantBinds: []Bind{resolvBind, hostnameBind}},
		{name: "host", net: net, opts: stage1.Options{DNS: []string{"host"}},
			wantFiles: []File{hostnameFile},
			wantBinds: []Bind{{Kind: HostFile, Source: "/etc/resolv.conf", Target: "/etc/resolv.conf", ReadOnly: true}, hostnameBind}},
		{name: "none beats networks", net: net, opts: stage1.Options{DNS: []string{"none"}},
			wantFiles: []File{hostnameFile}, wantBinds: []Bind{hostnameBind}},
		{name: "hosts entries", opts: stage1.Options{HostsEntries: []string{"10.1.1.1 db", "10.1.1.2 web"}},
			wantFiles: []File{hostnameFile, {Path: HostsFile, Data: hosts + "10.1.1.1 db\n10.1.1.2 web\n", Mode: 0o644}},
			wantBinds: []Bind{hostnameBind, {Kind: PodFile, Source: HostsFile, Target: "/etc/hosts", ReadOnly: true}}},
		{name: "hosts from host", opts: stage1.Options{HostsEntries: []string{"host"}},
			wantFiles: []File{hostnameFile},
			wantBinds: []Bind{hostnameBind, {Kind: HostFile, Source: "/etc/hosts", Target: "/etc/hosts", ReadOnly: true}}},
		{name: "networks cover a volume on resolv.conf", net: net, mounts: `[{"volume":"r","path":"/etc/resolv.conf",
			"appVolume":{"name":"r","kind":"host","source":"/my/resolv.conf"}}]`,
			wantFiles: []File{{Path: ResolvConfFile, Data: "nameserver 10.0.0.1\nsearch cni.local\n", Mode: 0o644}, hostnameFile},
			wantBinds: []Bind{{Kind: HostVolume, Source: "/my/resolv.conf", Volume: "r", Target: "/etc/resolv.conf", Recursive: true},
				resolvBind, hostnameBind}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := oneApp(t, "", tc.mounts, "")
			in.Options, in.DNS = tc.opts, tc.net
			got, err := Build(in)
			if err != nil {
				t.Fatal(err)
			}
			want := append(tc.wantFiles, hostsFor("a"))
			if diff := cmp.Diff(want, got.Files); diff != "" {
				t.Errorf("Files mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantBinds, got.Apps[0].Binds); diff != "" {
				t.Errorf("Binds mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInteractive(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                  string
		interactive, terminal bool
		apps                  int
		want                  bool
		err                   string
	}{
		{name: "terminal", interactive: true, terminal: true, apps: 1, want: true},
		{name: "interactive without a terminal", interactive: true, apps: 1},
		{name: "terminal but not interactive", terminal: true, apps: 1},
		{name: "two apps", interactive: true, terminal: true, apps: 2, err: "--interactive needs a pod of exactly one app, this one has 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var apps []string
			images := map[string]*schema.ImageManifest{}
			for i := range tc.apps {
				n := fmt.Sprintf("a%d", i)
				apps = append(apps, `{"name":"`+n+`","image":{"id":"`+imageID+`"},"app":{"exec":["/bin/sh"],"user":"0","group":"0"}}`)
				images[n] = image(t, n, "")
			}
			in := Input{Manifest: pod(t, "["+strings.Join(apps, ",")+"]", "", ""), Images: images, Users: fakeUsers{},
				Args: stage1.RunArgs{UUID: "u-1", Interactive: tc.interactive}, Terminal: tc.terminal}
			got, err := Build(in)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("Build error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Apps[0].Stage2.Terminal != tc.want {
				t.Errorf("Terminal = %v, want %v", got.Apps[0].Stage2.Terminal, tc.want)
			}
		})
	}
}

// TestConfinement checks that the app's isolators become its confinement
// and cgroup limits, and that what is not applied is reported.
func TestConfinement(t *testing.T) {
	t.Parallel()
	isos := `[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_NET_ADMIN","CAP_CHOWN"]}},
		{"name":"os/linux/no-new-privileges","value":false},
		{"name":"os/linux/oom-score-adj","value":100},
		{"name":"resource/memory","value":{"limit":"100M"}},
		{"name":"os/linux/seccomp-retain-set","value":{"set":["read","write"],"errno":"EPERM"}}]`
	mem := int64(100_000_000)
	oom := 100
	for _, tc := range []struct {
		name        string
		cgroups     bool
		insecure    stage1.RunArgs
		want        func(p *stage2.Proc)
		wantLimits  cgroups.Limits
		wantIgnored []string
	}{
		{name: "with cgroups", cgroups: true, wantLimits: cgroups.Limits{MemoryBytes: &mem}, want: func(p *stage2.Proc) {
			p.Caps, p.CapsRetained = []string{"CAP_CHOWN", "CAP_NET_ADMIN"}, true
			p.Seccomp = &stage2.Seccomp{Retain: true, Syscalls: []string{"read", "write"}, Errno: "EPERM"}
		}},
		{name: "without cgroups", wantIgnored: []string{"resource/memory"}, want: func(p *stage2.Proc) {
			p.Caps, p.CapsRetained = []string{"CAP_CHOWN", "CAP_NET_ADMIN"}, true
			p.Seccomp = &stage2.Seccomp{Retain: true, Syscalls: []string{"read", "write"}, Errno: "EPERM"}
		}},
		{name: "insecure", cgroups: true, wantLimits: cgroups.Limits{MemoryBytes: &mem},
			insecure: stage1.RunArgs{DisableCaps: true, DisableSeccomp: true}, want: func(p *stage2.Proc) {
				p.CapsUnrestricted = true
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := oneApp(t, `{"exec":["/bin/a"],"user":"0","group":"0","isolators":`+isos+`}`, "", "")
			in.Cgroups, in.Args.DisableCaps, in.Args.DisableSeccomp = tc.cgroups, tc.insecure.DisableCaps, tc.insecure.DisableSeccomp
			got, err := Build(in)
			if err != nil {
				t.Fatal(err)
			}
			want := stage2.Proc{Args: []string{"/bin/a"}, Root: layout.AppRootfs("a"), WorkingDir: "/",
				Env: []string{"PATH=" + podspec.DefaultPath, "HOME=/root", "AC_APP_NAME=a", "container=rkt"}, OOMScoreAdj: &oom}
			tc.want(&want)
			if diff := cmp.Diff(want, got.Apps[0].Stage2.Proc); diff != "" {
				t.Errorf("Proc mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantLimits, got.Apps[0].Limits); diff != "" {
				t.Errorf("Limits mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantIgnored, got.Apps[0].Ignored); diff != "" {
				t.Errorf("Ignored mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNotify(t *testing.T) {
	t.Parallel()
	in := oneApp(t, "", "", "")
	in.Images["a"] = image(t, "a", `[{"name":"appc.io/executor/supports-systemd-notify","value":"true"}]`)
	got, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	a := got.Apps[0]
	if diff := cmp.Diff([]string{layout.AppNotify("a")}, got.Dirs); diff != "" {
		t.Errorf("Dirs mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Bind{Kind: PodDir, Source: layout.AppNotify("a"), Target: layout.AppNotifyDir}, a.Binds[len(a.Binds)-1]); diff != "" {
		t.Errorf("notify bind mismatch (-want +got):\n%s", diff)
	}
	if env := a.Stage2.Proc.Env; env[len(env)-1] != "NOTIFY_SOCKET="+layout.AppNotifySocketInApp() {
		t.Errorf("env = %q, want NOTIFY_SOCKET last", env)
	}
	if a.Stage2.NotifySocket != layout.AppNotifySocket("a") {
		t.Errorf("NotifySocket = %q", a.Stage2.NotifySocket)
	}
}

func TestStopSignal(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]int{"TERM": 15, "sigusr1": 10, "SIGKILL": 9, "hup": 1, "nope": 0} {
		if got := stopSignal(name); got != want {
			t.Errorf("stopSignal(%q) = %d, want %d", name, got, want)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   func(t *testing.T) Input
		err  string
	}{
		{"undeclared volume", func(t *testing.T) Input {
			return oneApp(t, "", `[{"volume":"v","path":"/v"}]`, "")
		}, `app a: mount /v: volume "v" is not declared`},
		{"bad mode", func(t *testing.T) Input {
			return oneApp(t, "", `[{"volume":"v","path":"/v"}]`, `[{"name":"v","kind":"empty","mode":"rwx"}]`)
		}, `app a: volume v: invalid mode "rwx"`},
		{"unknown user", func(t *testing.T) Input {
			return oneApp(t, `{"exec":["/bin/a"],"user":"someone","group":"0"}`, "", "")
		}, `app a: user "someone" not found`},
		{"no exec", func(t *testing.T) Input {
			return oneApp(t, `{"user":"0","group":"0"}`, "", "")
		}, `app a: no exec given by the image or the pod`},
		{"sysctl outside net", func(t *testing.T) Input {
			in := oneApp(t, "", "", "")
			in.Manifest = pod(t, `[]`, "", `[{"name":"os/unix/sysctl","value":{"kernel.shmmax":"1"}}]`)
			return in
		}, `sysctl "kernel.shmmax": only namespaced net.* sysctls may be set`},
		{"sysctl with host net", func(t *testing.T) Input {
			in := oneApp(t, "", "", "")
			in.Manifest = pod(t, `[]`, "", `[{"name":"os/unix/sysctl","value":{"net.ipv4.ip_forward":"1"}}]`)
			in.Args.Net = "host"
			return in
		}, `sysctl "net.ipv4.ip_forward": not allowed with --net=host (it would change the host)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Build(tc.in(t))
			if err == nil || err.Error() != tc.err {
				t.Errorf("Build error = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestSysctls(t *testing.T) {
	t.Parallel()
	in := oneApp(t, "", "", "")
	in.Manifest.Isolators = pod(t, `[]`, "", `[{"name":"os/unix/sysctl","value":{"net.ipv4.ip_forward":"1"}}]`).Isolators
	got, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"net.ipv4.ip_forward": "1"}, got.Sysctls); diff != "" {
		t.Errorf("Sysctls mismatch (-want +got):\n%s", diff)
	}
}
