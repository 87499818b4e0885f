package images

import (
	"archive/tar"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/appc/spec/schema/types"
	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rkt-ng/rkt/manifests"
	"github.com/rkt-ng/rkt/stage0/store"
)

const fullManifest = `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/app",
	"labels":[{"name":"version","value":"1.2"},{"name":"os","value":"linux"},{"name":"arch","value":"aarch64"}],
	"app":{"exec":["/bin/server","--port","80"],"user":"www","group":"33","workingDirectory":"/srv",
		"environment":[{"name":"PATH","value":"/usr/bin"},{"name":"EQ","value":"a=b"}],
		"ports":[{"name":"http","protocol":"tcp","port":80},{"name":"53-udp","protocol":"udp","port":53},{"name":"9000-tcp","protocol":"tcp","port":9000,"count":3}],
		"mountPoints":[{"name":"data","path":"/data"},{"name":"conf","path":"/etc/app","readOnly":true}],
		"isolators":[{"name":"resource/memory","value":{"limit":"1G"}}],
		"supplementaryGIDs":[44],
		"userLabels":{"Maintainer":"someone","team":"user-label-loses"},
		"userAnnotations":{"appc.io/docker/stopsignal":"SIGQUIT"}},
	"annotations":[{"name":"created","value":"2024-01-02T03:04:05Z"},{"name":"authors","value":"A U Thor"},
		{"name":"team","value":"ops"},{"name":"appc.io/docker/originalname","value":"docker://x/y:1"}]}`

func TestConfigFromManifest(t *testing.T) {
	t.Parallel()
	im, err := manifests.DecodeImage([]byte(fullManifest))
	if err != nil {
		t.Fatal(err)
	}
	cf, dropped, err := ConfigFromManifest(im)
	if err != nil {
		t.Fatal(err)
	}
	want := v1.Config{
		Entrypoint: []string{"/bin/server"}, Cmd: []string{"--port", "80"},
		Env:  []string{"PATH=/usr/bin", "EQ=a=b"},
		User: "www:33", WorkingDir: "/srv",
		ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}, "9000-9002/tcp": {}},
		Volumes:      map[string]struct{}{"/data": {}, "/etc/app": {}},
		Labels:       map[string]string{"team": "ops", "Maintainer": "someone"},
		StopSignal:   "SIGQUIT",
	}
	if diff := cmp.Diff(want, cf.Config); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	got := []string{cf.OS, cf.Architecture, cf.Variant, cf.Created.UTC().Format("2006-01-02T15:04:05Z"), cf.Author}
	if diff := cmp.Diff([]string{"linux", "arm64", "", "2024-01-02T03:04:05Z", "A U Thor"}, got); diff != "" {
		t.Errorf("platform, created, author (-want +got):\n%s", diff)
	}
	wantDropped := []string{"isolators (resource/memory)", "supplementary GIDs", "read-only flag of mount point conf", "name of port http"}
	if diff := cmp.Diff(wantDropped, dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
}

// An app mapped to OCI and back (the import's mapping) is the same app.
func TestConfigFromManifestRoundTrip(t *testing.T) {
	t.Parallel()
	im, err := manifests.DecodeImage([]byte(fullManifest))
	if err != nil {
		t.Fatal(err)
	}
	cf, _, err := ConfigFromManifest(im)
	if err != nil {
		t.Fatal(err)
	}
	back, err := store.ManifestFromOCI(cf, store.OCIRef{Name: "127.0.0.1-5000/app", Version: "1.2"}, "sha256:m", "sha256:c", nil)
	if err != nil {
		t.Fatal(err)
	}
	type port struct {
		Proto       string
		Port, Count uint
	}
	summary := func(a *types.App) map[string]any {
		var ports []port
		for _, p := range a.Ports {
			ports = append(ports, port{p.Protocol, p.Port, max(p.Count, 1)})
		}
		var mps []string
		for _, m := range a.MountPoints {
			mps = append(mps, m.Path)
		}
		return map[string]any{
			"exec": []string(a.Exec), "user": a.User + ":" + a.Group, "wd": a.WorkingDirectory,
			"env": a.Environment, "ports": ports, "mounts": mps, "stop": a.UserAnnotations[store.UserAnnotationStopSignal],
		}
	}
	orig := summary(im.App)
	orig["ports"] = []port{{"udp", 53, 1}, {"tcp", 80, 1}, {"tcp", 9000, 3}} // import sorts by "port/proto"
	orig["mounts"] = []string{"/data", "/etc/app"}
	if diff := cmp.Diff(orig, summary(back.App)); diff != "" {
		t.Errorf("app after the round trip (-orig +back):\n%s", diff)
	}
	for _, k := range []string{"created", "authors", "team"} {
		a, _ := im.Annotations.Get(k)
		b, _ := back.Annotations.Get(k)
		if a != b {
			t.Errorf("annotation %s: %q, after the round trip %q", k, a, b)
		}
	}
}

