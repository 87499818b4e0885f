package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// coreCRI is a bin/rkt-cri of a test, on a socket in a temp dir, with
// the test's rkt data directory.
type coreCRI struct {
	bin, sock, dir, rkt string
	// config is the --config file; "" for an absent one (the defaults).
	config string
	cmd    *exec.Cmd
	out    *bytes.Buffer
}

// coreCrictl returns $CRICTL or crictl from PATH, skipping the test
// without one.
func coreCrictl(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CRICTL"); p != "" {
		return p
	}
	p, err := exec.LookPath("crictl")
	if err != nil {
		t.Skip("no crictl: set $CRICTL (make cri-tools) or put crictl on PATH")
	}
	return p
}

// coreRktCRI returns $RKT_CRI or the repository's bin/rkt-cri.
func coreRktCRI(t *testing.T) string {
	t.Helper()
	p := os.Getenv("RKT_CRI")
	if p == "" {
		p = filepath.Join(testutil.RepoRoot(t), "bin", "rkt-cri")
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no rkt-cri at %s: run make or set $RKT_CRI", p)
	}
	return p
}

func startCoreCRI(t *testing.T, c *testutil.Ctx) *coreCRI {
	t.Helper()
	s := &coreCRI{bin: coreRktCRI(t), sock: filepath.Join(t.TempDir(), "cri.sock"), dir: c.DataDir, rkt: c.Rkt}
	yaml := fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 120\n", s.sock, s.sock)
	if err := os.WriteFile(filepath.Join(filepath.Dir(s.sock), "crictl.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	s.start(t)
	t.Cleanup(func() {
		s.kill(t, syscall.SIGTERM)
		coreStopPods(t, c)
	})
	return s
}

// coreStopPods stops the sandboxes a failed test left running, so that
// the Ctx's gc can remove them.
func coreStopPods(t *testing.T, c *testutil.Ctx) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(c.DataDir, "pods", "run"))
	for _, e := range ents {
		// The test's context is done by now: plain commands.
		c.Cmd("stop", "--force", e.Name()).Run()
		c.Cmd("status", "--wait=60s", e.Name()).Run()
	}
}

