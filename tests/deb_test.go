package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// requireAptLists skips the test unless the host's apt can resolve
// packages: it runs `apt-get update` when apt has no lists yet.
func requireAptLists(t *testing.T) {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "apt-get")
	testutil.RequireCommand(t, "dpkg-deb")
	if m, _ := filepath.Glob("/var/lib/apt/lists/*_Packages*"); len(m) > 0 {
		return
	}
	if out, err := exec.Command("apt-get", "-q", "update").CombinedOutput(); err != nil {
		t.Skipf("apt has no package lists and apt-get update failed (%v): %s", err, out)
	}
	if m, _ := filepath.Glob("/var/lib/apt/lists/*_Packages*"); len(m) == 0 {
		t.Skip("apt has no package lists even after apt-get update (no sources?)")
	}
}

// aptCandidate returns the version apt offers for pkg now, and whether the
// entry of that version in the version table lists a "-security" suite.
func aptCandidate(t *testing.T, pkg string) (version string, security bool) {
	t.Helper()
	out, err := exec.Command("apt-cache", "policy", pkg).Output()
	if err != nil {
		t.Fatalf("apt-cache policy %s: %v", pkg, err)
	}
	lines := strings.Split(string(out), "\n")
	for _, l := range lines {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Candidate: "); ok {
			version = v
		}
	}
	in := false
	for _, l := range lines {
		f := strings.Fields(strings.TrimPrefix(l, " *** "))
		switch {
		case len(f) == 2 && strings.HasPrefix(l, "     ") && !strings.HasPrefix(l, "      "), strings.HasPrefix(l, " *** "):
			in = f[0] == version
		case in && strings.Contains(l, "-security "):
			security = true
		}
	}
	if version == "" || version == "(none)" {
		t.Fatalf("apt offers no %s:\n%s", pkg, out)
	}
	return version, security
}

func debArch() string { return runtime.GOARCH }

// TestImageBuildFromDeb builds an image from busybox-static and libcap2-bin
// (which depends on libcap2 and libc6), runs it, and checks the recorded
// package set, reproducibility and `image outdated` on it.
func TestImageBuildFromDeb(t *testing.T) {
	requireAptLists(t)
	c := testutil.NewCtx(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "caps.aci")
	script := `echo greeting=$GREETING; /sbin/getcap /bin/busybox; echo getcap=$?; grep -c '^Package:' /var/lib/dpkg/status`
	build := func(out string) {
		t.Helper()
		c.MustRun(t, "image", "build", "--from-deb", "busybox-static", "libcap2-bin",
			"--exec", "/bin/busybox", "--exec", "sh", "--exec", "-c", "--exec", script,
			"--env", "GREETING=hi", "--name", "example.com/caps", "--mtime", "0", out)
	}
	build(out)
	_, m := aciEntries(t, out)
	var record string
	for _, a := range m["annotations"].([]any) {
		a := a.(map[string]any)
		if a["name"] == "rkt-ng.io/deb-packages" {
			record = a["value"].(string)
		}
	}
	recorded := map[string]string{}
	for _, l := range strings.Split(record, "\n") {
		pkg, ver, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("bad record line %q in %q", l, record)
		}
		recorded[pkg] = ver
	}
	for _, p := range []string{"busybox-static", "libcap2-bin", "libcap2", "libc6"} {
		want, _ := aptCandidate(t, p)
		if got := recorded[p+":"+debArch()]; got != want {
			t.Errorf("recorded %s version %q, apt offers %q (record %q)", p, got, want, record)
		}
	}
	if _, ok := recorded["libpam-cap:"+debArch()]; ok {
		t.Errorf("recommended package libpam-cap installed: %q", record)
	}

	// Same packages, same --mtime: same bytes.
	out2 := filepath.Join(dir, "caps2.aci")
	build(out2)
	b1, _ := os.ReadFile(out)
	b2, _ := os.ReadFile(out2)
	if !bytes.Equal(b1, b2) {
		t.Error("two builds with --mtime differ")
	}

	r := c.MustRun(t, "--insecure-options=image", "run", out)
	for _, want := range []string{"greeting=hi", "getcap=0", strconv.Itoa(len(recorded))} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("run output lacks %q: %s", want, r)
		}
	}

	// Built from the current lists: nothing to update.
	r = c.Run(t, "image", "outdated", out)
	if r.ExitCode != 0 || strings.Contains(r.Stdout, "libc6") {
		t.Errorf("outdated on a fresh image: %s", r)
	}
}

