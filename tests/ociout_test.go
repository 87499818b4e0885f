package tests

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// ociOutACI is an app whose default exec prints what a round trip through
// OCI must keep: environment, user and group (by name), working directory.
func ociOutACI(t *testing.T) string {
	t.Helper()
	return testutil.NewACI(t, "example.com/ociout",
		testutil.WithInspect(),
		testutil.WithLabel("version", "1.0"),
		testutil.WithExec("/inspect", "--print-env=FOO", "--print-env=EQ", "--print-user", "--print-cwd"),
		testutil.WithEnv("FOO", "bar baz"), testutil.WithEnv("EQ", "a=b"),
		testutil.WithPasswd("root:x:0:0::/:/bin/false\napp:x:1000:1000::/:/bin/false\n"),
		testutil.WithGroup("root:x:0:\nstaff:x:1001:\n"),
		testutil.WithUser("app", "staff"),
		testutil.WithDir("/srv", 0o755, 0, 0),
		testutil.WithWorkingDir("/srv"),
		testutil.WithPort("http", "tcp", 8080),
		testutil.WithAnnotation("example.com/team", "ops"),
	)
}

// appOutput runs image with the image's own exec and returns the app's output.
func appOutput(t *testing.T, c *testutil.Ctx, image string, args ...string) string {
	t.Helper()
	run := []string{"--net=host", image}
	if len(args) > 0 {
		run = append(append(run, "--"), args...)
	}
	res := runInsecure(t, c, run...)
	wantExit(t, res, 0)
	return res.Stdout
}

func TestOCIPushRoundTrip(t *testing.T) {
	testutil.RequireRoot(t)
	reg := testutil.NewRegistry(t)
	c := testutil.NewCtx(t)
	id := fetchOCI(t, c, ociOutACI(t))
	want := appOutput(t, c, id)
	for _, s := range []string{"FOO=bar baz", "EQ=a=b", "UID=1000", "GID=1001", "/srv"} {
		if !strings.Contains(want, s) {
			t.Fatalf("the ACI's own run misses %q:\n%s", s, want)
		}
	}

	dest := reg.Ref("test/ociout:1")
	res := c.MustRun(t, "image", "push", id, dest)
	if out := strings.TrimSpace(res.Stdout); !strings.HasPrefix(out, dest+"@sha256:") {
		t.Errorf("push printed %q, want %s@sha256:...", out, dest)
	}

	// Fetched back in another store: the same app.
	c2 := testutil.NewCtx(t)
	back := fetchOCI(t, c2, dest)
	if got := appOutput(t, c2, back); got != want {
		t.Errorf("app fetched back from the registry prints\n%s\nthe ACI prints\n%s", got, want)
	}
	// Arguments replace the image's arguments in both.
	args := []string{"--print-cwd", "--print-env=FOO"}
	if a, b := appOutput(t, c, id, args...), appOutput(t, c2, back, args...); a != b {
		t.Errorf("with arguments, fetched back prints\n%s\nthe ACI prints\n%s", b, a)
	}
	var m struct {
		App struct {
			Ports []struct {
				Protocol string `json:"protocol"`
				Port     int    `json:"port"`
			} `json:"ports"`
		} `json:"app"`
		Annotations []struct{ Name, Value string } `json:"annotations"`
	}
	if err := json.Unmarshal([]byte(c2.MustRun(t, "image", "cat-manifest", back).Stdout), &m); err != nil {
		t.Fatal(err)
	}
	if len(m.App.Ports) != 1 || m.App.Ports[0].Port != 8080 || m.App.Ports[0].Protocol != "tcp" {
		t.Errorf("ports after the round trip: %+v, want 8080/tcp", m.App.Ports)
	}
	found := false
	for _, a := range m.Annotations {
		found = found || a.Name == "example.com/team" && a.Value == "ops"
	}
	if !found {
		t.Errorf("annotation example.com/team lost in the round trip: %+v", m.Annotations)
	}
}

