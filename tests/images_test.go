package tests

import (
	"archive/tar"
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// aciEntries reads the entry names of an uncompressed ACI, and the manifest.
func aciEntries(t *testing.T, path string) (names []string, manifest map[string]any) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		names = append(names, hdr.Name)
		if hdr.Name == "manifest" {
			if err := json.NewDecoder(tr).Decode(&manifest); err != nil {
				t.Fatalf("%s: manifest: %v", path, err)
			}
		}
	}
	return names, manifest
}

// noTempFiles fails if a temporary file of an atomic write is left in dir.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file left in %s: %s", dir, e.Name())
		}
	}
}

func TestExportRoundTrip(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := testutil.NewACI(t, "rkt-ng.test/exportme", testutil.WithBusybox(),
		testutil.WithFile("/etc/gone", "delete me", 0o644),
		testutil.WithExec("/bin/sh", "-c", "echo exported data > /made.txt && rm /etc/gone"))
	out := t.TempDir()
	uuidFile := filepath.Join(out, "uuid")
	wantExit(t, runInsecure(t, c, "--net=host", "--uuid-file-save="+uuidFile, aci), 0)
	uuid, err := os.ReadFile(uuidFile)
	if err != nil {
		t.Fatal(err)
	}
	exported := filepath.Join(out, "exported.aci")
	c.MustRun(t, "export", string(uuid), exported)
	names, m := aciEntries(t, exported)
	if m["name"] != "rkt-ng.test/exportme" {
		t.Errorf("exported manifest name %v, want the image's", m["name"])
	}
	if !contains(names, "rootfs/made.txt") || contains(names, "rootfs/etc/gone") || !contains(names, "rootfs/bin/busybox") {
		t.Errorf("exported rootfs: want made.txt and busybox, not etc/gone; got %v", names)
	}
	// A second export refuses to replace the file unless told to.
	before, _ := os.ReadFile(exported)
	r := c.Run(t, "export", string(uuid), exported)
	wantExit(t, r, 254)
	oneLineError(t, r, exported)
	if after, _ := os.ReadFile(exported); string(after) != string(before) {
		t.Errorf("a refused export changed %s", exported)
	}
	c.MustRun(t, "export", "--overwrite", string(uuid), exported)
	noTempFiles(t, out)

	// The exported image runs and holds what the pod wrote.
	id := strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", exported).Stdout)
	r = runInsecure(t, c, "--net=host", id, "--exec=/bin/sh", "--", "-c", "cat /made.txt; test -e /etc/gone || echo gone-ok")
	wantExit(t, r, 0)
	if !strings.Contains(r.Stdout, "exported data") || !strings.Contains(r.Stdout, "gone-ok") {
		t.Errorf("the exported image does not hold the pod's changes:\n%s", r)
	}
}