// TestImageOutdated checks `image outdated` on an image whose recorded
// versions are older than apt's: the listed packages, the security mark
// and the exit status (1: newer versions, 3: some from a security archive).
func TestImageOutdated(t *testing.T) {
	requireAptLists(t)
	c := testutil.NewCtx(t)
	arch := debArch()
	libc, _ := aptCandidate(t, "libc6")
	_, caSecurity := aptCandidate(t, "ca-certificates")
	record := "busybox-static:" + arch + "=1:0.1-1\nca-certificates:all=20000101\nlibc6:" + arch + "=" + libc
	aci := testutil.NewACI(t, "example.com/old-debs", testutil.WithoutApp(),
		testutil.WithAnnotation("rkt-ng.io/deb-packages", record))
	check := func(args ...string) {
		t.Helper()
		r := c.Run(t, append([]string{"image", "outdated"}, args...)...)
		want := 1
		if caSecurity {
			want = 3
		}
		if r.ExitCode != want {
			t.Errorf("exit code %d, want %d: %s", r.ExitCode, want, r)
		}
		rows := map[string][]string{}
		for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n")[1:] {
			f := strings.Fields(l)
			rows[f[1]] = f
		}
		if f := rows["busybox-static:"+arch]; len(f) != 5 || f[2] != "1:0.1-1" || f[4] != "no" {
			t.Errorf("busybox-static row %q: %s", f, r)
		}
		sec := map[bool]string{true: "yes", false: "no"}[caSecurity]
		if f := rows["ca-certificates:all"]; len(f) != 5 || f[4] != sec {
			t.Errorf("ca-certificates row %q, want security %s: %s", f, sec, r)
		}
		if _, ok := rows["libc6:"+arch]; ok || len(rows) != 2 {
			t.Errorf("want exactly busybox-static and ca-certificates listed: %s", r)
		}
	}
	check(aci)
	c.MustRun(t, "--insecure-options=image", "fetch", aci)
	check("example.com/old-debs")
	check() // every image of the store that records packages

	plain := testutil.NewACI(t, "example.com/plain", testutil.WithoutApp())
	r := c.Run(t, "image", "outdated", plain)
	if r.ExitCode != 254 || !strings.Contains(r.Stderr, "records no Debian packages") || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
		t.Errorf("outdated on an image without packages: %s", r)
	}
}

// TestImageBuildFromDebBadInput checks one clear line, exit 254 (2 for
// malformed requests and flags) and no output file for packages apt
// cannot give.
func TestImageBuildFromDebBadInput(t *testing.T) {
	requireAptLists(t)
	c := testutil.NewCtx(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		pkgs []string
		want string
		code int
	}{
		{[]string{"no-such-package-rkt"}, "Unable to locate package no-such-package-rkt", 254},
		{[]string{"busybox-static=0.0.0-0"}, "Version '0.0.0-0' for 'busybox-static' was not found", 254},
		// Not a package name: a usage error, apt never sees it.
		{[]string{"--", "-oDebug::X=1"}, `package "-oDebug::X=1"`, 2},
		{[]string{"--exec", "bin/sh", "busybox-static"}, `--exec "bin/sh"`, 2},
	} {
		out := filepath.Join(dir, "bad.aci")
		r := c.Run(t, append(append([]string{"image", "build", "--from-deb"}, tc.pkgs...), out)...)
		if r.ExitCode != tc.code || !strings.Contains(r.Stderr, tc.want) || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
			t.Errorf("%v: want exit %d and one line with %q: %s", tc.pkgs, tc.code, tc.want, r)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%v: output file written", tc.pkgs)
		}
		noTempFiles(t, dir)
	}
	r := c.Run(t, "image", "build", "--exec", "/bin/sh", "dir", "out.aci")
	if r.ExitCode != 2 || !strings.Contains(r.Stderr, "--exec needs --from-deb") {
		t.Errorf("--exec without --from-deb: %s", r)
	}
}