// A registry asking for credentials gets those of auth.d, as for fetch.
func TestOCIPushAuth(t *testing.T) {
	testutil.RequireRoot(t)
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "pusher" || p != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"who are you"}]}`, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	c := testutil.NewCtx(t)
	id := fetchOCI(t, c, ociOutACI(t))
	dest := "docker://" + host + "/test/auth:1"

	res := c.Run(t, "image", "push", id, dest)
	wantExit(t, res, 254)
	oneLineError(t, res, dest, "401")

	if err := os.MkdirAll(filepath.Join(c.LocalConfig, "auth.d"), 0o700); err != nil {
		t.Fatal(err)
	}
	auth := `{"rktKind":"dockerAuth","rktVersion":"v1","registries":["` + host + `"],"credentials":{"user":"pusher","password":"s3cret"}}`
	if err := os.WriteFile(filepath.Join(c.LocalConfig, "auth.d", "reg.json"), []byte(auth), 0o600); err != nil {
		t.Fatal(err)
	}
	c.MustRun(t, "image", "push", id, dest)
	want := appOutput(t, c, id)
	if got := appOutput(t, c, fetchOCI(t, c, dest)); got != want {
		t.Errorf("pushed with credentials and fetched back, the app prints\n%s\nwant\n%s", got, want)
	}
}

func TestOCIExportLayout(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	id := fetchOCI(t, c, ociOutACI(t))
	want := appOutput(t, c, id)
	dir := filepath.Join(t.TempDir(), "layout")
	c.MustRun(t, "image", "export", "--format=oci", id, dir)

	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "1.0" {
		t.Fatalf("index.json: %+v, want one manifest tagged 1.0", im.Manifests)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("exported image does not validate: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	got := []any{cf.OS, cf.Architecture, cf.Config.Entrypoint, cf.Config.Cmd, cf.Config.User, cf.Config.WorkingDir, cf.Config.Env, cf.Config.Labels}
	wantCfg := []any{"linux", hostGOARCH(), []string{"/inspect"}, []string{"--print-env=FOO", "--print-env=EQ", "--print-user", "--print-cwd"},
		"app:staff", "/srv", []string{"FOO=bar baz", "EQ=a=b"}, map[string]string{"example.com/team": "ops"}}
	if diff := cmp.Diff(wantCfg, got); diff != "" {
		t.Errorf("OCI config (-want +got):\n%s", diff)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 3 {
		t.Errorf("layout holds %d entries, want oci-layout, index.json, blobs: %v", len(ents), ents)
	}
	// As readable as an exported ACI.
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Error(err)
			return err
		}
		want := os.FileMode(0o644)
		if fi.IsDir() {
			want = 0o755
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		return nil
	})

	// The layout runs the same app; exported again from the OCI image (its
	// layers merged), it still does.
	fromLayout := fetchOCI(t, c, "oci:"+dir+":1.0")
	if got := appOutput(t, c, fromLayout); got != want {
		t.Errorf("app from the layout prints\n%s\nwant\n%s", got, want)
	}
	dir2 := filepath.Join(t.TempDir(), "again")
	c.MustRun(t, "image", "export", "--format=oci", fromLayout, dir2)
	if got := appOutput(t, c, fetchOCI(t, c, "oci:"+dir2)); got != want {
		t.Errorf("app exported from the OCI image prints\n%s\nwant\n%s", got, want)
	}

	res := c.Run(t, "image", "export", "--format=oci", id, dir)
	wantExit(t, res, 254)
	oneLineError(t, res, dir, "exists", "--overwrite")
	first, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	c.MustRun(t, "image", "export", "--format=oci", "--overwrite", id, dir)
	if again, err := os.ReadFile(filepath.Join(dir, "index.json")); err != nil || string(again) != string(first) {
		t.Errorf("exported again, index.json is\n%s\nwas\n%s (%v): not reproducible", again, first, err)
	}
}

// An ACI with dependencies is exported with them, as a pod sees it.
func TestOCIExportDependencies(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	base := testutil.NewACI(t, "example.com/ociout-base", testutil.WithoutApp(), testutil.WithInspect(),
		testutil.WithFile("/base.txt", "from-base\n", 0o644), testutil.WithFile("/shadowed.txt", "base-version\n", 0o644))
	fetchOCI(t, c, base)
	app := fetchOCI(t, c, testutil.NewACI(t, "example.com/ociout-app", testutil.WithDependency("example.com/ociout-base", "", nil),
		testutil.WithFile("/shadowed.txt", "app-version\n", 0o644),
		testutil.WithExec("/inspect", "--print-file=/base.txt", "--print-file=/shadowed.txt")))
	want := appOutput(t, c, app)
	if !strings.Contains(want, "from-base") || !strings.Contains(want, "app-version") || strings.Contains(want, "base-version") {
		t.Fatalf("the ACI's own run prints\n%s", want)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	c.MustRun(t, "image", "export", "--format=oci", app, dir)
	c2 := testutil.NewCtx(t)
	if got := appOutput(t, c2, fetchOCI(t, c2, "oci:"+dir)); got != want {
		t.Errorf("exported with its dependency, the app prints\n%s\nwant\n%s", got, want)
	}
}

// refusingRegistry is a registry that answers status to the requests refuse
// picks; it returns the host and a function telling whether repo has tag.
func refusingRegistry(t *testing.T, status int, refuse func(*http.Request) bool) (string, func(repo, tag string) bool) {
	t.Helper()
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse(r) {
			http.Error(w, "refused\nby the test\n", status)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), func(repo, tag string) bool {
		resp, err := http.Get(srv.URL + "/v2/" + repo + "/manifests/" + tag)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
}

func TestOCIOutBadInput(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	id := fetchOCI(t, c, ociOutACI(t))
	parent := t.TempDir()
	out := filepath.Join(parent, "out")

	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"export unknown image", []string{"image", "export", "--format=oci", "example.com/nonexistent", out}, []string{"example.com/nonexistent"}},
		{"push unknown image", []string{"image", "push", "example.com/nonexistent", "docker://127.0.0.1:1/x:1"}, []string{"example.com/nonexistent"}},
		{"push destination scheme", []string{"image", "push", id, "https://127.0.0.1:1/x:1"}, []string{"https://127.0.0.1:1/x:1", "docker://"}},
		{"push destination digest", []string{"image", "push", id, "docker://127.0.0.1:1/x@sha256:" + strings.Repeat("a", 64)}, []string{"push destination"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := c.Run(t, tc.args...)
			wantExit(t, res, 254)
			oneLineError(t, res, tc.want...)
			if res.Stdout != "" {
				t.Errorf("stdout: %q", res.Stdout)
			}
		})
	}
	res := c.Run(t, "image", "export", "--format=bogus", id, out)
	wantExit(t, res, 2)
	oneLineError(t, res, "--format", "bogus")
	if ents, _ := os.ReadDir(parent); len(ents) != 0 {
		t.Errorf("failed exports left %v in %s", ents, parent)
	}

	// A registry that refuses: no tag, no success, no scratch files.
	scratch := t.TempDir()
	c.Env = append(c.Env, "TMPDIR="+scratch)
	for _, tc := range []struct {
		name   string
		status int
		refuse func(*http.Request) bool
	}{
		{"uploads forbidden", http.StatusForbidden, func(r *http.Request) bool { return r.Method != http.MethodGet && r.Method != http.MethodHead }},
		{"manifest refused", http.StatusInternalServerError, func(r *http.Request) bool {
			return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host, hasTag := refusingRegistry(t, tc.status, tc.refuse)
			dest := "docker://" + host + "/test/refused:1"
			res := c.Run(t, "image", "push", id, dest)
			wantExit(t, res, 254)
			oneLineError(t, res, dest, http.StatusText(tc.status))
			if strings.Contains(strings.TrimSpace(res.Stderr), "\n") {
				t.Errorf("stderr holds more than the error line:\n%s", res.Stderr)
			}
			if res.Stdout != "" {
				t.Errorf("a refused push reported %q", res.Stdout)
			}
			if hasTag("test/refused", "1") {
				t.Error("a refused push left the tag")
			}
		})
	}
	if ents, _ := os.ReadDir(scratch); len(ents) != 0 {
		t.Errorf("refused pushes left %v in TMPDIR", ents)
	}
}
