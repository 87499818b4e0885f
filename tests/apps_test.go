package tests

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// startSandbox starts `rkt app sandbox` and waits until it is ready; it
// returns the process and the pod UUID.
func startSandbox(t *testing.T, c *testutil.Ctx, args ...string) (*testutil.Process, string) {
	t.Helper()
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	p := c.Start(t, append([]string{"app", "sandbox", "--uuid-file-save=" + uuidFile}, args...)...)
	deadline := time.Now().Add(60 * time.Second)
	var uuid string
	for {
		if b, err := os.ReadFile(uuidFile); err == nil && len(b) > 0 {
			uuid = string(b)
			break
		}
		if p.Exited() || time.Now().After(deadline) {
			t.Fatalf("sandbox did not start\n%s", p.Wait(t, 10*time.Second))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := c.Run(t, "status", "--wait-ready=60s", uuid); r.ExitCode != 0 {
		t.Fatalf("sandbox not ready\n%s\nsandbox:\n%s", r, p.Stderr())
	}
	return p, uuid
}

// TestAppSandbox: a sandbox runs with no apps until it is stopped (rkt stop
// or SIGTERM, exit 0); app list and app status work on it and refuse other
// pods and bad names with one line.
func TestAppSandbox(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	p, uuid := startSandbox(t, c, "--net=host")
	st := c.MustRun(t, "status", uuid)
	if !strings.Contains(st.Stdout, "state=running") {
		t.Errorf("status of a sandbox:\n%s", st)
	}
	if r := c.MustRun(t, "app", "list", "--no-legend", uuid); strings.TrimSpace(r.Stdout) != "" {
		t.Errorf("app list of an empty sandbox:\n%s", r)
	}
	r := c.MustRun(t, "app", "list", "--format=json", uuid)
	var apps []json.RawMessage
	if err := json.Unmarshal([]byte(r.Stdout), &apps); err != nil || len(apps) != 0 {
		t.Errorf("app list --format=json of an empty sandbox: %v\n%s", err, r)
	}
	r = c.Run(t, "app", "status", "--app=web", uuid)
	wantExit(t, r, 254)
	oneLineError(t, r, "web", "no such app")
	r = c.Run(t, "app", "status", "--app=Bad/Name", uuid)
	wantExit(t, r, 254)
	oneLineError(t, r, "invalid app name")
	// An app's exit does not matter, nothing does: it stays.
	time.Sleep(time.Second)
	if p.Exited() {
		t.Fatalf("sandbox exited by itself\n%s", p.Wait(t, time.Second))
	}
	c.MustRun(t, "stop", uuid)
	if r := p.Wait(t, 30*time.Second); r.ExitCode != 0 {
		t.Errorf("rkt stop of a sandbox: exit %d, want 0\n%s", r.ExitCode, r)
	}

	// SIGTERM to the sandbox process ends it too.
	p, uuid = startSandbox(t, c, "--net=none")
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if r := p.Wait(t, 30*time.Second); r.ExitCode != 0 {
		t.Errorf("SIGTERM to a sandbox: exit %d, want 0\n%s", r.ExitCode, r)
	}
	st = c.MustRun(t, "status", "--wait=10s", uuid)
	if !strings.Contains(st.Stdout, "exited=true") {
		t.Errorf("status after SIGTERM:\n%s", st)
	}

	// What a sandbox cannot honour is refused before a pod exists.
	before := len(podDirs(t, c))
	for _, flag := range []string{"--private-users", "--interactive"} {
		r := c.Run(t, "app", "sandbox", "--net=none", flag)
		wantExit(t, r, 254)
		oneLineError(t, r, strings.SplitN(flag, "=", 2)[0])
	}
	// Its --port names pod ports (rkt's sandbox format), not app ports.
	for flag, want := range map[string]string{
		"--port=http:8080":                                                 "NAME:PROTOCOL:PODPORT:HOSTIP:HOSTPORT",
		"--port=http:sctp:8080:0.0.0.0:8081":                               "sctp",
		"--port=http:tcp:8080:nohost:8081":                                 "nohost",
		"--port=http:tcp:8080:0.0.0.0:99999":                               "99999",
		"--port=http:tcp:8080:0.0.0.0:8081 --port=web:tcp:80:0.0.0.0:8081": "twice",
		"--port=http:tcp:8080:0.0.0.0:8081 --net=host":                     "--net=host",
		"--port=http:tcp:8080:0.0.0.0:8081 --net=none":                     "--net=none",
	} {
		r := c.Run(t, append([]string{"app", "sandbox", "--net=none"}, strings.Fields(flag)...)...)
		wantExit(t, r, 254)
		oneLineError(t, r, "--port", want)
	}
	if pods := podDirs(t, c); len(pods) != before {
		t.Errorf("refused sandboxes left pods: %v", pods)
	}

	// A pod of rkt run is not a sandbox.
	aci := inspectACI(t, "rkt-ng.test/plain")
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	wantExit(t, runInsecure(t, c, "--net=none", "--uuid-file-save="+uuidFile, aci), 0)
	b, _ := os.ReadFile(uuidFile)
	r = c.Run(t, "app", "list", string(b))
	wantExit(t, r, 254)
	oneLineError(t, r, "not a sandbox")
}

// waitLog waits until `rkt logs --app` of a sandbox's app contains want.
func waitLog(t *testing.T, c *testutil.Ctx, uuid, app, want string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := c.Run(t, "logs", "--app="+app, uuid)
		if strings.Contains(r.Stdout, want) {
			return r.Stdout
		}
		if time.Now().After(deadline) {
			t.Fatalf("log of app %s has no %q\n%s", app, want, r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// appState returns `rkt app status --format=json` of an app.
func appState(t *testing.T, c *testutil.Ctx, uuid, app string) map[string]any {
	t.Helper()
	r := c.MustRun(t, "app", "status", "--format=json", "--app="+app, uuid)
	var st map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		t.Fatalf("app status --format=json: %v\n%s", err, r)
	}
	return st
}

// TestAppAddStart: an app added to a sandbox is created, not started; once
// started it runs with the confinement of a first app (its limits, its
// capabilities, no_new_privs) and logs for rkt logs --app; bad input is
// one line, exit 254, with the pod untouched.
func TestAppAddStart(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	p, uuid := startSandbox(t, c, "--net=host", "--volume=data,kind=empty,mode=0777")
	defer func() {
		c.Run(t, "stop", uuid)
		p.Wait(t, 30*time.Second)
	}()
	aci := inspectACI(t, "rkt-ng.test/app-add")
	// Apps share the sandbox's volumes.
	for _, app := range [][]string{{"writer", "--write-file=/data/x", "--content=shared-data"}, {"reader", "--print-file=/data/x"}} {
		c.MustRun(t, append([]string{"--insecure-options=image", "app", "add", uuid, aci, "--name=" + app[0], "--mount=volume=data,target=/data", "--"}, app[1:]...)...)
		c.MustRun(t, "app", "start", "--app="+app[0], uuid)
		waitState(t, c, uuid, app[0], "exited")
	}
	waitLog(t, c, uuid, "reader", "shared-data")
	r := c.MustRun(t, "--insecure-options=image", "app", "add", uuid, aci, "--name=web", "--memory=64Mi",
		"--caps-retain=CAP_NET_BIND_SERVICE,CAP_KILL", "--",
		"--print-msg=web-up", "--print-memorylimit", "--print-caps", "--print-no-new-privs", "--sleep=1h")
	if strings.TrimSpace(r.Stdout) != "web" {
		t.Errorf("app add printed %q, want the app name web", r.Stdout)
	}
	if st := appState(t, c, uuid, "web"); st["state"] != "created" {
		t.Errorf("state of an added app = %v, want created", st["state"])
	}
	// A second app of the same name is refused; the first stays.
	r = c.Run(t, "--insecure-options=image", "app", "add", uuid, aci, "--name=web")
	wantExit(t, r, 254)
	oneLineError(t, r, "web", "already")
	r = c.Run(t, "--insecure-options=image", "app", "add", uuid, aci, "--name=Bad_Name")
	wantExit(t, r, 254)
	oneLineError(t, r, "Bad_Name")
	// An image that fails verification is refused.
	r = c.Run(t, "app", "add", uuid, aci, "--name=unsigned")
	wantExit(t, r, 254)
	// An image asking for more than the default confinement is refused by
	// the stage1's app/add; the pod is as it was (manifest, mounts).
	hostile := inspectACI(t, "rkt-ng.test/app-hostile",
		testutil.WithIsolator("os/linux/capabilities-retain-set", `{"set":["CAP_SYS_ADMIN"]}`))
	mountsBefore := len(podMounts(t, uuid))
	r = c.Run(t, "--insecure-options=image", "app", "add", uuid, hostile, "--name=hostile")
	wantExit(t, r, 254)
	oneLineError(t, r, "hostile", "CAP_SYS_ADMIN")
	if r := c.Run(t, "app", "status", "--app=hostile", uuid); r.ExitCode != 254 {
		t.Errorf("a refused app is in the pod:\n%s", r)
	}
	if n := len(podMounts(t, uuid)); n != mountsBefore {
		t.Errorf("a refused app left mounts: %d, before %d", n, mountsBefore)
	}
	// Starting an unknown app.
	r = c.Run(t, "app", "start", "--app=nope", uuid)
	wantExit(t, r, 254)
	oneLineError(t, r, "nope", "no such app")

	c.MustRun(t, "app", "start", "--app=web", uuid)
	out := waitLog(t, c, uuid, "web", "NoNewPrivs")
	if got := field(t, out, "MEMORY_LIMIT"); got != "67108864" {
		t.Errorf("MEMORY_LIMIT = %s, want 67108864", got)
	}
	// CAP_KILL (5) and CAP_NET_BIND_SERVICE (10): 0x420.
	if got := field(t, out, "CapBnd"); got != "0000000000000420" {
		t.Errorf("CapBnd = %s, want 0000000000000420", got)
	}
	if got := field(t, out, "NoNewPrivs"); got != "1" {
		t.Errorf("NoNewPrivs = %s, want 1", got)
	}
	// rkt enter and rkt kill reach an added app, with its confinement.
	r = c.Run(t, "enter", "--app=web", uuid, "/inspect", "--print-caps", "--exit-code=9")
	wantExit(t, r, 9)
	if !strings.Contains(r.Stdout, "CapBnd=0000000000000420") {
		t.Errorf("enter into an added app ran with other capabilities:\n%s", r)
	}
	c.MustRun(t, "kill", "--signal=HUP", "--app=web", uuid)
	st := waitState(t, c, uuid, "web", "exited")
	if st["exit_code"] != float64(129) {
		t.Errorf("an added app killed by SIGHUP: %v", st)
	}
	c.MustRun(t, "app", "rm", "--app=web", uuid)
	c.MustRun(t, "--insecure-options=image", "app", "add", uuid, aci, "--name=web", "--", "--sleep=1h")
	c.MustRun(t, "app", "start", "--app=web", uuid)
	st = waitState(t, c, uuid, "web", "running")
	if st["state"] != "running" || st["started_at"] == nil {
		t.Errorf("status of a started app: %v", st)
	}
	r = c.Run(t, "app", "start", "--app=web", uuid)
	wantExit(t, r, 254)
	oneLineError(t, r, "web", "started already")
	r = c.MustRun(t, "app", "list", "--no-legend", uuid)
	if !strings.Contains(r.Stdout, "web\trunning") && !regexp.MustCompile(`(?m)^web\s+running`).MatchString(r.Stdout) {
		t.Errorf("app list:\n%s", r)
	}
}

// waitState waits until an app of a sandbox is in state.
func waitState(t *testing.T, c *testutil.Ctx, uuid, app, state string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := appState(t, c, uuid, app)
		if st["state"] == state {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("app %s: state %v, want %s", app, st["state"], state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// podMounts returns the host's mount points below the pod's directory.
func podMounts(t *testing.T, uuid string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.Contains(f[4], uuid) {
			out = append(out, f[4])
		}
	}
	return out
}

// TestAppStopRm: apps of a sandbox exit, are stopped (stop signal, then
// SIGKILL after the stop timeout) and removed in turn while the sandbox
// keeps running; exit codes are truthful; a removed app's rootfs is
// unmounted and its log kept; its name can be used again.
func TestAppStopRm(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	p, uuid := startSandbox(t, c, "--net=host", "--stop-timeout=2s")
	defer func() {
		c.Run(t, "stop", uuid)
		p.Wait(t, 30*time.Second)
	}()
	aci := inspectACI(t, "rkt-ng.test/app-stop")
	add := func(name string, args ...string) {
		t.Helper()
		c.MustRun(t, append([]string{"--insecure-options=image", "app", "add", uuid, aci, "--name=" + name, "--"}, args...)...)
		c.MustRun(t, "app", "start", "--app="+name, uuid)
	}
	add("quick", "--print-msg=quick-up", "--exit-code=3")
	add("sleeper", "--print-msg=sleeper-up", "--sleep=1h")
	add("stubborn", "--print-signals", "--print-msg=stubborn-up", "--sleep=1h")

	// An app's exit, even a failure, leaves the sandbox running.
	st := waitState(t, c, uuid, "quick", "exited")
	if st["exit_code"] != float64(3) || st["finished_at"] == nil {
		t.Errorf("status of an app that exited 3: %v", st)
	}
	waitLog(t, c, uuid, "sleeper", "sleeper-up")
	waitLog(t, c, uuid, "stubborn", "stubborn-up")
	if p.Exited() {
		t.Fatalf("an app's exit ended the sandbox\n%s", p.Wait(t, time.Second))
	}

	c.MustRun(t, "app", "stop", "--app=sleeper", uuid)
	if st := appState(t, c, uuid, "sleeper"); st["state"] != "exited" || st["exit_code"] != float64(143) {
		t.Errorf("status of an app stopped with SIGTERM: %v", st)
	}
	// One that ignores its stop signal is killed after the stop timeout.
	start := time.Now()
	c.MustRun(t, "app", "stop", "--app=stubborn", uuid)
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("app stop of an app ignoring SIGTERM returned after %v, before the 2s stop timeout", d)
	}
	if st := appState(t, c, uuid, "stubborn"); st["exit_code"] != float64(137) {
		t.Errorf("status of an app killed after the stop timeout: %v", st)
	}
	waitLog(t, c, uuid, "stubborn", "SIGNAL=SIGTERM")
	r := c.Run(t, "app", "stop", "--app=sleeper", uuid)
	wantExit(t, r, 254)
	oneLineError(t, r, "sleeper", "not running")

	// rm: rootfs unmounted, the app gone from the pod, its log kept.
	c.MustRun(t, "app", "rm", "--app=sleeper", uuid)
	for _, m := range podMounts(t, uuid) {
		if strings.Contains(m, "/opt/stage2/sleeper") {
			t.Errorf("app rm left mount %s", m)
		}
	}
	if r := c.MustRun(t, "app", "list", "--no-legend", uuid); strings.Contains(r.Stdout, "sleeper") {
		t.Errorf("app list after rm:\n%s", r)
	}
	if r := c.MustRun(t, "logs", "--app=sleeper", uuid); !strings.Contains(r.Stdout, "sleeper-up") {
		t.Errorf("log of a removed app:\n%s", r)
	}
	r = c.Run(t, "app", "rm", "--app=sleeper", uuid)
	wantExit(t, r, 254)
	oneLineError(t, r, "sleeper", "no such app")

	// rm of a running app stops it first; a removed name can be used again.
	add("sleeper", "--print-msg=again", "--sleep=1h")
	waitLog(t, c, uuid, "sleeper", "again")
	c.MustRun(t, "app", "rm", "--app=sleeper", uuid)
	add("sleeper", "--print-msg=third", "--sleep=1h")
	waitState(t, c, uuid, "sleeper", "running")
	for _, name := range []string{"quick", "stubborn"} {
		c.MustRun(t, "app", "rm", "--app="+name, uuid)
	}
	if r := c.MustRun(t, "app", "list", "--no-legend", uuid); strings.TrimSpace(r.Stdout) == "" || strings.Count(r.Stdout, "\n") != 1 {
		t.Errorf("app list, want only sleeper:\n%s", r)
	}
	if p.Exited() {
		t.Fatalf("sandbox exited\n%s", p.Wait(t, time.Second))
	}
	// The sandbox's stop stops its apps and exits 0.
	c.MustRun(t, "stop", uuid)
	if r := p.Wait(t, 30*time.Second); r.ExitCode != 0 {
		t.Errorf("sandbox stop: exit %d\n%s", r.ExitCode, r)
	}
}

// TestAppSandboxNetAndGC: in a sandbox with --net=default an added app
// serves on its port and another added app reaches it over localhost; after
// SIGKILL of the sandbox process, gc leaves nothing of the pod (mounts,
// netns, network state, cgroups, pod directory).
func TestAppSandboxNetAndGC(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "iptables")
	c := testutil.NewCtx(t)
	p, uuid := startSandbox(t, c, "--net=default")
	aci := inspectACI(t, "rkt-ng.test/app-net", testutil.WithPort("http", "tcp", 8080))
	c.MustRun(t, "--insecure-options=image", "app", "add", uuid, aci, "--name=server", "--", "--serve-http=:8080")
	c.MustRun(t, "app", "start", "--app=server", uuid)
	waitLog(t, c, uuid, "server", "SERVING=")
	c.MustRun(t, "--insecure-options=image", "app", "add", uuid, aci, "--name=client", "--",
		"--get-http=http://127.0.0.1:8080/", "--print-hostname")
	c.MustRun(t, "app", "start", "--app=client", uuid)
	waitLog(t, c, uuid, "client", "hello from rkt-"+uuid)
	if st := waitState(t, c, uuid, "client", "exited"); st["exit_code"] != float64(0) {
		t.Errorf("client: %v", st)
	}
	if st := c.MustRun(t, "status", uuid); !strings.Contains(st.Stdout, "networks=default:ip4=") {
		t.Errorf("status of a sandbox with --net=default:\n%s", st)
	}

	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.Wait(t, 30*time.Second)
	c.MustRun(t, "gc", "--grace-period=0s")
	if pods := podDirs(t, c); len(pods) != 0 {
		t.Errorf("gc left %v", pods)
	}
	checkNoNetLeft(t, c, []string{uuid}, nil)
	for _, pat := range []string{"/sys/fs/cgroup/rkt-" + uuid + "*", "/sys/fs/cgroup/*/rkt-" + uuid + "*", "/sys/fs/cgroup/*/*/*/rkt-" + uuid + "*"} {
		if m, _ := filepath.Glob(pat); len(m) > 0 {
			t.Errorf("cgroups left: %v", m)
		}
	}
}

// TestAppSandboxPort: rkt app sandbox --port=NAME:PROTOCOL:PODPORT:HOSTIP:HOSTPORT
// forwards a host port to a pod port before any app exists; a server in an
// app added later answers on it from the host, on a host address and on
// 127.0.0.1, and the forward is gone after the sandbox.
func TestAppSandboxPort(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "iptables")
	iptablesRestoredAfter(t)
	hostIP := hostIPv4(t)
	c := testutil.NewCtx(t)
	port := freePort(t)
	p, uuid := startSandbox(t, c, "--net=default", "--hostname=sbport", fmt.Sprintf("--port=web:tcp:8080:0.0.0.0:%d", port))
	defer func() {
		c.Run(t, "stop", uuid)
		p.Wait(t, 30*time.Second)
	}()
	// The image declares no port: the forward names the pod port.
	aci := inspectACI(t, "rkt-ng.test/app-port")
	c.MustRun(t, "--insecure-options=image", "app", "add", uuid, aci, "--name=server", "--", "--serve-http=:8080")
	c.MustRun(t, "app", "start", "--app=server", uuid)
	waitLog(t, c, uuid, "server", "SERVING=")
	for _, u := range []string{fmt.Sprintf("http://%s:%d/", hostIP, port), fmt.Sprintf("http://127.0.0.1:%d/", port)} {
		body, err := httpGet(t, u)
		if err != nil || body != "hello from sbport" {
			t.Errorf("GET %s from the host: %q, %v", u, body, err)
		}
	}
	c.MustRun(t, "stop", uuid)
	if r := p.Wait(t, 30*time.Second); r.ExitCode != 0 {
		t.Errorf("sandbox stop: exit %d\n%s", r.ExitCode, r)
	}
	cl := &http.Client{Timeout: 2 * time.Second}
	if resp, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
		resp.Body.Close()
		t.Errorf("host port %d still answers after the sandbox stopped", port)
	}
}

// TestAppSandboxMetadata: apps added to a sandbox get the metadata service
// as apps of rkt run do (AC_METADATA_URL; their own app and image served
// under apps/NAME/), and the sandbox's --annotation are the pod's
// annotations; a removed app's answers are gone. Bad pod annotations are
// refused with one line.
func TestAppSandboxMetadata(t *testing.T) {
	testutil.RequireRoot(t)
	aci := testutil.NewACI(t, "rkt-ng.test/app-mds", testutil.WithBusybox("sh", "wget", "echo", "test"),
		testutil.WithAnnotation("example.com/who", "image"))
	id := testutil.ImageID(t, aci)
	script := `u="$AC_METADATA_URL/acMetadata/v1"
test -n "$AC_METADATA_URL" || echo "no metadata url"
echo "uuid=$(wget -q -O - $u/pod/uuid)"
echo "id=$(wget -q -O - $u/apps/$AC_APP_NAME/image/id)"
echo "who=$(wget -q -O - $u/apps/$AC_APP_NAME/annotations/example.com/who)"
echo "podann=$(wget -q -O - $u/pod/annotations/example.com/pod)"
if wget -q -O - $u/apps/first/image/id >/dev/null 2>&1; then echo "first=served"; else echo "first=gone"; fi
echo done`
	for _, net := range []string{"none", "host"} {
		t.Run(net, func(t *testing.T) {
			c := testutil.NewCtx(t)
			p, uuid := startSandbox(t, c, "--net="+net, "--annotation=example.com/pod=from-sandbox", "--user-label=tier=web")
			defer func() {
				c.Run(t, "stop", uuid)
				p.Wait(t, 30*time.Second)
			}()
			check := func(app string, want ...string) {
				t.Helper()
				c.MustRun(t, "--insecure-options=image", "app", "add", uuid, aci, "--name="+app,
					"--annotation=example.com/who="+app, "--exec=/bin/sh", "--", "-c", script)
				c.MustRun(t, "app", "start", "--app="+app, uuid)
				out := waitLog(t, c, uuid, app, "done")
				for _, w := range append([]string{"uuid=" + uuid, "id=" + id, "who=" + app, "podann=from-sandbox"}, want...) {
					if !strings.Contains(out, w) {
						t.Errorf("app %s: metadata answers lack %q:\n%s", app, w, out)
					}
				}
				if strings.Contains(out, "no metadata url") {
					t.Errorf("app %s has no AC_METADATA_URL", app)
				}
			}
			check("first", "first=served")
			c.MustRun(t, "app", "rm", "--app=first", uuid)
			check("second", "first=gone")
		})
	}

	c := testutil.NewCtx(t)
	for flag, want := range map[string]string{
		"--annotation=Bad Name=1": "Bad Name",
		"--annotation=novalue":    "NAME=VALUE",
		"--user-label==v":         "NAME=VALUE",
	} {
		r := c.Run(t, "app", "sandbox", "--net=none", flag)
		wantExit(t, r, 254)
		oneLineError(t, r, strings.SplitN(flag, "=", 2)[0], want)
	}
	if pods := podDirs(t, c); len(pods) != 0 {
		t.Errorf("refused sandboxes left pods: %v", pods)
	}
}

// TestAppAddConcurrent: two app add of one name on one sandbox at once: the
// apps lock serializes them, one wins, the other gets one clear line.
func TestAppAddConcurrent(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	p, uuid := startSandbox(t, c, "--net=none")
	defer func() {
		c.Run(t, "stop", uuid)
		p.Wait(t, 30*time.Second)
	}()
	aci := inspectACI(t, "rkt-ng.test/app-race")
	// Fetch once first, so that both adds spend their time on the pod.
	c.MustRun(t, "--insecure-options=image", "fetch", aci)
	results := make(chan testutil.Result, 2)
	for range 2 {
		go func() {
			results <- c.Run(t, "--insecure-options=image", "app", "add", uuid, aci, "--name=twin", "--", "--sleep=1h")
		}()
	}
	a, b := <-results, <-results
	if a.ExitCode == b.ExitCode || (a.ExitCode != 0 && b.ExitCode != 0) {
		t.Fatalf("two adds of one name: exit %d and %d, want one 0 and one 254\n%s\n%s", a.ExitCode, b.ExitCode, a, b)
	}
	loser := a
	if a.ExitCode == 0 {
		loser = b
	}
	wantExit(t, loser, 254)
	oneLineError(t, loser, "twin", "already")
	r := c.MustRun(t, "app", "list", "--no-legend", uuid)
	if strings.Count(r.Stdout, "twin") != 1 {
		t.Errorf("app list after the race:\n%s", r)
	}
	c.MustRun(t, "app", "start", "--app=twin", uuid)
	waitState(t, c, uuid, "twin", "running")

	// app rm racing app start: whichever takes the lock first, the app
	// ends up gone, with nothing of it left mounted.
	c.MustRun(t, "--insecure-options=image", "app", "add", uuid, aci, "--name=racer", "--", "--sleep=1h")
	start, rm := make(chan testutil.Result, 1), make(chan testutil.Result, 1)
	go func() { start <- c.Run(t, "app", "start", "--app=racer", uuid) }()
	go func() { rm <- c.Run(t, "app", "rm", "--app=racer", uuid) }()
	rs, rr := <-start, <-rm
	wantExit(t, rr, 0)
	if rs.ExitCode != 0 {
		wantExit(t, rs, 254)
		oneLineError(t, rs, "racer", "no such app")
	}
	if r := c.Run(t, "app", "status", "--app=racer", uuid); r.ExitCode != 254 {
		t.Errorf("app racer still in the pod:\n%s", r)
	}
	for _, m := range podMounts(t, uuid) {
		if strings.Contains(m, "/opt/stage2/racer") {
			t.Errorf("mount left: %s", m)
		}
	}
	waitState(t, c, uuid, "twin", "running")
}

// TestAppSandboxNotify: a sandbox tells its supervisor it is ready
// (READY=1, MAINPID, with no app), shows in rkt list, and on SIGTERM stops
// its added apps gracefully, exits 0 and leaves no process of the pod.
func TestAppSandboxNotify(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	sockPath := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	cmd := c.Cmd("app", "sandbox", "--net=host", "--uuid-file-save="+uuidFile)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sockPath)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	exited := false
	defer func() {
		if !exited {
			cmd.Process.Kill()
			<-done
		}
	}()
	conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	buf := make([]byte, 4096)
	n, _, err := conn.ReadFromUnix(buf)
	if err != nil {
		t.Fatalf("no readiness message: %v\n%s", err, out.String())
	}
	if msg := string(buf[:n]); !strings.Contains(msg, "READY=1") || !strings.Contains(msg, "MAINPID="+strconv.Itoa(cmd.Process.Pid)) {
		t.Errorf("readiness message %q, want READY=1 and MAINPID=%d", msg, cmd.Process.Pid)
	}
	b, err := os.ReadFile(uuidFile)
	if err != nil {
		t.Fatal(err)
	}
	uuid := string(b)
	if r := c.MustRun(t, "list", "--full", "--no-legend"); !strings.Contains(r.Stdout, uuid) || !strings.Contains(r.Stdout, "running") {
		t.Errorf("rkt list does not show the running sandbox:\n%s", r)
	}
	aci := inspectACI(t, "rkt-ng.test/app-notify")
	c.MustRun(t, "--insecure-options=image", "app", "add", uuid, aci, "--name=svc", "--", "--silent-sigterm", "--print-msg=svc-up", "--sleep=1h")
	c.MustRun(t, "app", "start", "--app=svc", uuid)
	waitLog(t, c, uuid, "svc", "svc-up")
	kids := descendants(cmd.Process.Pid)
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err = <-done:
		exited = true
	case <-time.After(30 * time.Second):
		t.Fatalf("the sandbox did not exit after SIGTERM\n%s", out.String())
	}
	if err != nil {
		t.Errorf("sandbox after SIGTERM: %v\n%s", err, out.String())
	}
	if r := c.MustRun(t, "logs", "--app=svc", uuid); !strings.Contains(r.Stdout, "got SIGTERM") {
		t.Errorf("the added app did not get SIGTERM:\n%s", r)
	}
	for _, k := range kids {
		if syscall.Kill(k, 0) == nil && !isZombie(k) {
			t.Errorf("pod process %d survived", k)
		}
	}
}
