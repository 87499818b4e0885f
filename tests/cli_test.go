package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// rkt 1.30 answered `rkt` without a command with its help and "missing
// command", exit 2. An unknown subcommand of a group (`rkt image bogus`)
// printed the group's help with exit 0 in rkt 1.30; rkt-ng refuses it, as
// it refuses `rkt bogus`, with one error line and exit 2 (README,
// "Differences from rkt").
func TestUnknownCommand(t *testing.T) {
	c := testutil.NewCtx(t)
	for _, args := range [][]string{{"image", "bogus"}, {"bogus"}, {"image", "bogus", "list"}} {
		r := c.Run(t, args...)
		wantExit(t, r, 2)
		oneLineError(t, r, "unknown command", "bogus")
	}
	r := c.Run(t)
	wantExit(t, r, 2)
	oneLineError(t, r, "missing command")
	if !strings.Contains(r.Stdout, "Available Commands") {
		t.Errorf("rkt without a command printed no help:\n%s", r)
	}
	// A group alone prints its help and succeeds, as in rkt 1.30.
	if r := c.MustRun(t, "image"); !strings.Contains(r.Stdout, "list") {
		t.Errorf("rkt image printed no help:\n%s", r)
	}
}

// rkt 1.30's `rkt run --help` (and prepare's) listed every pod and app
// flag with its help text; run-prepared listed its run flags.
func TestRunHelpListsFlags(t *testing.T) {
	c := testutil.NewCtx(t)
	appFlags := []string{"--exec", "--name", "--working-dir", "--user", "--group", "--signature", "--memory", "--cpu",
		"--cpu-shares", "--caps-retain", "--caps-remove", "--seccomp", "--oom-score-adj", "--readonly-rootfs",
		"--mount", "--environment", "--annotation", "--user-annotation", "--user-label", "--supplementary-gids"}
	podFlags := []string{"--volume", "--set-env", "--set-env-file", "--inherit-env", "--pod-manifest", "--pull-policy",
		"--uuid-file-save", "--no-overlay", "--stage1-path", "--stage1-url", "--stage1-name", "--stage1-hash",
		"--stage1-from-dir", "--mds-register", "--private-users", "--port", "--dns", "--hosts-entry"}
	runFlags := []string{"--net", "--hostname", "--ipc", "--interactive"}
	for _, tc := range []struct {
		cmd  string
		want []string
	}{
		{"run", append(append(append([]string{}, appFlags...), podFlags...), runFlags...)},
		{"prepare", append(append(append([]string{}, appFlags...), podFlags...), "--quiet")},
		{"run-prepared", append(append([]string{}, runFlags...), "--mds-register")},
	} {
		r := c.MustRun(t, tc.cmd, "--help")
		for _, f := range tc.want {
			if !strings.Contains(r.Stdout, "  "+f+" ") {
				t.Errorf("rkt %s --help does not list %s", tc.cmd, f)
			}
		}
		// Deprecated flags are accepted but not advertised.
		if strings.Contains(r.Stdout, "--store-only") || strings.Contains(r.Stdout, "--cap-retain") {
			t.Errorf("rkt %s --help lists a deprecated flag", tc.cmd)
		}
	}
}

// rkt 1.30 still accepted --store-only and --no-store (run, prepare,
// fetch) and --cap-retain/--cap-remove (run, prepare app flags) with
// pflag's notice "Flag --X has been deprecated, <hint>" on stderr, and
// refused --store-only with --no-store.
func TestDeprecatedFlags(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/deprecated")
	// --store-only is --pull-policy=never: an unknown name is not discovered.
	r := c.Run(t, "fetch", "--store-only", "example.invalid/nothing:1")
	wantExit(t, r, 254)
	if !strings.Contains(r.Stderr, "Flag --store-only has been deprecated, please use --pull-policy=never") {
		t.Errorf("no deprecation notice for --store-only:\n%s", r)
	}
	oneLineError(t, r, "example.invalid/nothing")
	r = c.Run(t, "--insecure-options=image", "fetch", "--store-only", "--no-store", aci)
	wantExit(t, r, 2)
	oneLineError(t, r, "--store-only", "--no-store")

	r = runInsecure(t, c, "--no-store", "--net=host", aci, "--cap-retain=CAP_NET_BIND_SERVICE,CAP_CHOWN", "--", "--print-caps")
	wantExit(t, r, 0)
	for _, notice := range []string{
		"Flag --no-store has been deprecated, please use --pull-policy=update",
		"Flag --cap-retain has been deprecated, use --caps-retain instead",
	} {
		if !strings.Contains(r.Stderr, notice) {
			t.Errorf("stderr lacks %q:\n%s", notice, r)
		}
	}
	if got := field(t, r.Stdout, "CapBnd"); got != "0000000000000401" {
		t.Errorf("--cap-retain: CapBnd = %s, want 0000000000000401", got)
	}
	r = runInsecure(t, c, "--net=host", aci, "--cap-remove=CAP_CHOWN", "--", "--print-caps")
	wantExit(t, r, 0)
	if got := field(t, r.Stdout, "CapBnd"); got != "00000000a80425fa" {
		t.Errorf("--cap-remove: CapBnd = %s, want 00000000a80425fa", got)
	}
	r = c.Run(t, "--insecure-options=image", "prepare", "--store-only", aci)
	wantExit(t, r, 0)
	if !strings.Contains(r.Stderr, "Flag --store-only has been deprecated") {
		t.Errorf("prepare: no deprecation notice:\n%s", r)
	}
	c.MustRun(t, "rm", strings.TrimSpace(r.Stdout))
}

