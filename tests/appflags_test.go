package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// lines returns the KEY=VALUE lines of an inspect report as a map.
func reportLines(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

func TestEnvPrecedence(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/envprec",
		testutil.WithEnv("IMG", "image"), testutil.WithEnv("FILE", "image"),
		testutil.WithPasswd("root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/ash\n"),
		testutil.WithGroup("root:x:0:\nalice:x:1000:\n"),
		testutil.WithUser("alice", "alice"))
	envFile := filepath.Join(t.TempDir(), "env")
	os.WriteFile(envFile, []byte("# comment\nFILE=file\nSET=file\n\n"), 0o644)
	// HOME, USER, LOGNAME and SHELL come from the image's passwd.
	r := runInsecure(t, c, "--net=host", aci, "--", "--print-env=HOME", "--print-env=USER", "--print-env=LOGNAME", "--print-env=SHELL")
	wantExit(t, r, 0)
	if diff := cmp.Diff(map[string]string{"HOME": "/home/alice", "USER": "alice", "LOGNAME": "alice", "SHELL": "/bin/ash"}, reportLines(r.Stdout)); diff != "" {
		t.Errorf("passwd environment (-want +got):\n%s", diff)
	}
	cmd := c.Cmd("--insecure-options=image", "run", "--net=host", "--inherit-env",
		"--set-env-file="+envFile, "--set-env=SET=set-env", "--set-env=ENVF=set-env",
		aci, "--environment=ENVF=environment",
		"--", "--print-env=INHERIT", "--print-env=IMG", "--print-env=FILE", "--print-env=SET", "--print-env=ENVF")
	// Each variable is set in every layer below the one that must win.
	cmd.Env = append(os.Environ(), "INHERIT=inherit", "IMG=inherit", "FILE=inherit", "SET=inherit", "ENVF=inherit")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("run: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	got := reportLines(stdout.String())
	want := map[string]string{
		"INHERIT": "inherit", "IMG": "image", "FILE": "file", "SET": "set-env", "ENVF": "environment",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s=%q, want %q\n%s", k, got[k], v, stdout.String())
		}
	}
	// Without --inherit-env rkt's environment stays outside.
	cmd = c.Cmd("--insecure-options=image", "run", "--net=host", aci, "--", "--print-env=INHERIT")
	cmd.Env = append(os.Environ(), "INHERIT=inherit")
	out, err := cmd.Output()
	if err != nil || !strings.Contains(string(out), "INHERIT is unset") {
		t.Errorf("without --inherit-env: %v %q", err, out)
	}
}

func TestUserGroupFlags(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/users",
		testutil.WithPasswd("root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n"),
		testutil.WithGroup("root:x:0:\nalice:x:1000:\nstaff:x:50:\n"),
		testutil.WithFileOwned("/owned", "x", 0o644, 1234, 2345))
	for _, tc := range []struct {
		name     string
		flags    []string
		uid, gid string
	}{
		{"by name", []string{"--user=alice", "--group=staff"}, "1000", "50"},
		{"by number", []string{"--user=4321", "--group=4322"}, "4321", "4322"},
		{"by path", []string{"--user=/owned", "--group=/owned"}, "1234", "2345"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"--net=host", aci}, tc.flags...), "--supplementary-gids=7,8", "--", "--print-user", "--print-groups")
			r := runInsecure(t, c, args...)
			wantExit(t, r, 0)
			got := reportLines(r.Stdout)
			if got["UID"] != tc.uid || got["GID"] != tc.gid || got["EUID"] != tc.uid {
				t.Errorf("uid/gid %s/%s, want %s/%s\n%s", got["UID"], got["GID"], tc.uid, tc.gid, r)
			}
			if g := strings.Fields(got["GROUPS"]); !contains(g, "7") || !contains(g, "8") {
				t.Errorf("--supplementary-gids=7,8: groups %q", got["GROUPS"])
			}
		})
	}
	// A user or group the image lacks: a one-line error naming it.
	for _, flag := range []string{"--user=nobody-here", "--group=nogroup-here"} {
		r := runInsecure(t, c, "--net=host", aci, flag)
		wantExit(t, r, 254)
		oneLineError(t, r, strings.SplitN(flag, "=", 2)[1])
	}
}

func TestReadOnlyRootfs(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/rofs", testutil.WithDir("/data", 0o755, 0, 0))
	wantExit(t, runInsecure(t, c, "--net=host", aci, "--", "--write-file=/data/x", "--content=x"), 0)
	r := runInsecure(t, c, "--net=host", aci, "--readonly-rootfs", "--", "--write-file=/data/x", "--content=x")
	if r.ExitCode == 0 {
		t.Errorf("a write to a read-only rootfs succeeded\n%s", r)
	}
	if !strings.Contains(r.Stderr, "read-only") {
		t.Errorf("the write did not fail with EROFS\n%s", r)
	}
}