func (s *coreCRI) start(t *testing.T) {
	t.Helper()
	s.out = &bytes.Buffer{}
	config := s.config
	if config == "" {
		config = filepath.Join(filepath.Dir(s.sock), "absent.json")
	}
	s.cmd = exec.Command(s.bin, "--listen="+s.sock, "--dir="+s.dir, "--rkt="+s.rkt, "--config="+config, "--debug")
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(s.sock); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rkt-cri did not listen on %s\n%s", s.sock, s.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the server with sig and waits for it.
func (s *coreCRI) kill(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

// crictl runs crictl against the server; it returns stdout, stderr and
// whether it exited 0.
func (s *coreCRI) crictl(t *testing.T, args ...string) (string, string, bool) {
	t.Helper()
	cmd := exec.Command(coreCrictl(t), args...)
	cmd.Env = append(os.Environ(), "CRI_CONFIG_FILE="+filepath.Join(filepath.Dir(s.sock), "crictl.yaml"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return strings.TrimSpace(stdout.String()), stderr.String(), err == nil
}

func (s *coreCRI) mustCrictl(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, ok := s.crictl(t, args...)
	if !ok {
		t.Fatalf("crictl %s failed:\n%s\n%s\nrkt-cri:\n%s", strings.Join(args, " "), out, errOut, s.out)
	}
	return out
}

// inspect returns crictl inspect's (or inspectp's) status object.
func (s *coreCRI) inspect(t *testing.T, verb, id string) map[string]any {
	t.Helper()
	var v struct {
		Status map[string]any `json:"status"`
	}
	out := s.mustCrictl(t, verb, "-o", "json", id)
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("crictl %s %s: %v\n%s", verb, id, err, out)
	}
	return v.Status
}

// waitContainerState waits until crictl inspect reports state.
func (s *coreCRI) waitContainerState(t *testing.T, id, state string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := s.inspect(t, "inspect", id)
		if st["state"] == state {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s: state %v, want %s", id, st["state"], state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func coreJSON(t *testing.T, path string, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCRICoreLifecycle drives rkt-cri with crictl through a sandbox's
// life: runp, create, start, ps, an app's exit, a kill -9 of rkt-cri and
// its restart (nothing lost, the pod runs on), stop, rm, stopp, rmp.
func TestCRICoreLifecycle(t *testing.T) {
	testutil.RequireRoot(t)
	coreCrictl(t)
	c := testutil.NewCtx(t)
	aci := testutil.NewACI(t, "example.com/cri-core-busybox", testutil.WithBusybox("sh", "sleep", "echo", "cat", "head", "tr"), testutil.WithExec("/bin/sh", "-c", "sleep 3600"))
	c.MustRun(t, "--insecure-options=image", "fetch", aci)
	// Fetched by rkt, not pulled: the container names it by store ID.
	image := testutil.ImageID(t, aci)
	s := startCoreCRI(t, c)
	tmp := t.TempDir()

	if out := s.mustCrictl(t, "version"); !strings.Contains(out, "RuntimeName:  rkt-ng") {
		t.Errorf("crictl version:\n%s", out)
	}
	podCfg := coreJSON(t, filepath.Join(tmp, "pod.json"), map[string]any{
		"metadata":      map[string]any{"name": "web", "namespace": "ns1", "uid": "uid-1", "attempt": 1},
		"hostname":      "web-host",
		"log_directory": filepath.Join(tmp, "logs"),
		"labels":        map[string]string{"app": "web"},
		"annotations":   map[string]string{"team": "cri"},
		"linux":         map[string]any{"sysctls": map[string]string{"net.core.somaxconn": "1234"}},
	})
	pod := s.mustCrictl(t, "runp", podCfg)
	if len(pod) != 36 {
		t.Fatalf("runp printed %q, want a pod UUID", pod)
	}
	st := s.inspect(t, "inspectp", pod)
	if st["state"] != "SANDBOX_READY" {
		t.Errorf("sandbox state %v, want SANDBOX_READY", st["state"])
	}
	md, _ := st["metadata"].(map[string]any)
	if md["name"] != "web" || md["namespace"] != "ns1" || md["uid"] != "uid-1" {
		t.Errorf("sandbox metadata %v", md)
	}
	if nw, _ := st["network"].(map[string]any); nw == nil || nw["ip"] == "" {
		t.Errorf("sandbox network %v: want an IP", st["network"])
	}
	if out := s.mustCrictl(t, "pods", "-q", "--label", "app=web"); out != pod {
		t.Errorf("pods --label app=web: %q, want %s", out, pod)
	}
	if out := s.mustCrictl(t, "pods", "-q", "--label", "app=other"); out != "" {
		t.Errorf("pods --label app=other: %q, want none", out)
	}

	// The sleeper brings a host directory of its own (through a symlink,
	// as critest does).
	hostDir := filepath.Join(tmp, "host-data")
	if err := os.MkdirAll(hostDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hostDir, "flag"), []byte("from-host"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hostDir, hostDir+"-link"); err != nil {
		t.Fatal(err)
	}
	ctrCfg := func(name string, cmd ...string) string {
		cfg := map[string]any{
			"metadata": map[string]any{"name": name},
			"image":    map[string]any{"image": image},
			"command":  cmd,
			"log_path": name + ".log",
			"labels":   map[string]string{"ctr": name},
			"envs":     []map[string]string{{"key": "GREETING", "value": "hi"}},
		}
		if name == "failer" {
			// Unconfined: its exit status comes through all the same.
			cfg["linux"] = map[string]any{"security_context": map[string]any{"seccomp": map[string]any{"profile_type": 1}}}
		}
		if name == "hog" {
			cfg["linux"] = map[string]any{"resources": map[string]any{"memory_limit_in_bytes": 16 << 20}}
		}
		if name == "sleeper" {
			cfg["mounts"] = []map[string]any{{"container_path": "/data", "host_path": hostDir + "-link", "readonly": true}}
		}
		return coreJSON(t, filepath.Join(tmp, name+".json"), cfg)
	}
	sleeper := s.mustCrictl(t, "create", "--no-pull", pod, ctrCfg("sleeper", "/bin/sh", "-c", "sleep 3600"), podCfg)
	if len(sleeper) != 64 {
		t.Fatalf("create printed %q, want a 64-hex container ID", sleeper)
	}
	if st := s.inspect(t, "inspect", sleeper); st["state"] != "CONTAINER_CREATED" {
		t.Errorf("created container state %v", st["state"])
	}
	s.mustCrictl(t, "start", sleeper)
	s.waitContainerState(t, sleeper, "CONTAINER_RUNNING")
	if out := s.mustCrictl(t, "exec", "-s", sleeper, "/bin/cat", "/data/flag"); out != "from-host" {
		t.Errorf("host volume in the container: %q, want from-host", out)
	}
	if out := s.mustCrictl(t, "exec", "-s", sleeper, "/bin/cat", "/proc/sys/net/core/somaxconn"); out != "1234" {
		t.Errorf("sandbox sysctl net.core.somaxconn in the container: %q, want 1234", out)
	}
	if _, _, ok := s.crictl(t, "exec", "-s", sleeper, "/bin/sh", "-c", "echo x > /data/new"); ok {
		t.Errorf("a read-only mount was writable")
	}
	if out := s.mustCrictl(t, "stats", "-o", "json", "--id", sleeper); !strings.Contains(out, "workingSetBytes") {
		t.Errorf("crictl stats of a running container:\n%s", out)
	}
	// Its limits change while it runs.
	s.mustCrictl(t, "update", "--memory=67108864", "--cpu-quota=50000", "--cpu-period=100000", sleeper)
	ust := s.inspect(t, "inspect", sleeper)
	res, _ := ust["resources"].(map[string]any)
	lx, _ := res["linux"].(map[string]any)
	if fmt.Sprint(lx["memoryLimitInBytes"]) != "67108864" || fmt.Sprint(lx["cpuQuota"]) != "50000" {
		t.Errorf("resources after update: %v", res)
	}
	failer := s.mustCrictl(t, "create", "--no-pull", pod, ctrCfg("failer", "/bin/sh", "-c", "exit 3"), podCfg)
	s.mustCrictl(t, "start", failer)
	fst := s.waitContainerState(t, failer, "CONTAINER_EXITED")
	if fmt.Sprint(fst["exitCode"]) != "3" || fst["reason"] != "Error" {
		t.Errorf("failer exit %v reason %v, want 3 Error", fst["exitCode"], fst["reason"])
	}
	// A container over its memory limit is OOMKilled.
	hog := s.mustCrictl(t, "create", "--no-pull", pod, ctrCfg("hog", "/bin/sh", "-c", `x=$(head -c 200000000 /dev/zero | tr "\0" a); echo survived`), podCfg)
	s.mustCrictl(t, "start", hog)
	if hst := s.waitContainerState(t, hog, "CONTAINER_EXITED"); hst["reason"] != "OOMKilled" {
		t.Errorf("hog exit %v reason %v, want OOMKilled", hst["exitCode"], hst["reason"])
	}
	s.mustCrictl(t, "rm", hog)
	// An app that ignores its stop signal is killed when the request's
	// timeout (2 s) passes, not the pod's (30 s).
	stubborn := s.mustCrictl(t, "create", "--no-pull", pod, ctrCfg("stubborn", "/bin/sh", "-c", `trap "" TERM; while :; do sleep 1; done`), podCfg)
	s.mustCrictl(t, "start", stubborn)
	s.waitContainerState(t, stubborn, "CONTAINER_RUNNING")
	time.Sleep(500 * time.Millisecond) // the trap is set
	begin := time.Now()
	s.mustCrictl(t, "stop", "--timeout=2", stubborn)
	if d := time.Since(begin); d < 2*time.Second || d > 20*time.Second {
		t.Errorf("stop --timeout=2 of an app ignoring SIGTERM took %v", d)
	}
	if sst := s.inspect(t, "inspect", stubborn); sst["state"] != "CONTAINER_EXITED" || fmt.Sprint(sst["exitCode"]) != "137" {
		t.Errorf("stubborn after stop: %v exit %v, want EXITED 137", sst["state"], sst["exitCode"])
	}
	s.mustCrictl(t, "rm", stubborn)
	if out := s.mustCrictl(t, "ps", "-q"); out != sleeper {
		t.Errorf("ps -q: %q, want only %s", out, sleeper)
	}
	if out := s.mustCrictl(t, "ps", "-a", "-q", "--label", "ctr=failer"); out != failer {
		t.Errorf("ps -a --label ctr=failer: %q, want %s", out, failer)
	}
	// The streamed lists (the kubelet's CRIListStreaming) say the same.
	cl, err := dialCRI(s.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.close()
	stream, err := cl.rt.StreamContainers(t.Context(), &runtime.StreamContainersRequest{
		Filter: &runtime.ContainerFilter{PodSandboxId: pod, LabelSelector: map[string]string{"ctr": "sleeper"}}})
	if err != nil {
		t.Fatal(err)
	}
	var streamed []string
	for {
		m, err := stream.Recv()
		if err != nil {
			if err != io.EOF {
				t.Errorf("StreamContainers: %v", err)
			}
			break
		}
		for _, c := range m.Containers {
			streamed = append(streamed, c.Id)
		}
	}
	if len(streamed) != 1 || streamed[0] != sleeper {
		t.Errorf("StreamContainers: %v, want [%s]", streamed, sleeper)
	}
	// A prefix names a container.
	if st := s.inspect(t, "inspect", sleeper[:12]); st["id"] != sleeper {
		t.Errorf("inspect by prefix: id %v", st["id"])
	}

	// rkt-cri dies: the pod runs on, and a new rkt-cri finds everything.
	s.kill(t, syscall.SIGKILL)
	if r := c.MustRun(t, "status", pod); !strings.Contains(r.Stdout, "state=running") {
		t.Fatalf("pod after kill -9 of rkt-cri:\n%s", r)
	}
	s.start(t)
	if out := s.mustCrictl(t, "pods", "-q", "--state", "ready"); out != pod {
		t.Errorf("pods after restart: %q, want %s", out, pod)
	}
	if out := s.mustCrictl(t, "ps", "-a", "-q"); !strings.Contains(out, sleeper) || !strings.Contains(out, failer) {
		t.Errorf("ps -a after restart: %q, want both containers", out)
	}
	if st := s.inspect(t, "inspect", sleeper); st["state"] != "CONTAINER_RUNNING" {
		t.Errorf("sleeper after restart: %v", st["state"])
	}

	s.mustCrictl(t, "stop", "--timeout=0", sleeper)
	s.waitContainerState(t, sleeper, "CONTAINER_EXITED")
	s.mustCrictl(t, "rm", sleeper)
	// The host volume it brought left the pod with it.
	if r := c.MustRun(t, "cat-manifest", pod); strings.Contains(r.Stdout, "cri-"+sleeper[:12]) {
		t.Errorf("the removed container's volume is still in the pod manifest:\n%s", r.Stdout)
	}
	if out := s.mustCrictl(t, "ps", "-a", "-q"); out != failer {
		t.Errorf("ps -a after rm: %q, want %s", out, failer)
	}
	s.mustCrictl(t, "stopp", pod)
	if st := s.inspect(t, "inspectp", pod); st["state"] != "SANDBOX_NOTREADY" {
		t.Errorf("sandbox after stopp: %v", st["state"])
	}
	s.mustCrictl(t, "stopp", pod)
	s.mustCrictl(t, "rmp", pod)
	if out := s.mustCrictl(t, "pods", "-q"); out != "" {
		t.Errorf("pods after rmp: %q", out)
	}
	if r := c.MustRun(t, "list", "--no-legend"); strings.TrimSpace(r.Stdout) != "" {
		t.Errorf("rkt list after rmp:\n%s", r.Stdout)
	}
}

// TestCRICoreBadInput: unknown IDs and unsupported options get gRPC codes,
// leave nothing behind, and the server lives on.
func TestCRICoreBadInput(t *testing.T) {
	testutil.RequireRoot(t)
	coreCrictl(t)
	c := testutil.NewCtx(t)
	s := startCoreCRI(t, c)
	tmp := t.TempDir()
	for _, args := range [][]string{
		{"inspectp", "0000"},
		{"inspect", "ffff"},
		{"start", "ffff"},
	} {
		_, errOut, ok := s.crictl(t, args...)
		if ok || !strings.Contains(errOut, "NotFound") {
			t.Errorf("crictl %v: ok=%v, want NotFound\n%s", args, ok, errOut)
		}
	}
	// Unsupported: sysctls, the host's PID namespace.
	for name, linux := range map[string]any{
		"sysctls":  map[string]any{"sysctls": map[string]string{"kernel.shm_rmid_forced": "1"}},
		"host-pid": map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{"pid": 2}}},
	} {
		cfg := coreJSON(t, filepath.Join(tmp, name+".json"), map[string]any{
			"metadata": map[string]any{"name": name, "namespace": "ns", "uid": name},
			"linux":    linux,
		})
		_, errOut, ok := s.crictl(t, "runp", cfg)
		if ok || !strings.Contains(errOut, "Unimplemented") {
			t.Errorf("runp with %s: ok=%v, want Unimplemented\n%s", name, ok, errOut)
		}
	}
	if r := c.MustRun(t, "list", "--no-legend"); strings.TrimSpace(r.Stdout) != "" {
		t.Errorf("refused requests left pods:\n%s", r.Stdout)
	}
	if out := s.mustCrictl(t, "version"); !strings.Contains(out, "rkt-ng") {
		t.Errorf("server after bad input:\n%s", out)
	}

	// A container whose image is absent is refused and leaves no app.
	podCfg := coreJSON(t, filepath.Join(tmp, "pod.json"), map[string]any{
		"metadata": map[string]any{"name": "p", "namespace": "ns", "uid": "p1"}, "linux": map[string]any{},
	})
	pod := s.mustCrictl(t, "runp", podCfg)
	ctrCfg := coreJSON(t, filepath.Join(tmp, "ctr.json"), map[string]any{
		"metadata": map[string]any{"name": "c"}, "image": map[string]any{"image": "example.com/not-pulled:1"},
	})
	if _, errOut, ok := s.crictl(t, "create", "--no-pull", pod, ctrCfg, podCfg); ok || !strings.Contains(errOut, "NotFound") {
		t.Errorf("create with an absent image: ok=%v, want NotFound\n%s", ok, errOut)
	}
	if r := c.MustRun(t, "app", "list", "--no-legend", pod); strings.TrimSpace(r.Stdout) != "" {
		t.Errorf("a refused container left an app:\n%s", r.Stdout)
	}
	s.mustCrictl(t, "rmp", "-f", pod)

	// A sandbox that cannot start (its network does not exist) is
	// reported with rkt's error and leaves no pod.
	s.kill(t, syscall.SIGTERM)
	cfgPath := filepath.Join(tmp, "cri.json")
	if err := os.WriteFile(cfgPath, []byte(`{"network":"no-such-net"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	s.config = cfgPath
	s.start(t)
	if out := s.mustCrictl(t, "info"); !strings.Contains(out, "NetworkConfigMissing") {
		t.Errorf("crictl info with an undefined network: want NetworkReady false\n%s", out)
	}
	if _, errOut, ok := s.crictl(t, "runp", podCfg); ok || !strings.Contains(errOut, "no-such-net") {
		t.Errorf("runp on a missing network: ok=%v, want rkt's error naming it\n%s", ok, errOut)
	}
	if r := c.MustRun(t, "list", "--no-legend"); strings.TrimSpace(r.Stdout) != "" {
		t.Errorf("a failed sandbox left a pod:\n%s", r.Stdout)
	}
	if left, _ := filepath.Glob(filepath.Join(c.DataDir, "cri", "run-*")); len(left) > 0 {
		t.Errorf("a failed sandbox left %v", left)
	}
}