// TestImageRebuildFromDeb rebuilds an image whose record is old: the new
// image keeps the manifest (name, app, labels but version), records the
// current versions and is no longer outdated.
func TestImageRebuildFromDeb(t *testing.T) {
	requireAptLists(t)
	c := testutil.NewCtx(t)
	arch := debArch()
	old := testutil.NewACI(t, "example.com/bb", testutil.WithExec("/bin/busybox", "echo", "rebuilt"),
		testutil.WithLabel("version", "1"), testutil.WithLabel("channel", "stable"),
		testutil.WithAnnotation("rkt-ng.io/deb-packages", "busybox-static:"+arch+"=1:0.1-1"),
		testutil.WithAnnotation("rkt-ng.io/deb-request", "busybox-static=1:0.1-1"))
	c.MustRun(t, "--insecure-options=image", "fetch", old)
	out := filepath.Join(t.TempDir(), "new.aci")
	c.MustRun(t, "image", "build", "--from-deb", "--rebuild", "example.com/bb", "--mtime", "0", out)
	_, m := aciEntries(t, out)
	if m["name"] != "example.com/bb" {
		t.Errorf("name %v", m["name"])
	}
	labels := map[string]any{}
	for _, l := range m["labels"].([]any) {
		l := l.(map[string]any)
		labels[l["name"].(string)] = l["value"]
	}
	bb, _ := aptCandidate(t, "busybox-static")
	if labels["channel"] != "stable" || labels["version"] == "1" || !strings.HasPrefix(labels["version"].(string), bb+"-") {
		t.Errorf("labels %v, want channel kept and version %s-DIGEST", labels, bb)
	}
	var record, request string
	for _, a := range m["annotations"].([]any) {
		a := a.(map[string]any)
		switch a["name"] {
		case "rkt-ng.io/deb-packages":
			record = a["value"].(string)
		case "rkt-ng.io/deb-request":
			request = a["value"].(string)
		}
	}
	if record != "busybox-static:"+arch+"="+bb || request != "busybox-static" {
		t.Errorf("record %q request %q, want busybox-static at %s", record, request, bb)
	}
	r := c.MustRun(t, "--insecure-options=image", "run", out)
	if !strings.Contains(r.Stdout, "rebuilt") {
		t.Errorf("rebuilt image's app: %s", r)
	}
	c.MustRun(t, "image", "outdated", out)

	plain := testutil.NewACI(t, "example.com/plain", testutil.WithoutApp())
	r = c.Run(t, "image", "build", "--from-deb", "--rebuild", plain, filepath.Join(t.TempDir(), "x.aci"))
	if r.ExitCode != 254 || !strings.Contains(r.Stderr, "records no Debian packages") {
		t.Errorf("--rebuild of an image without packages: %s", r)
	}
}