// podManifestOf returns the pod manifest of a pod through cat-manifest.
func podManifestOf(t *testing.T, c *testutil.Ctx, ref string) map[string]any {
	t.Helper()
	r := c.MustRun(t, "cat-manifest", ref)
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &m); err != nil {
		t.Fatalf("cat-manifest: %v\n%s", err, r.Stdout)
	}
	return m
}

func TestAnnotationsAndAppNames(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/group/dup")
	wantExit(t, runInsecure(t, c, "--net=host", "--pod-name=annot",
		aci, "--annotation=example.com/note=hello", "--user-annotation=team=infra", "--user-label=tier=web", "---",
		aci), 0)
	m := podManifestOf(t, c, "annot")
	apps, _ := m["apps"].([]any)
	if len(apps) != 2 {
		t.Fatalf("pod manifest apps: %v", m["apps"])
	}
	var names []string
	for _, a := range apps {
		names = append(names, a.(map[string]any)["name"].(string))
	}
	// The last part of the image name, made unique for the second copy.
	if diff := cmp.Diff([]string{"dup", "dup-2"}, names); diff != "" {
		t.Errorf("app names (-want +got):\n%s", diff)
	}
	first := apps[0].(map[string]any)
	b, _ := json.Marshal(first)
	for _, want := range []string{`{"name":"example.com/note","value":"hello"}`, `"userAnnotations":{"team":"infra"}`, `"userLabels":{"tier":"web"}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("first app lacks %s:\n%s", want, b)
		}
	}
	second, _ := json.Marshal(apps[1])
	if strings.Contains(string(second), "infra") || strings.Contains(string(second), "example.com/note") {
		t.Errorf("flags after the first image reached the second app:\n%s", second)
	}
	if st := c.MustRun(t, "status", "annot"); !strings.Contains(st.Stdout, "app-dup=0\n") || !strings.Contains(st.Stdout, "app-dup-2=0\n") {
		t.Errorf("status:\n%s", st)
	}
	// Two apps may not share a name.
	r := runInsecure(t, c, "--net=host", aci, "--name=same", "---", aci, "--name=same")
	wantExit(t, r, 254)
	oneLineError(t, r, "same")
	if pods := podDirs(t, c); len(pods) != 1 {
		t.Errorf("a refused pod was left behind: %v", pods)
	}
}

func TestPodManifest(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	byID := inspectACI(t, "rkt-ng.test/pm-byid", testutil.WithExec("/inspect", "--print-msg=image app", "--exit-code=9"))
	byName := inspectACI(t, "rkt-ng.test/pm-byname", testutil.WithExec("/inspect", "--print-msg=from image"))
	id := strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", byID).Stdout)
	c.MustRun(t, "--insecure-options=image", "fetch", byName)
	pm := fmt.Sprintf(`{
	"acKind": "PodManifest", "acVersion": "0.8.11",
	"apps": [
		{"name": "first", "image": {"id": %q},
		 "app": {"exec": ["/inspect", "--print-msg=from manifest", "--print-env=FROM_PM"], "user": "0", "group": "0",
		         "environment": [{"name": "FROM_PM", "value": "yes"}]}},
		{"name": "second", "image": {"name": "rkt-ng.test/pm-byname"}}
	],
	"volumes": [], "isolators": [], "annotations": [{"name": "example.com/pod", "value": "pm"}], "ports": []
}`, id)
	file := filepath.Join(t.TempDir(), "pod.json")
	os.WriteFile(file, []byte(pm), 0o644)
	r := c.Run(t, "--insecure-options=image", "run", "--net=host", "--pod-name=pm", "--pod-manifest="+file)
	wantExit(t, r, 0)
	for _, want := range []string{"from manifest", "FROM_PM=yes", "from image"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("output lacks %q (the manifest's app replaces the image's)\n%s", want, r)
		}
	}
	if strings.Contains(r.Stdout, "image app") {
		t.Errorf("the image's own app ran instead of the manifest's\n%s", r)
	}
	got := podManifestOf(t, c, "pm")
	b, _ := json.Marshal(got)
	if !strings.Contains(string(b), `"name":"example.com/pod","value":"pm"`) {
		t.Errorf("the pod's annotations were not kept:\n%s", b)
	}
	if !strings.Contains(string(b), `"name":"rkt-ng.test/pm-byid"`) {
		t.Errorf("the image given by ID has no name in the reified manifest:\n%s", b)
	}
	// Flags that conflict with a pod manifest are refused before any pod exists.
	before := len(podDirs(t, c))
	for _, args := range [][]string{
		{"--pod-manifest=" + file, byID},
		{"--pod-manifest=" + file, "--volume=v,kind=empty"},
		{"--pod-manifest=" + file, "--exec=/inspect"},
		{"--pod-manifest=" + file, "--user=0"},
		{"--pod-manifest=" + file, "--environment=A=B"},
	} {
		r := runInsecure(t, c, append([]string{"--net=host"}, args...)...)
		if r.ExitCode != 254 {
			t.Errorf("rkt run %s: exit code %d, want 254: the flag conflicts with the pod manifest\n%s", strings.Join(args[1:], " "), r.ExitCode, r)
			continue
		}
		oneLineError(t, r, "--pod-manifest")
	}
	if after := len(podDirs(t, c)); after != before {
		t.Errorf("refused pod manifests left %d pods behind", after-before)
	}
	// A malformed manifest is one line naming the file.
	os.WriteFile(file, []byte(`{"acKind": "PodManifest", "acVersion": "0.8.11", "apps": [{"name": "Bad Name", "image": {"id": "sha512-00"}}]}`), 0o644)
	r = runInsecure(t, c, "--net=host", "--pod-manifest="+file)
	wantExit(t, r, 254)
	oneLineError(t, r, file)
}

func TestEventHandlers(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	host := t.TempDir()
	os.Chmod(host, 0o777)
	opts := []testutil.ACIOption{
		testutil.WithBusybox(),
		testutil.WithPasswd("root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/:/bin/sh\n"),
		testutil.WithGroup("root:x:0:\nalice:x:1000:\n"),
		testutil.WithDir("/tmp", 0o1777, 0, 0),
		testutil.WithUser("alice", "alice"),
		testutil.WithMountPoint("data", "/data", false),
		testutil.WithExec("/bin/sh", "-c", "echo app-sees-$(cat /tmp/pre-uid); echo app $(id -u) >> /data/order"),
		testutil.WithEventHandler("post-stop", "/bin/sh", "-c", "echo post >> /data/order"),
	}
	good := testutil.NewACI(t, "rkt-ng.test/handlers", append(opts,
		testutil.WithEventHandler("pre-start", "/bin/sh", "-c", "id -u > /tmp/pre-uid; echo pre >> /data/order; chmod 666 /data/order"))...)
	r := runInsecure(t, c, "--net=host", "--volume=data,kind=host,source="+host, good)
	wantExit(t, r, 0)
	if !strings.Contains(r.Stdout, "app-sees-0") {
		t.Errorf("pre-start did not run as root before the app\n%s", r)
	}
	b, _ := os.ReadFile(filepath.Join(host, "order"))
	if string(b) != "pre\napp 1000\npost\n" {
		t.Errorf("handler order %q, want pre, app (as 1000), post", b)
	}

	// A failing pre-start fails the app, which never runs.
	os.Remove(filepath.Join(host, "order"))
	bad := testutil.NewACI(t, "rkt-ng.test/handlers-bad", append(opts,
		testutil.WithEventHandler("pre-start", "/bin/sh", "-c", "echo pre >> /data/order; exit 7"))...)
	r = runInsecure(t, c, "--net=host", "--volume=data,kind=host,source="+host, bad)
	if r.ExitCode == 0 {
		t.Errorf("a pod whose pre-start failed exited 0\n%s", r)
	}
	if !strings.Contains(r.Stderr, "pre-start") {
		t.Errorf("the error does not name the pre-start handler\n%s", r)
	}
	if b, _ := os.ReadFile(filepath.Join(host, "order")); strings.Contains(string(b), "app") {
		t.Errorf("the app ran although its pre-start failed: %q", b)
	}
}

// TestDuplicatePodName: a live pod's name cannot be taken by a second pod.
func TestDuplicatePodName(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/dupname")
	p := c.Start(t, "--insecure-options=image", "run", "--net=host", "--pod-name=twin", aci, "--", "--print-msg=up", "--silent-sigterm", "--sleep=1h")
	p.WaitOutput(t, "up", 30*time.Second)
	r := runInsecure(t, c, "--net=host", "--pod-name=twin", aci)
	wantExit(t, r, 254)
	oneLineError(t, r, "twin")
	if pods := podDirs(t, c); len(pods) != 1 {
		t.Errorf("the refused pod was left behind: %v", pods)
	}
	c.MustRun(t, "stop", "twin")
	p.Wait(t, 20*time.Second)
}
