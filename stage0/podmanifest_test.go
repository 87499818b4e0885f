package stage0

import (
	"strings"
	"testing"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"github.com/google/go-cmp/cmp"
)

func TestFillMounts(t *testing.T) {
	vol := func(s string) types.Volume {
		v, err := types.VolumeFromString(s)
		if err != nil {
			t.Fatal(err)
		}
		return *v
	}
	app := func() *schema.RuntimeApp {
		return &schema.RuntimeApp{Name: "b", App: &types.App{MountPoints: []types.MountPoint{
			{Name: "secret", Path: "/loot"}, {Name: "scratch", Path: "/scratch"}, {Name: "other", Path: "/other"},
		}}}
	}
	for _, tc := range []struct {
		name     string
		userApp  bool
		apps     int
		want     []schema.Mount
		implicit []implicitMount
	}{
		{"one app: host volume by name, with a warning", false, 1,
			[]schema.Mount{{Volume: "secret", Path: "/loot"}, {Volume: "scratch", Path: "/scratch"}, {Volume: "b-other", Path: "/other"}},
			[]implicitMount{{App: "b", Volume: "secret", Path: "/loot", Mounted: true}}},
		{"two apps: host volume needs --mount", false, 2,
			[]schema.Mount{{Volume: "b-secret", Path: "/loot"}, {Volume: "scratch", Path: "/scratch"}, {Volume: "b-other", Path: "/other"}},
			[]implicitMount{{App: "b", Volume: "secret", Path: "/loot"}}},
		{"pod manifest app: the user declared it", true, 2,
			[]schema.Mount{{Volume: "secret", Path: "/loot"}, {Volume: "scratch", Path: "/scratch"}, {Volume: "b-other", Path: "/other"}},
			nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vols := map[types.ACName]types.Volume{
				"secret":  vol("secret,kind=host,source=/etc"),
				"scratch": vol("scratch,kind=empty"),
			}
			ra := app()
			_, implicit := fillMounts(ra, vols, tc.userApp, tc.apps)
			if diff := cmp.Diff(tc.want, ra.Mounts); diff != "" {
				t.Errorf("mounts mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.implicit, implicit); diff != "" {
				t.Errorf("implicit mismatch (-want +got):\n%s", diff)
			}
		})
	}
	// An explicit --mount at the path wins; nothing implicit happens.
	ra := app()
	ra.Mounts = []schema.Mount{{Volume: "secret", Path: "/loot/"}}
	if _, implicit := fillMounts(ra, map[types.ACName]types.Volume{"secret": vol("secret,kind=host,source=/etc")}, false, 2); len(implicit) != 0 {
		t.Errorf("explicit mount reported as implicit: %v", implicit)
	}
}

func TestParseMountTarget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"volume=v,target=/abs", "/abs"},
		{"volume=v,target=rel/dir", "/rel/dir"},
		{"volume=v,target=../../up", "/up"},
	} {
		m, err := ParseMount(tc.in)
		if err != nil || m.Target != tc.want {
			t.Errorf("ParseMount(%q) = %q, %v; want target %q", tc.in, m.Target, err, tc.want)
		}
	}
}

func TestParseSandboxPort(t *testing.T) {
	ep, err := ParseSandboxPort("http:tcp:8080:0.0.0.0:80")
	if err != nil {
		t.Fatal(err)
	}
	if ep.Name.String() != "http" || ep.HostPort != 80 || ep.HostIP != nil || ep.PodPort == nil ||
		ep.PodPort.Protocol != "tcp" || ep.PodPort.Port != 8080 || ep.PodPort.Name.String() != "http" {
		t.Errorf("http:tcp:8080:0.0.0.0:80 = %+v (pod port %+v)", ep, ep.PodPort)
	}
	ep, err = ParseSandboxPort("dns:udp:53:127.0.0.1:5353")
	if err != nil {
		t.Fatal(err)
	}
	if ep.HostIP.String() != "127.0.0.1" || ep.PodPort.Protocol != "udp" || ep.HostPort != 5353 {
		t.Errorf("dns:udp:53:127.0.0.1:5353 = %+v", ep)
	}
	for in, want := range map[string]string{
		"http:8080":                     "NAME:PROTOCOL:PODPORT:HOSTIP:HOSTPORT",
		"http:tcp:8080:0.0.0.0":         "NAME:PROTOCOL:PODPORT:HOSTIP:HOSTPORT",
		"http:tcp:8080:0.0.0.0:80:1":    "NAME:PROTOCOL:PODPORT:HOSTIP:HOSTPORT",
		"Bad_Name:tcp:8080:0.0.0.0:80":  "Bad_Name",
		"http:sctp:8080:0.0.0.0:80":     `protocol "sctp"`,
		"http:tcp:0:0.0.0.0:80":         `pod port "0"`,
		"http:tcp:70000:0.0.0.0:80":     `pod port "70000"`,
		"http:tcp:8080:localhost:80":    `host IP "localhost"`,
		"http:tcp:8080:0.0.0.0:65536":   `host port "65536"`,
		"http:tcp:8080:0.0.0.0:x":       `host port "x"`,
		"http:tcp:8080:0.0.0.0:-1":      `host port "-1"`,
		"http:tcp:8080:10.0.0.1:0":      `host port "0"`,
		"http:tcp:8080:0.0.0.0:80\nfoo": `host port`,
	} {
		_, err := ParseSandboxPort(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSandboxPort(%q) = %v, want an error with %q", in, err, want)
		}
	}
	pm := &schema.PodManifest{}
	if err := addSandboxPorts(pm, []string{"a:tcp:80:0.0.0.0:8080", "b:udp:80:0.0.0.0:8080", "c:tcp:81:127.0.0.1:8080"}); err != nil || len(pm.Ports) != 3 {
		t.Errorf("distinct forwards: %v, %d ports", err, len(pm.Ports))
	}
	if err := addSandboxPorts(&schema.PodManifest{}, []string{"a:tcp:80:0.0.0.0:8080", "b:tcp:81:0.0.0.0:8080"}); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("one host port twice: %v", err)
	}
}