// localRepo writes a trusted local apt repository with one suite per key
// of suites (each a Packages index of the given stanzas) and an APT_CONFIG
// that uses only it, with private lists, and runs apt-get update with it.
// It returns the APT_CONFIG environment entry.
func localRepo(t *testing.T, suites map[string]string) string {
	t.Helper()
	root := t.TempDir()
	// apt reads the repository as its sandbox user.
	for _, d := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	arch := debArch()
	var sources strings.Builder
	for suite, stanzas := range suites {
		rel := "main/binary-" + arch + "/Packages"
		p := filepath.Join(root, "repo", "dists", suite, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(stanzas), 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(stanzas))
		release := fmt.Sprintf("Origin: rkt-test\nSuite: %s\nCodename: %s\nDate: Thu, 01 Jan 2026 00:00:00 UTC\nComponents: main\nArchitectures: %s all\nSHA256:\n %s %d %s\n",
			suite, suite, arch, hex.EncodeToString(sum[:]), len(stanzas), rel)
		if err := os.WriteFile(filepath.Join(root, "repo", "dists", suite, "Release"), []byte(release), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sources, "deb [trusted=yes] file:%s/repo %s main\n", root, suite)
	}
	for _, d := range []string{"lists/partial", "cache/archives/partial", "parts"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "sources.list"), []byte(sources.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("Dir::Etc::sourcelist %q;\nDir::Etc::sourceparts %q;\nDir::State::lists %q;\nDir::Cache %q;\n",
		root+"/sources.list", root+"/parts", root+"/lists/", root+"/cache/")
	if err := os.WriteFile(filepath.Join(root, "apt.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	env := "APT_CONFIG=" + filepath.Join(root, "apt.conf")
	cmd := exec.Command("apt-get", "-q", "update")
	cmd.Env = append(os.Environ(), env)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("apt-get update of the local repository: %v\n%s", err, out)
	}
	return env
}

// TestImageOutdatedLocalRepo checks `image outdated` against a crafted apt
// state: a local repository whose bookworm-security suite has a newer
// rkt-test-sec and whose bookworm suite has a newer rkt-test-plain.
func TestImageOutdatedLocalRepo(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "apt-get")
	arch := debArch()
	stanza := func(name, version, a string) string {
		return fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: %s\nFilename: pool/%s_%s_%s.deb\nSize: 100\nSHA256: %s\nDescription: test\n\n",
			name, version, a, name, version, a, strings.Repeat("0", 64))
	}
	c := testutil.NewCtx(t)
	c.Env = append(c.Env, localRepo(t, map[string]string{
		"bookworm-security": stanza("rkt-test-sec", "1.1-1", arch),
		"bookworm":          stanza("rkt-test-plain", "2.0-1", "all") + stanza("rkt-test-same", "1:1.0-1", arch) + stanza("rkt-test-sec", "1.0-1", arch),
	}))
	image := func(name string, pkgs ...string) string {
		return testutil.NewACI(t, name, testutil.WithoutApp(),
			testutil.WithAnnotation("rkt-ng.io/deb-packages", strings.Join(pkgs, "\n")))
	}
	sec := "rkt-test-sec:" + arch + "=1.0-1"
	plain := "rkt-test-plain:all=1.9~rc1-1"
	same := "rkt-test-same:" + arch + "=1:1.0-1"
	gone := "rkt-test-gone:" + arch + "=1.0"
	for _, tc := range []struct {
		pkgs []string
		rows []string
		code int
	}{
		{[]string{gone, plain, same, sec}, []string{"rkt-test-plain:all 1.9~rc1-1 2.0-1 no", "rkt-test-sec:" + arch + " 1.0-1 1.1-1 yes"}, 3},
		{[]string{plain, same}, []string{"rkt-test-plain:all 1.9~rc1-1 2.0-1 no"}, 1},
		{[]string{same, gone}, nil, 0},
	} {
		aci := image("example.com/local", tc.pkgs...)
		r := c.Run(t, "image", "outdated", aci)
		var rows []string
		for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n")[1:] {
			rows = append(rows, strings.Join(strings.Fields(l)[1:], " "))
		}
		if r.ExitCode != tc.code || strings.Join(rows, "|") != strings.Join(tc.rows, "|") {
			t.Errorf("%v: want exit %d and rows %q, got rows %q: %s", tc.pkgs, tc.code, tc.rows, rows, r)
		}
	}
}