func TestExportErrors(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	a := inspectACI(t, "rkt-ng.test/exp-a")
	b := inspectACI(t, "rkt-ng.test/exp-b")
	out := t.TempDir()
	target := filepath.Join(out, "x.aci")
	// A running pod cannot be exported.
	p := c.Start(t, "--insecure-options=image", "run", "--net=host", "--pod-name=busy", a, "--", "--print-msg=up", "--silent-sigterm", "--sleep=1h")
	p.WaitOutput(t, "up", 30*time.Second)
	r := c.Run(t, "export", "busy", target)
	wantExit(t, r, 254)
	oneLineError(t, r, "exited")
	c.MustRun(t, "stop", "busy")
	p.Wait(t, 20*time.Second)

	wantExit(t, runInsecure(t, c, "--net=host", "--pod-name=two", a, "--", "--write-file=/a.txt", "--content=A", "---", b), 0)
	// Several apps: --app is needed, and must name one of them.
	r = c.Run(t, "export", "two", target)
	wantExit(t, r, 254)
	oneLineError(t, r, "--app", "exp-a", "exp-b")
	r = c.Run(t, "export", "--app=nope", "two", target)
	wantExit(t, r, 254)
	oneLineError(t, r, "nope")
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed export left %s", target)
	}
	noTempFiles(t, out)
	c.MustRun(t, "export", "--app=exp-a", "two", target)
	if names, _ := aciEntries(t, target); !contains(names, "rootfs/a.txt") {
		t.Errorf("export --app=exp-a lacks the app's file: %v", names)
	}
	r = c.Run(t, "export", "no-such-pod", filepath.Join(out, "y.aci"))
	wantExit(t, r, 254)
	oneLineError(t, r, "no-such-pod")
	// Export left no mount behind (the cleanup of the Ctx checks too).
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), ".export-") {
		t.Errorf("an export mount is left:\n%s", b)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// imageIDs lists the full IDs of the images in the store.
func imageIDs(t *testing.T, c *testutil.Ctx) []string {
	t.Helper()
	r := c.MustRun(t, "image", "list", "--full", "--no-legend", "--fields=id")
	ids := strings.Fields(r.Stdout)
	sort.Strings(ids)
	return ids
}

func TestImageGCKeepsImagesOfLivePods(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	fetch := func(aci string) string {
		return strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", aci).Stdout)
	}
	running := inspectACI(t, "rkt-ng.test/gc-running")
	prepared := inspectACI(t, "rkt-ng.test/gc-prepared")
	exited := inspectACI(t, "rkt-ng.test/gc-exited")
	unused := fetch(inspectACI(t, "rkt-ng.test/gc-unused"))

	p := c.Start(t, "--insecure-options=image", "run", "--net=host", "--pod-name=live", running, "--", "--print-msg=up", "--silent-sigterm", "--sleep=1h")
	p.WaitOutput(t, "up", 30*time.Second)
	c.MustRun(t, "--insecure-options=image", "prepare", "--quiet", prepared)
	wantExit(t, runInsecure(t, c, "--net=host", exited), 0)
	all := imageIDs(t, c)
	if len(all) != 5 { // four apps and the stage1
		t.Fatalf("images before gc: %v", all)
	}
	// Everything was used just now: the default grace period keeps it all.
	c.MustRun(t, "image", "gc")
	if diff := cmp.Diff(all, imageIDs(t, c)); diff != "" {
		t.Errorf("image gc with the default grace period removed images (-want +got):\n%s", diff)
	}
	// With no grace period only the unused image goes.
	r := c.MustRun(t, "image", "gc", "--grace-period=0s")
	if !strings.Contains(r.Stdout, unused) {
		t.Errorf("image gc did not report removing %s:\n%s", unused, r)
	}
	var want []string
	for _, id := range all {
		if id != unused {
			want = append(want, id)
		}
	}
	if diff := cmp.Diff(want, imageIDs(t, c)); diff != "" {
		t.Errorf("images after image gc (-want +got):\n%s", diff)
	}
	// The trees of every pod are still there and the running pod is intact.
	for _, f := range append(globAll(t, c, "pods/*/*/appsinfo/*/treeStoreID"), globAll(t, c, "pods/*/*/stage1TreeStoreID")...) {
		id, _ := os.ReadFile(f)
		if _, err := os.Stat(filepath.Join(c.DataDir, "cas", "tree", strings.TrimSpace(string(id)), "rendered")); err != nil {
			t.Errorf("image gc removed tree %s of %s: %v", id, f, err)
		}
	}
	if st := c.MustRun(t, "status", "live"); !strings.Contains(st.Stdout, "state=running") {
		t.Errorf("the live pod after image gc:\n%s", st)
	}
	c.MustRun(t, "stop", "live")
	wantExit(t, p.Wait(t, 20*time.Second), 0)

	// Once every pod is collected, image gc empties the store.
	c.MustRun(t, "gc", "--grace-period=0s", "--expire-prepared=0s")
	c.MustRun(t, "image", "gc", "--grace-period=0s")
	storeEmpty(t, c)
	// And a second run has nothing to do.
	if r := c.MustRun(t, "image", "gc", "--grace-period=0s"); r.Stdout != "" {
		t.Errorf("a second image gc printed %q", r.Stdout)
	}
}

func globAll(t *testing.T, c *testutil.Ctx, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(c.DataDir, pattern))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestImageExportExtractRender(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	base := testutil.NewACI(t, "rkt-ng.test/base", testutil.WithoutApp(), testutil.WithFile("/base.txt", "base", 0o644))
	c.MustRun(t, "--insecure-options=image", "fetch", base)
	app := testutil.NewACI(t, "rkt-ng.test/app", testutil.WithDependency("rkt-ng.test/base", "", nil),
		testutil.WithFile("/app.txt", "app", 0o640), testutil.WithExec("/app.txt"))
	id := strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", app).Stdout)
	out := t.TempDir()

	// export: the stored blob, which is the uncompressed ACI itself.
	exp := filepath.Join(out, "app.aci")
	c.MustRun(t, "image", "export", "rkt-ng.test/app", exp)
	b, err := os.ReadFile(exp)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha512.Sum512(b); "sha512-"+hex.EncodeToString(sum[:]) != id {
		t.Errorf("image export wrote a file whose sha512 is not the image ID %s", id)
	}
	r := c.Run(t, "image", "export", id, exp)
	wantExit(t, r, 254)
	oneLineError(t, r, "--overwrite")
	c.MustRun(t, "image", "export", "--overwrite", id[:len("sha512-")+12], exp)
	noTempFiles(t, out)

	tree := func(dir string) map[string]string {
		t.Helper()
		got := map[string]string{}
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			if rel == "manifest" {
				got[rel] = "manifest"
				return nil
			}
			b, _ := os.ReadFile(p)
			got[rel] = string(b)
			return nil
		})
		return got
	}
	for _, tc := range []struct {
		name string
		args []string
		want map[string]string
	}{
		{"extract", []string{"image", "extract", "rkt-ng.test/app"}, map[string]string{"manifest": "manifest", "rootfs/app.txt": "app"}},
		{"extract rootfs-only", []string{"image", "extract", "--rootfs-only", "rkt-ng.test/app"}, map[string]string{"app.txt": "app"}},
		{"render", []string{"image", "render", "rkt-ng.test/app"}, map[string]string{"manifest": "manifest", "rootfs/app.txt": "app", "rootfs/base.txt": "base"}},
		{"render rootfs-only", []string{"image", "render", "--rootfs-only", id}, map[string]string{"app.txt": "app", "base.txt": "base"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			c.MustRun(t, append(tc.args, dir)...)
			if diff := cmp.Diff(tc.want, tree(dir)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", strings.Join(tc.args, " "), diff)
			}
			appTxt := filepath.Join(dir, "rootfs", "app.txt")
			if _, ok := tc.want["app.txt"]; ok {
				appTxt = filepath.Join(dir, "app.txt")
			}
			if fi, err := os.Stat(appTxt); err != nil || fi.Mode().Perm() != 0o640 {
				t.Errorf("%s: %v; want mode 0640", appTxt, err)
			}
			// An existing directory is kept unless --overwrite, then replaced.
			os.WriteFile(filepath.Join(dir, "stale"), []byte("x"), 0o644)
			r := c.Run(t, append(tc.args, dir)...)
			wantExit(t, r, 254)
			oneLineError(t, r, "--overwrite")
			c.MustRun(t, append(append(append([]string{}, tc.args[:2]...), "--overwrite"), append(tc.args[2:], dir)...)...)
			if diff := cmp.Diff(tc.want, tree(dir)); diff != "" {
				t.Errorf("%s --overwrite (-want +got):\n%s", strings.Join(tc.args, " "), diff)
			}
			noTempFiles(t, filepath.Dir(dir))
		})
	}
	for _, args := range [][]string{
		{"image", "export", "rkt-ng.test/nope", filepath.Join(out, "n.aci")},
		{"image", "extract", "rkt-ng.test/nope", filepath.Join(out, "n")},
		{"image", "render", "rkt-ng.test/nope", filepath.Join(out, "n")},
	} {
		r := c.Run(t, args...)
		wantExit(t, r, 254)
		oneLineError(t, r, "rkt-ng.test/nope")
	}
}

