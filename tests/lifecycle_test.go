package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rkt-ng/rkt/tests/testutil"
)

func TestExitCodesMultiApp(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	a := inspectACI(t, "rkt-ng.test/a")
	b := inspectACI(t, "rkt-ng.test/b")
	d := inspectACI(t, "rkt-ng.test/d")
	// One app: its code.
	wantExit(t, runInsecure(t, c, "--net=host", a, "--", "--exit-code=0"), 0)
	wantExit(t, runInsecure(t, c, "--net=host", a, "--", "--exit-code=5"), 5)
	// Three apps, one fails with 3 while the others would run for an hour:
	// they are stopped and rkt exits 3.
	start := time.Now()
	r := runInsecure(t, c, "--net=host", "--stop-timeout=2s",
		a, "--", "--sleep=1h", "---",
		b, "--", "--sleep=200ms", "--exit-code=3", "---",
		d, "--", "--sleep=1h")
	wantExit(t, r, 3)
	if el := time.Since(start); el > 30*time.Second {
		t.Errorf("the pod took %v to stop after an app failed", el)
	}
	// All succeed: 0.
	wantExit(t, runInsecure(t, c, "--net=host", a, "--", "--exit-code=0", "---", b, "--", "--exit-code=0"), 0)
}

func TestPrepareRunPreparedStatusList(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/prep")
	r := c.MustRun(t, "--insecure-options=image", "prepare", "--quiet", "--pod-name=web", aci, "--", "--print-msg=hello", "--exit-code=6")
	uuid := strings.TrimSpace(r.Stdout)
	if len(uuid) != 36 {
		t.Fatalf("prepare --quiet printed %q, want a UUID", r.Stdout)
	}
	st := c.MustRun(t, "status", "web")
	if !strings.Contains(st.Stdout, "state=prepared") {
		t.Errorf("status of a prepared pod:\n%s", st)
	}
	// A second live pod cannot take the name.
	r = c.Run(t, "--insecure-options=image", "prepare", "--pod-name=web", aci)
	wantExit(t, r, 254)
	oneLineError(t, r, "web")
	r = c.Run(t, "run-prepared", "--net=host", uuid[:8])
	wantExit(t, r, 6)
	if !strings.Contains(r.Stdout, "hello") {
		t.Errorf("run-prepared output:\n%s", r)
	}
	st = c.MustRun(t, "status", uuid)
	for _, want := range []string{"state=exited", "exited=true", "app-prep=6", "name=web"} {
		if !strings.Contains(st.Stdout, want+"\n") {
			t.Errorf("status lacks %q:\n%s", want, st.Stdout)
		}
	}
	js := c.MustRun(t, "status", "--format=json", "web")
	var v struct {
		Name  string `json:"name"`
		State string `json:"state"`
		Apps  []struct {
			Name     string `json:"name"`
			ExitCode *int   `json:"exit_code"`
		} `json:"app_status"`
	}
	if err := json.Unmarshal([]byte(js.Stdout), &v); err != nil {
		t.Fatalf("status --format=json: %v\n%s", err, js.Stdout)
	}
	if v.Name != uuid || v.State != "exited" || len(v.Apps) != 1 || v.Apps[0].ExitCode == nil || *v.Apps[0].ExitCode != 6 {
		t.Errorf("status json = %+v", v)
	}
	l := c.MustRun(t, "list", "--full", "--no-legend")
	if !strings.Contains(l.Stdout, uuid) || !strings.Contains(l.Stdout, "rkt-ng.test/prep") || !strings.Contains(l.Stdout, "exited") {
		t.Errorf("list --full:\n%s", l.Stdout)
	}
	l = c.MustRun(t, "list")
	if legend := strings.Join(strings.Fields(strings.Split(l.Stdout, "\n")[0]), " "); legend != "UUID APP IMAGE NAME STATE CREATED STARTED NETWORKS" {
		t.Errorf("list legend:\n%s", l.Stdout)
	}
	// Once exited the name is free again.
	c.MustRun(t, "--insecure-options=image", "prepare", "--pod-name=web", aci)
	cm := c.MustRun(t, "cat-manifest", uuid)
	if !strings.Contains(cm.Stdout, `"acKind": "PodManifest"`) {
		t.Errorf("cat-manifest:\n%s", cm.Stdout)
	}
}

