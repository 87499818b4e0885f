package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rkt-ng/rkt/tests/testutil"
)

func writeConfigFile(t *testing.T, dir, sub, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, sub, "test.json"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// configEntry returns the `rkt config` entry of rktKind kind.
func configEntry(t *testing.T, out, kind string) map[string]any {
	t.Helper()
	var d struct {
		Stage0 []map[string]any `json:"stage0"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("rkt config: %v\n%s", err, out)
	}
	for _, e := range d.Stage0 {
		if e["rktKind"] == kind {
			return e
		}
	}
	t.Fatalf("rkt config has no %s entry:\n%s", kind, out)
	return nil
}

// rkt 1.30's stage1 configuration kind: stage1.d/*.json of the system and
// local config dirs give the default stage1 image (name, version,
// location), the local dir overriding the system one, used when no
// --stage1-* flag is given; a location outside the stage1 images dir needs
// a signature; name:version is taken from the store once there; `rkt
// config` prints it; a relative location is refused.
func TestStage1Config(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	s1 := filepath.Join(t.TempDir(), "my-stage1.aci")
	b, err := os.ReadFile(testutil.Stage1Image(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s1, b, 0o644); err != nil {
		t.Fatal(err)
	}
	const name, version = "rkt-ng.io/rkt/stage1-ns", "0.1.0"
	writeConfigFile(t, c.SystemConfig, "stage1.d", `{"rktKind":"stage1","rktVersion":"v1","name":"`+name+`","version":"`+version+`","location":"/nonexistent/stage1.aci"}`)
	writeConfigFile(t, c.LocalConfig, "stage1.d", `{"rktKind":"stage1","rktVersion":"v1","location":"`+s1+`"}`)
	e := configEntry(t, c.MustRun(t, "config").Stdout, "stage1")
	if e["name"] != name || e["version"] != version || e["location"] != s1 {
		t.Errorf("rkt config stage1 entry = %v, want %s %s %s", e, name, version, s1)
	}
	aci := inspectACI(t, "rkt-ng.test/stage1conf")
	id := strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", "--full", aci).Stdout)
	// The configured location is not a trusted one: unsigned, refused.
	r := c.Run(t, "run", "--net=host", id)
	wantExit(t, r, 254)
	oneLineError(t, r, "my-stage1.aci")
	// With signatures off it is used (the local location, not the system's).
	wantExit(t, runInsecure(t, c, "--net=host", id, "--", "--exit-code=3"), 3)
	// Now name:version is in the store and found there, without the file.
	if err := os.Remove(s1); err != nil {
		t.Fatal(err)
	}
	wantExit(t, c.Run(t, "run", "--net=host", id, "--", "--exit-code=4"), 4)
	// A relative location is refused, for every command reading the config.
	writeConfigFile(t, c.LocalConfig, "stage1.d", `{"rktKind":"stage1","rktVersion":"v1","location":"stage1.aci"}`)
	t.Cleanup(func() { os.RemoveAll(filepath.Join(c.LocalConfig, "stage1.d")) }) // before the context's gc
	for _, args := range [][]string{{"config"}, {"run", id}} {
		r = c.Run(t, args...)
		wantExit(t, r, 254)
		oneLineError(t, r, "stage1.d", "relative path")
	}
}

// rkt 1.30's paths configuration kind: paths.d/*.json's "data" is the data
// directory when --dir is not given (--dir wins when it is), and
// "stage1-images" the directory --stage1-from-dir names files in; both
// must be absolute; `rkt config` prints them.
func TestPathsConfig(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	data := filepath.Join(t.TempDir(), "data")
	s1dir := t.TempDir()
	b, err := os.ReadFile(testutil.Stage1Image(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s1dir, "custom.aci"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	writeConfigFile(t, c.LocalConfig, "paths.d", `{"rktKind":"paths","rktVersion":"v1","data":"`+data+`","stage1-images":"`+s1dir+`"}`)
	// Without --dir: the configured data directory.
	noDir := func(args ...string) testutil.Result {
		t.Helper()
		cmd := exec.Command(c.Rkt, append([]string{"--local-config=" + c.LocalConfig, "--system-config=" + c.SystemConfig, "--user-config=" + c.UserConfig}, args...)...)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return testutil.Result{Stdout: out.String(), Stderr: errb.String(), ExitCode: code}
	}
	e := configEntry(t, noDir("config").Stdout, "paths")
	if e["data"] != data || e["stage1-images"] != s1dir {
		t.Errorf("rkt config paths entry = %v, want data %s, stage1-images %s", e, data, s1dir)
	}
	aci := inspectACI(t, "rkt-ng.test/pathsconf")
	if r := noDir("--insecure-options=image", "fetch", aci); r.ExitCode != 0 {
		t.Fatalf("fetch without --dir: %s", r)
	}
	t.Cleanup(func() { noDir("--dir="+data, "gc", "--grace-period=0s") }) // never the default data dir
	if m, _ := filepath.Glob(filepath.Join(data, "cas", "images", "*")); len(m) == 0 {
		t.Errorf("fetch without --dir stored nothing in paths.d's data dir %s", data)
	}
	// --dir wins over paths.d.
	if e := configEntry(t, c.MustRun(t, "config").Stdout, "paths"); e["data"] != c.DataDir {
		t.Errorf("with --dir, rkt config data = %v, want %s", e["data"], c.DataDir)
	}
	// --stage1-from-dir names a file of paths.d's stage1-images, trusted.
	wantExit(t, c.Run(t, "run", "--insecure-options=image", "--net=host", "--stage1-from-dir=custom.aci", aci, "--", "--exit-code=5"), 5)
	r := c.Run(t, "run", "--insecure-options=image", "--net=host", "--stage1-from-dir=../custom.aci", aci)
	wantExit(t, r, 254)
	oneLineError(t, r, "--stage1-from-dir", "file name")
	writeConfigFile(t, c.LocalConfig, "paths.d", `{"rktKind":"paths","rktVersion":"v1","data":"relative/data"}`)
	t.Cleanup(func() { os.RemoveAll(filepath.Join(c.LocalConfig, "paths.d")) }) // before the context's gc
	r = c.Run(t, "config")
	wantExit(t, r, 254)
	oneLineError(t, r, "paths.d", "absolute")
}