func TestConfig(t *testing.T) {
	c := testutil.NewCtx(t)
	for _, dir := range []string{c.SystemConfig, c.LocalConfig} {
		os.MkdirAll(filepath.Join(dir, "auth.d"), 0o700)
	}
	write := func(dir, name, body string) {
		if err := os.WriteFile(filepath.Join(dir, "auth.d", name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(c.SystemConfig, "sys.json", `{"rktKind":"auth","rktVersion":"v1","domains":["sys.example.com","both.example.com"],"type":"oauth","credentials":{"token":"SYSTEM-SECRET"}}`)
	write(c.LocalConfig, "local.json", `{"rktKind":"auth","rktVersion":"v1","domains":["both.example.com"],"type":"basic","credentials":{"user":"u","password":"LOCAL-SECRET"}}`)
	write(c.LocalConfig, "docker.json", `{"rktKind":"dockerAuth","rktVersion":"v1","registries":["registry.example.com"],"credentials":{"user":"u","password":"DOCKER-SECRET"}}`)
	r := c.MustRun(t, "config")
	if strings.Contains(r.Stdout, "SECRET") || strings.Contains(r.Stdout, `"u"`) {
		t.Errorf("rkt config prints credentials:\n%s", r.Stdout)
	}
	var d struct {
		Stage0 []map[string]any `json:"stage0"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &d); err != nil {
		t.Fatalf("rkt config: %v\n%s", err, r.Stdout)
	}
	kinds := map[string][]map[string]any{}
	for _, e := range d.Stage0 {
		if e["rktVersion"] != "v1" {
			t.Errorf("entry without rktVersion v1: %v", e)
		}
		k, _ := e["rktKind"].(string)
		kinds[k] = append(kinds[k], e)
	}
	if p := kinds["paths"]; len(p) != 1 || p[0]["data"] != c.DataDir || p[0]["local-config"] != c.LocalConfig {
		t.Errorf("paths entry: %v", p)
	}
	if s := kinds["stage1"]; len(s) != 1 || s[0]["name"] == nil || s[0]["location"] == nil {
		t.Errorf("stage1 entry: %v", s)
	}
	if tr := kinds["trust"]; len(tr) != 1 || !strings.Contains(r.Stdout, filepath.Join(c.LocalConfig, "trustedkeys")) {
		t.Errorf("trust entry: %v", tr)
	}
	auth := map[string]string{}
	for _, e := range kinds["auth"] {
		for _, dom := range e["domains"].([]any) {
			auth[dom.(string)] = e["type"].(string)
		}
	}
	// The local config's entry for a domain replaces the system's.
	if diff := cmp.Diff(map[string]string{"sys.example.com": "oauth", "both.example.com": "basic"}, auth); diff != "" {
		t.Errorf("auth domains (-want +got):\n%s", diff)
	}
	if da := kinds["dockerAuth"]; len(da) != 1 || !strings.Contains(r.Stdout, "registry.example.com") {
		t.Errorf("dockerAuth entry: %v", da)
	}
}

// TestExportHostileSymlinks: an app leaves symlinks to a host file and to
// the host's root in its rootfs; rkt export archives them as symlinks and
// never reads what they point to.
func TestExportHostileSymlinks(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	out := t.TempDir()
	secret := filepath.Join(out, "host-secret")
	if err := os.WriteFile(secret, []byte("HOST-ONLY-BYTES"), 0o600); err != nil {
		t.Fatal(err)
	}
	aci := testutil.NewACI(t, "rkt-ng.test/hostile", testutil.WithBusybox(),
		testutil.WithExec("/bin/sh", "-c", "ln -s "+secret+" /leak && ln -s / /hostroot && ln -s ../../../../.."+secret+" /rel"))
	uuidFile := filepath.Join(out, "uuid")
	wantExit(t, runInsecure(t, c, "--net=host", "--uuid-file-save="+uuidFile, aci), 0)
	uuid, err := os.ReadFile(uuidFile)
	if err != nil {
		t.Fatal(err)
	}
	exported := filepath.Join(out, "exported.aci")
	c.MustRun(t, "export", string(uuid), exported)
	b, err := os.ReadFile(exported)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("HOST-ONLY-BYTES")) {
		t.Fatal("the exported image holds the host file's content")
	}
	tr := tar.NewReader(bytes.NewReader(b))
	links := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(h.Name, "rootfs/hostroot/") {
			t.Fatalf("export followed the symlink to the host root: %s", h.Name)
		}
		if h.Typeflag == tar.TypeSymlink {
			links[h.Name] = h.Linkname
		}
	}
	for name, target := range map[string]string{"rootfs/leak": secret, "rootfs/hostroot": "/", "rootfs/rel": "../../../../.." + secret} {
		if links[name] != target {
			t.Errorf("%s: symlink to %q, want an entry that is a symlink to %q", name, links[name], target)
		}
	}
}
