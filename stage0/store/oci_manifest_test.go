package store

import (
	"bytes"
	"strings"
	"testing"

	"github.com/appc/spec/schema/types"
	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rkt-ng/rkt/manifests"
)

func TestManifestFromOCI(t *testing.T) {
	t.Parallel()
	cfg, err := v1.ParseConfigFile(strings.NewReader(`{"architecture":"arm64","os":"linux","created":"2024-01-02T03:04:05Z","author":"A U Thor",
		"config":{"User":"www","Env":["PATH=/usr/local/bin:/usr/bin","EQ=a=b","BARE"],"Entrypoint":["/bin/server"],"Cmd":["--port","80"],
		"WorkingDir":"srv","ExposedPorts":{"80/tcp":{},"53/udp":{},"9000-9002":{}},"Volumes":{"/data":{},"/var/lib/x":{},"/Data":{}},
		"Labels":{"org.opencontainers.image.title":"server","Maintainer":"someone"},"StopSignal":"SIGQUIT"},
		"rootfs":{"type":"layers","diff_ids":[]}}`))
	if err != nil {
		t.Fatal(err)
	}
	ref := OCIRef{Name: "registry.example.com/team/server", Version: "v1", Original: "docker://registry.example.com/team/server:v1"}
	im, err := ManifestFromOCI(cfg, ref, "sha256:m", "sha256:c", func(u string) string {
		if u == "www" {
			return "33"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	app := im.App
	type port struct {
		Name, Proto string
		Port, Count uint
	}
	var ports []port
	for _, p := range app.Ports {
		ports = append(ports, port{p.Name.String(), p.Protocol, p.Port, p.Count})
	}
	var mps []string
	for _, m := range app.MountPoints {
		mps = append(mps, m.Name.String()+"="+m.Path)
	}
	got := map[string]any{
		"exec": []string(app.Exec), "user": app.User + ":" + app.Group, "wd": app.WorkingDirectory,
		"env": app.Environment, "ports": ports, "mounts": mps, "stop": app.UserAnnotations[UserAnnotationStopSignal],
		"userLabels": map[string]string(app.UserLabels),
	}
	want := map[string]any{
		"exec": []string{"/bin/server", "--port", "80"}, "user": "www:33", "wd": "/srv",
		"env":    types.Environment{{Name: "PATH", Value: "/usr/local/bin:/usr/bin"}, {Name: "EQ", Value: "a=b"}},
		"ports":  []port{{"53-udp", "udp", 53, 1}, {"80-tcp", "tcp", 80, 1}, {"9000-9002-tcp", "tcp", 9000, 3}},
		"mounts": []string{"volume-data=/Data", "volume-data-2=/data", "volume-var-lib-x=/var/lib/x"},
		"stop":   "SIGQUIT", "userLabels": map[string]string{"Maintainer": "someone"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("app (-want +got):\n%s", diff)
	}
	ann := map[string]string{}
	for _, a := range im.Annotations {
		ann[a.Name.String()] = a.Value
	}
	wantAnn := map[string]string{
		"org.opencontainers.image.title": "server", "created": "2024-01-02T03:04:05Z", "authors": "A U Thor",
		AnnotationEntrypoint: `["/bin/server"]`, AnnotationCmd: `["--port","80"]`, AnnotationManifestHash: "sha256:m",
		AnnotationImageID: "sha256:c", AnnotationOriginalName: ref.Original,
	}
	if diff := cmp.Diff(wantAnn, ann); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	labels := map[string]string{}
	for _, l := range im.Labels {
		labels[l.Name.String()] = l.Value
	}
	if diff := cmp.Diff(map[string]string{"version": "v1", "os": "linux", "arch": "aarch64"}, labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
}

func TestManifestFromOCIDefaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, user, wantUser string
		group                string
	}{
		{"empty user", "", "0:0", ""},
		{"user and group", "1000:1000", "1000:1000", ""},
		{"bare user unknown", "nobody", "nobody:0", ""},
		{"bare user from passwd", "5", "5:7", "7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &v1.ConfigFile{OS: "linux", Architecture: "amd64", Config: v1.Config{User: tc.user}}
			im, err := ManifestFromOCI(cfg, OCIRef{Name: "x.com/y"}, "", "", func(string) string { return tc.group })
			if err != nil {
				t.Fatal(err)
			}
			if got := im.App.User + ":" + im.App.Group; got != tc.wantUser {
				t.Errorf("user %s, want %s", got, tc.wantUser)
			}
			if im.App.WorkingDirectory != "/" || len(im.App.Exec) != 0 {
				t.Errorf("workdir %q exec %q, want / and none", im.App.WorkingDirectory, im.App.Exec)
			}
		})
	}
	if _, err := ManifestFromOCI(&v1.ConfigFile{Config: v1.Config{ExposedPorts: map[string]struct{}{"http/tcp": {}}}}, OCIRef{Name: "x.com/y"}, "", "", nil); err == nil {
		t.Error("invalid exposed port accepted")
	}
}

func TestOCIName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"127.0.0.1:5000/Test/App":         "127.0.0.1-5000/test/app",
		"index.docker.io/library/busybox": "index.docker.io/library/busybox",
	} {
		if got, err := OCIName(in); err != nil || got != want {
			t.Errorf("OCIName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// FuzzManifestFromOCI feeds arbitrary configs to the mapping: it must never
// panic, and whatever it accepts must be a valid appc manifest.
func FuzzManifestFromOCI(f *testing.F) {
	f.Add([]byte(`{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/a"]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		cfg, err := v1.ParseConfigFile(bytes.NewReader(data))
		if err != nil {
			return
		}
		im, err := ManifestFromOCI(cfg, OCIRef{Name: "example.com/fuzz", Version: "1"}, "sha256:x", "sha256:y", func(u string) string { return u })
		if err != nil {
			return
		}
		b, err := im.MarshalJSON()
		if err != nil {
			t.Fatalf("accepted manifest does not marshal: %v", err)
		}
		if _, err := manifests.DecodeImage(b); err != nil {
			t.Fatalf("accepted manifest does not decode: %v", err)
		}
	})
}