func TestStopAndStatusWait(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/stoppable")
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	p := c.Start(t, "--insecure-options=image", "run", "--net=host", "--uuid-file-save="+uuidFile, aci, "--", "--silent-sigterm", "--print-msg=up", "--sleep=1h")
	p.WaitOutput(t, "up", 30*time.Second)
	st := c.MustRun(t, "status", "--uuid-file="+uuidFile)
	if !strings.Contains(st.Stdout, "state=running") || !strings.Contains(st.Stdout, "pid=") {
		t.Errorf("status of a running pod:\n%s", st)
	}
	c.MustRun(t, "status", "--wait-ready=10s", "--uuid-file="+uuidFile)
	// A running pod cannot be removed.
	wantExit(t, c.Run(t, "rm", "--uuid-file="+uuidFile), 254)
	c.MustRun(t, "stop", "--uuid-file="+uuidFile)
	r := p.Wait(t, 20*time.Second)
	if r.ExitCode != 0 {
		t.Errorf("a pod stopped gracefully exited %d\n%s", r.ExitCode, r)
	}
	if !strings.Contains(r.Stdout, "got SIGTERM") {
		t.Errorf("the app did not see SIGTERM\n%s", r)
	}
	st = c.MustRun(t, "status", "--wait=10s", "--uuid-file="+uuidFile)
	if !strings.Contains(st.Stdout, "exited=true") {
		t.Errorf("status --wait:\n%s", st)
	}
	c.MustRun(t, "rm", "--uuid-file="+uuidFile)
	if pods := podDirs(t, c); len(pods) != 0 {
		t.Errorf("rm left %v", pods)
	}
	// stop --force kills.
	p = c.Start(t, "--insecure-options=image", "run", "--net=host", "--pod-name=victim", aci, "--", "--print-msg=up", "--sleep=1h")
	p.WaitOutput(t, "up", 30*time.Second)
	c.MustRun(t, "stop", "--force", "victim")
	p.Wait(t, 20*time.Second)
}

func TestUnknownPod(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	for _, cmd := range [][]string{{"status", "no-such-pod"}, {"stop", "no-such-pod"}, {"rm", "no-such-pod"}, {"enter", "no-such-pod"}, {"cat-manifest", "no-such-pod"}} {
		r := c.Run(t, cmd...)
		wantExit(t, r, 254)
		oneLineError(t, r, "no matches found for", "no-such-pod") // rkt 1.30's answer
	}
}

func TestEnterConfined(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := testutil.NewACI(t, "rkt-ng.test/enter", testutil.WithInspect(), testutil.WithBusybox())
	p := c.Start(t, "--insecure-options=image", "run", "--net=host", "--pod-name=en", "--caps-retain=CAP_NET_BIND_SERVICE", aci,
		"--exec=/inspect", "--", "--print-msg=up", "--sleep=1h")
	p.WaitOutput(t, "up", 30*time.Second)
	r := c.Run(t, "enter", "en", "/inspect", "--print-caps", "--print-no-new-privs", "--exit-code=9")
	wantExit(t, r, 9)
	if !strings.Contains(r.Stdout, "CapBnd=0000000000000400") {
		t.Errorf("enter ran with other capabilities than the app (CAP_NET_BIND_SERVICE only):\n%s", r)
	}
	r = c.Run(t, "enter", "en", "/bin/cat", "/proc/1/cmdline")
	wantExit(t, r, 0)
	if !strings.Contains(r.Stdout, "stage2") {
		t.Errorf("enter is not in the pod's PID namespace: %q", r.Stdout)
	}
	p.Signal(syscall.SIGTERM)
	p.Wait(t, 20*time.Second)
	// Entering an exited pod fails clearly.
	r = c.Run(t, "enter", "en", "/bin/true")
	wantExit(t, r, 254)
}

func TestVolumes(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "in.txt"), []byte("from host"), 0o644)
	aci := inspectACI(t, "rkt-ng.test/vol", testutil.WithMountPoint("data", "/data", false), testutil.WithMountPoint("ro", "/ro", true))
	r := runInsecure(t, c, "--net=host", "--volume=data,kind=host,source="+host, "--volume=ro,kind=host,source="+host,
		aci, "--", "--print-file=/data/in.txt", "--write-file=/data/out.txt", "--content=from pod")
	wantExit(t, r, 0)
	if !strings.Contains(r.Stdout, "from host") {
		t.Errorf("host volume not visible:\n%s", r)
	}
	if b, _ := os.ReadFile(filepath.Join(host, "out.txt")); string(b) != "from pod" {
		t.Errorf("write through the volume: got %q", b)
	}
	// A read-only mount point stays read-only.
	r = runInsecure(t, c, "--net=host", "--volume=data,kind=host,source="+host, "--volume=ro,kind=host,source="+host,
		aci, "--", "--write-file=/ro/x", "--content=x")
	if r.ExitCode == 0 {
		t.Errorf("write to a read-only mount point succeeded")
	}
	// Unmatched mount points get empty volumes; --mount targets any path.
	r = runInsecure(t, c, "--net=host", "--volume=extra,kind=empty,mode=0700", aci, "--mount=volume=extra,target=/extra",
		"--", "--stat-file=/extra", "--stat-file=/data")
	wantExit(t, r, 0)
	if !strings.Contains(r.Stdout, "700") {
		t.Errorf("empty volume mode:\n%s", r)
	}
	// Bad volumes.
	for _, args := range [][]string{
		{"--volume=data,kind=host", aci},
		{"--volume=data,kind=host,source=/no/such/dir", aci},
		{aci, "--mount=volume=undeclared,target=/x"},
	} {
		r := runInsecure(t, c, append([]string{"--net=host"}, args...)...)
		wantExit(t, r, 254)
		oneLineError(t, r)
	}
}