// rkt 1.30 parsed every flag of run and prepare between images, global
// flags included: `rkt run IMAGE --insecure-options=image --debug` works.
func TestGlobalFlagsAfterImage(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/after")
	r := c.Run(t, "run", aci, "--insecure-options=image", "--net=host", "--debug", "--", "--exit-code=4")
	wantExit(t, r, 4)
	if !strings.Contains(r.Stderr, "level=DEBUG") {
		t.Errorf("--debug after the image gave no debug output:\n%s", r)
	}
	r = c.Run(t, "prepare", aci, "--insecure-options=image", "--quiet")
	wantExit(t, r, 0)
	c.MustRun(t, "rm", strings.TrimSpace(r.Stdout))
	// Without the option the image is refused: the flag did the work.
	wantExit(t, c.Run(t, "prepare", aci), 254)
}

// rkt 1.30 refused two --stage1-* flags while parsing the command line
// ("flags --stage1-path and --stage1-url are mutually exclusive"), before
// any image was fetched.
func TestStage1FlagsExclusive(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	srv := testutil.NewImageServer(t)
	srv.Trust(t, c)
	aci := inspectACI(t, "rkt-ng.test/s1x")
	for _, cmd := range []string{"run", "prepare"} {
		r := c.Run(t, "--insecure-options=image", cmd, "--stage1-url=https://"+srv.Host+"/s1.aci",
			"--stage1-path="+testutil.Stage1Image(t), "https://"+srv.Host+"/app.aci", aci)
		wantExit(t, r, 2)
		oneLineError(t, r, "--stage1-path", "--stage1-url", "mutually exclusive")
	}
	if n := srv.Count(""); n != 0 {
		t.Errorf("%d requests before the flags were refused: %v", n, srv.Log())
	}
	if m, _ := filepath.Glob(filepath.Join(c.DataDir, "cas", "images", "*")); len(m) != 0 {
		t.Errorf("images stored before the flags were refused: %v", m)
	}
	if out := strings.TrimSpace(c.MustRun(t, "list", "--no-legend").Stdout); out != "" {
		t.Errorf("pods left behind:\n%s", out)
	}
}

// rkt 1.30 joined a --mount target to the app's root: a relative
// target=data is mounted at /data.
func TestRelativeMountTarget(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	host := t.TempDir()
	aci := inspectACI(t, "rkt-ng.test/relmount")
	r := runInsecure(t, c, "--net=host", "--volume=data,kind=host,source="+host, aci,
		"--mount=volume=data,target=data", "--", "--write-file=/data/out.txt", "--content=relative")
	wantExit(t, r, 0)
	b, err := os.ReadFile(filepath.Join(host, "out.txt"))
	if err != nil || string(b) != "relative" {
		t.Errorf("file written through target=data: %q, %v", b, err)
	}
}

// rkt 1.30's --stage1-url fetched the stage1 image from a URL (signature at
// URL.asc, checked against the keys trusted for the stage1's name),
// --stage1-hash took an image ID (prefix) from the store and --stage1-name a
// name[:version] found in the store (or discovered).
func TestStage1Flags(t *testing.T) {
	r := newRemote(t)
	s1 := testutil.Stage1Image(t)
	body, err := os.ReadFile(s1)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := os.ReadFile(r.key.SignFile(t, s1))
	if err != nil {
		t.Fatal(err)
	}
	r.srv.Add("/s1/stage1.aci", testutil.ServedFile{Body: body})
	r.srv.Add("/s1/stage1.aci.asc", testutil.ServedFile{Body: sig})
	url := "https://" + r.srv.Host + "/s1/stage1.aci"
	app := strings.TrimSpace(r.c.MustRun(t, "--insecure-options=image", "fetch", "--full", inspectACI(t, "rkt-ng.test/s1flags")).Stdout)
	// Not trusted yet: the stage1 from the URL is refused.
	res := r.c.Run(t, "run", "--net=host", "--stage1-url="+url, app)
	wantExit(t, res, 254)
	oneLineError(t, res, url)
	r.c.MustRun(t, "trust", "--prefix=rkt-ng.io/rkt/stage1-ns", "--skip-fingerprint-review", r.key.WritePublicKey(t))
	wantExit(t, r.c.Run(t, "run", "--net=host", "--stage1-url="+url, app, "--", "--exit-code=3"), 3)
	s1ID := testutil.ImageID(t, s1)
	before := r.srv.Count("")
	wantExit(t, r.c.Run(t, "run", "--net=host", "--stage1-hash="+s1ID[:7+12], app, "--", "--exit-code=4"), 4)
	wantExit(t, r.c.Run(t, "run", "--net=host", "--stage1-name=rkt-ng.io/rkt/stage1-ns:0.1.0", app, "--", "--exit-code=5"), 5)
	if n := r.srv.Count("") - before; n != 0 {
		t.Errorf("--stage1-hash/--stage1-name of a stored stage1 made %d requests", n)
	}
	res = r.c.Run(t, "run", "--net=host", "--stage1-hash=sha512-"+strings.Repeat("0", 16), app)
	wantExit(t, res, 254)
	oneLineError(t, res, "--stage1-hash", "no image IDs found")
}