// An image imported from OCI gets its own Entrypoint and Cmd back.
func TestConfigFromManifestKeepsEntrypoint(t *testing.T) {
	t.Parallel()
	in := &v1.ConfigFile{OS: "linux", Architecture: "amd64", Config: v1.Config{
		Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"echo hi"}, User: "1:2",
	}}
	im, err := store.ManifestFromOCI(in, store.OCIRef{Name: "r/x"}, "sha256:m", "sha256:c", nil)
	if err != nil {
		t.Fatal(err)
	}
	cf, _, err := ConfigFromManifest(im)
	if err != nil {
		t.Fatal(err)
	}
	got := []any{cf.Config.Entrypoint, cf.Config.Cmd, cf.Config.User, cf.Config.Labels}
	want := []any{[]string{"/bin/sh", "-c"}, []string{"echo hi"}, "1:2", map[string]string(nil)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// Once exec no longer is Entrypoint+Cmd, exec wins.
	im.App.Exec = []string{"/other", "x"}
	if cf, _, err = ConfigFromManifest(im); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]any{[]string{"/other"}, []string{"x"}}, []any{cf.Config.Entrypoint, cf.Config.Cmd}); diff != "" {
		t.Errorf("changed exec (-want +got):\n%s", diff)
	}
}

func TestConfigFromManifestRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, app, want string }{
		{"user path", `{"exec":["/x"],"user":"/etc/owner","group":"0"}`, `user "/etc/owner" is a file`},
		{"group path", `{"exec":["/x"],"user":"0","group":"/g"}`, `group "/g" is a file`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			im, err := manifests.DecodeImage([]byte(`{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/app","app":` + tc.app + `}`))
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := ConfigFromManifest(im); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

type aciEnt struct {
	name, link string
	typ        byte
}

func aciTar(t testing.TB, ents ...aciEnt) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644, Uid: 7}
		body := ""
		if e.typ == tar.TypeReg {
			body = "body of " + e.name
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func layerEntries(t testing.TB, b []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		out = append(out, h.Name+"|"+h.Linkname+"|"+string(body))
	}
}

func TestACIToLayer(t *testing.T) {
	t.Parallel()
	in := aciTar(t,
		aciEnt{name: "manifest", typ: tar.TypeReg},
		aciEnt{name: "rootfs", typ: tar.TypeDir},
		aciEnt{name: "rootfs/etc", typ: tar.TypeDir},
		aciEnt{name: "rootfs/etc/a", typ: tar.TypeReg},
		aciEnt{name: "rootfs/etc/b", typ: tar.TypeLink, link: "rootfs/etc/a"},
		aciEnt{name: "rootfs/l", typ: tar.TypeSymlink, link: "../../../etc/shadow"},
		aciEnt{name: "other", typ: tar.TypeReg},
	)
	var out bytes.Buffer
	if err := aciToLayer(bytes.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	want := []string{"etc/||", "etc/a||body of rootfs/etc/a", "etc/b|etc/a|", "l|../../../etc/shadow|"}
	if diff := cmp.Diff(want, layerEntries(t, out.Bytes())); diff != "" {
		t.Errorf("layer (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name string
		ent  aciEnt
		want string
	}{
		{"dot-dot name", aciEnt{name: "rootfs/a/../../x", typ: tar.TypeReg}, "outside rootfs/"},
		{"link outside", aciEnt{name: "rootfs/h", typ: tar.TypeLink, link: "manifest"}, "hard link"},
		{"link escapes", aciEnt{name: "rootfs/h", typ: tar.TypeLink, link: "rootfs/../x"}, "hard link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := aciToLayer(bytes.NewReader(aciTar(t, tc.ent)), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// FuzzACIToLayer: whatever the ACI, no entry of the layer leaves its root.
func FuzzACIToLayer(f *testing.F) {
	f.Add(aciTar(f, aciEnt{name: "rootfs/a", typ: tar.TypeReg}, aciEnt{name: "rootfs/b", typ: tar.TypeLink, link: "rootfs/a"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		var out bytes.Buffer
		if aciToLayer(bytes.NewReader(b), &out) != nil {
			return
		}
		tr := tar.NewReader(&out)
		for {
			h, err := tr.Next()
			if err != nil {
				return
			}
			for _, n := range []string{h.Name, h.Linkname} {
				if h.Typeflag == tar.TypeSymlink && n == h.Linkname {
					continue // a symlink's target is resolved inside the container
				}
				if strings.HasPrefix(n, "/") || strings.Contains("/"+n+"/", "/../") {
					t.Fatalf("entry %q (link %q) leaves the layer's root", h.Name, h.Linkname)
				}
			}
		}
	})
}
