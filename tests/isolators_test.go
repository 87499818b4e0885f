package tests

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rkt-ng/rkt/tests/testutil"
)

func field(t *testing.T, out, key string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("output has no %s=:\n%s", key, out)
	return ""
}

func TestCapabilities(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	passwd := testutil.WithPasswd("root:x:0:0::/:/bin/sh\nuser:x:1000:1000::/:/bin/sh\n")
	group := testutil.WithGroup("root:x:0:\nuser:x:1000:\n")
	aci := inspectACI(t, "rkt-ng.test/caps", passwd, group)
	for _, tc := range []struct {
		name          string
		args          []string
		bnd, eff, amb string
	}{
		{"root default", nil, "00000000a80425fb", "00000000a80425fb", "0000000000000000"},
		{"root retain", []string{"--caps-retain=CAP_NET_BIND_SERVICE,CAP_CHOWN"}, "0000000000000401", "0000000000000401", "0000000000000000"},
		{"root remove", []string{"--caps-remove=CAP_CHOWN"}, "00000000a80425fa", "00000000a80425fa", "0000000000000000"},
		{"user retain", []string{"--user=1000", "--group=1000", "--caps-retain=CAP_NET_BIND_SERVICE"}, "0000000000000400", "0000000000000400", "0000000000000400"},
		{"user default", []string{"--user=user", "--group=user"}, "00000000a80425fb", "0000000000000000", "0000000000000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--net=host", aci}, tc.args...)
			r := runInsecure(t, c, append(args, "--", "--print-caps", "--print-no-new-privs")...)
			wantExit(t, r, 0)
			if got := field(t, r.Stdout, "CapBnd"); got != tc.bnd {
				t.Errorf("CapBnd = %s, want %s", got, tc.bnd)
			}
			if got := field(t, r.Stdout, "CapEff"); got != tc.eff {
				t.Errorf("CapEff = %s, want %s", got, tc.eff)
			}
			if got := field(t, r.Stdout, "CapAmb"); got != tc.amb {
				t.Errorf("CapAmb = %s, want %s", got, tc.amb)
			}
		})
	}
	// --insecure-options=capabilities lifts the bounding set.
	r := c.Run(t, "--insecure-options=image,capabilities", "run", "--net=host", aci, "--", "--print-caps")
	wantExit(t, r, 0)
	if got := field(t, r.Stdout, "CapBnd"); got == "00000000a80425fb" {
		t.Errorf("capabilities still restricted with --insecure-options=capabilities")
	}
	r = runInsecure(t, c, "--net=host", aci, "--caps-retain=CAP_NOPE")
	wantExit(t, r, 254)
	oneLineError(t, r, "CAP_NOPE")
	r = runInsecure(t, c, "--net=host", aci, "--caps-retain=CAP_CHOWN", "--caps-remove=CAP_KILL")
	wantExit(t, r, 254)
}

func TestSeccomp(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/seccomp")
	// The default filter lets ordinary work through.
	r := runInsecure(t, c, "--net=host", aci, "--", "--syscall=mkdir", "--syscall=getpid")
	wantExit(t, r, 0)
	if got := field(t, r.Stdout, "SYSCALL_GETPID"); got != "OK" {
		t.Errorf("getpid under the default filter: %s", got)
	}
	// The default whitelist does not include kexec_load.
	r = runInsecure(t, c, "--net=host", aci, "--", "--syscall=kexec_load")
	if r.ExitCode != 128+31 {
		t.Errorf("kexec_load under the default filter: exit %d, want SIGSYS (159)\n%s", r.ExitCode, r)
	}
	// A remove set with an errno.
	r = runInsecure(t, c, "--net=host", aci, "--seccomp=mode=remove,errno=ENOTSUP,mkdir,mkdirat", "--", "--syscall=mkdir")
	wantExit(t, r, 0)
	if got := field(t, r.Stdout, "SYSCALL_MKDIR"); got != "ENOTSUP" && got != "EOPNOTSUPP" {
		t.Errorf("mkdir removed with ENOTSUP gave %s", got)
	}
	// Without errno a removed syscall kills with SIGSYS.
	r = runInsecure(t, c, "--net=host", aci, "--seccomp=mode=remove,mkdir,mkdirat", "--", "--syscall=mkdir")
	if r.ExitCode != 128+31 {
		t.Errorf("removed mkdir without errno: exit %d, want 159\n%s", r.ExitCode, r)
	}
	// --insecure-options=seccomp: no filter at all.
	r = c.Run(t, "--insecure-options=image,seccomp", "run", "--net=host", aci, "--", "--print-file=/proc/self/status")
	if !strings.Contains(r.Stdout, "Seccomp:\t0") {
		t.Errorf("a filter is installed despite --insecure-options=seccomp")
	}
	r = runInsecure(t, c, "--net=host", aci, "--seccomp=mode=remove,no_such_syscall")
	wantExit(t, r, 254)
	oneLineError(t, r, "no_such_syscall")
}

func TestNoNewPrivsAndPaths(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/nnp", testutil.WithIsolator("os/linux/no-new-privileges", "true"))
	r := runInsecure(t, c, "--net=host", aci, "--", "--print-no-new-privs")
	wantExit(t, r, 0)
	if got := field(t, r.Stdout, "NoNewPrivs"); got != "1" {
		t.Errorf("NoNewPrivs = %s, want 1", got)
	}
	// Masked paths are empty, /proc/sys is read-only.
	r = runInsecure(t, c, "--net=host", aci, "--", "--print-file=/proc/kcore", "--write-file=/proc/sys/kernel/hostname", "--content=x")
	if r.ExitCode == 0 {
		t.Errorf("writing /proc/sys succeeded\n%s", r)
	}
	if !strings.Contains(r.Stderr+r.Stdout, "read-only") {
		t.Errorf("write to /proc/sys did not fail as read-only\n%s", r)
	}
	r = runInsecure(t, c, "--net=host", aci, "--", "--print-file=/proc/keys", "--print-file=/proc/timer_list")
	wantExit(t, r, 0)
	if strings.Contains(r.Stdout, "keyring") || strings.Contains(r.Stdout, "Timer List") {
		t.Errorf("/proc/keys or /proc/timer_list readable\n%s", r)
	}
	// No device can be created or opened beyond the standard nodes.
	r = runInsecure(t, c, "--net=host", aci, "--", "--check-mknod=b:8:0:/sda")
	if !strings.Contains(r.Stdout, "MKNOD=EPERM") && !strings.Contains(r.Stdout, "MKNOD_OPEN=EPERM") {
		t.Errorf("a block device made in the pod could be opened\n%s", r)
	}
	// The standard nodes may be made (CAP_MKNOD is in appc's default set)
	// and used, as rkt allowed.
	r = runInsecure(t, c, "--net=host", aci, "--", "--check-mknod=c:1:3:/null")
	if !strings.Contains(r.Stdout, "MKNOD=OK") || !strings.Contains(r.Stdout, "MKNOD_OPEN=OK") {
		t.Errorf("mknod of /dev/null's device (c 1:3) was refused\n%s", r)
	}
}

// TestCapabilitiesSeccompMemoryRefused: isolators stage1 cannot apply
// (checked by the ns flavor's run entrypoint, not by stage0) fail with one
// line and exit 254 before any app starts, and leave no pod running.
func TestCapabilitiesSeccompMemoryRefused(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/refused")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown capability", []string{"--caps-retain=CAP_NOPE"}, "CAP_NOPE"},
		{"unknown removed capability", []string{"--caps-remove=CAP_NOPE"}, "CAP_NOPE"},
		{"unknown syscall", []string{"--seccomp=mode=retain,no_such_syscall"}, "no_such_syscall"},
		{"unknown errno", []string{"--seccomp=mode=remove,errno=ENOPE,mkdir"}, "ENOPE"},
		{"bad memory", []string{"--memory=1X"}, "1X"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"--net=host", aci}, tc.args...), "--", "--print-msg=APP RAN")
			r := runInsecure(t, c, args...)
			wantExit(t, r, 254)
			oneLineError(t, r, tc.want)
			if strings.Contains(r.Stdout, "APP RAN") {
				t.Errorf("the app ran\n%s", r)
			}
			refusedPodGone(t, c)
		})
	}
	// A pod manifest the user wrote is checked by the stage1 the same way.
	id := strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", aci).Stdout)
	pm := filepath.Join(t.TempDir(), "pod.json")
	os.WriteFile(pm, []byte(`{"acKind":"PodManifest","acVersion":"0.8.11","apps":[{"name":"a","image":{"id":"`+id+`"},
"app":{"exec":["/inspect","--print-msg=APP RAN"],"user":"0","group":"0",
"isolators":[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_NOPE"]}}]}}]}`), 0o644)
	r := c.Run(t, "run", "--net=host", "--pod-manifest="+pm)
	wantExit(t, r, 254)
	oneLineError(t, r, "app a", "CAP_NOPE")
	if strings.Contains(r.Stdout, "APP RAN") {
		t.Errorf("the app ran\n%s", r)
	}
	refusedPodGone(t, c)
}

func TestCgroupLimits(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/limits")
	r := runInsecure(t, c, "--net=host", aci, "--memory=64Mi", "--cpu=250m", "--cpu-shares=512", "--",
		"--print-memorylimit", "--print-cpuquota", "--print-cpushares")
	wantExit(t, r, 0)
	if got := field(t, r.Stdout, "MEMORY_LIMIT"); got != "67108864" {
		t.Errorf("MEMORY_LIMIT = %s, want 67108864", got)
	}
	if got := field(t, r.Stdout, "CPU_QUOTA"); got != "250" {
		t.Errorf("CPU_QUOTA = %s, want 250", got)
	}
	if got := field(t, r.Stdout, "CPU_SHARES"); got != "512" {
		t.Errorf("CPU_SHARES = %s, want 512", got)
	}
	// An app over its memory limit is OOM-killed, and rkt says so.
	r = runInsecure(t, c, "--net=host", aci, "--memory=32Mi", "--", "--alloc=200M")
	if r.ExitCode != 137 {
		t.Errorf("memory hog: exit %d, want 137 (SIGKILL)\n%s", r.ExitCode, r)
	}
	if !strings.Contains(r.Stderr, "OOM") {
		t.Errorf("rkt did not report the OOM kill\n%s", r)
	}
	r = runInsecure(t, c, "--net=host", aci, "--memory=1X")
	wantExit(t, r, 254)
	oneLineError(t, r, "1X")
	// No cgroup of these pods is left (only this test's pods count: other
	// pods may run on the host).
	pods := podDirs(t, c)
	if len(pods) == 0 {
		t.Fatal("no pods recorded")
	}
	for _, pd := range pods {
		uuid := filepath.Base(pd)
		m, _ := filepath.Glob("/sys/fs/cgroup/*/rkt-" + uuid + "*")
		m2, _ := filepath.Glob("/sys/fs/cgroup/*/*/*/rkt-" + uuid + "*")
		for _, d := range append(m, m2...) {
			if _, err := os.Stat(d); err == nil {
				t.Errorf("cgroup left behind: %s", d)
			}
		}
	}
}

func TestUnknownIsolatorReported(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/apparmor", testutil.WithIsolator("os/linux/apparmor-profile", `{"profile":"x"}`))
	r := runInsecure(t, c, "--net=host", aci, "--", "--exit-code=0")
	wantExit(t, r, 0)
	if !strings.Contains(r.Stderr, "os/linux/apparmor-profile") {
		t.Errorf("the ignored isolator was not reported\n%s", r)
	}
}

func TestSysctlIsolator(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/sysctl")
	id := strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", aci).Stdout)
	manifest := func(key, val string) string {
		p := filepath.Join(t.TempDir(), "pod.json")
		os.WriteFile(p, []byte(`{"acKind":"PodManifest","acVersion":"0.8.11","apps":[{"name":"a","image":{"id":"`+id+`"},
"app":{"exec":["/inspect","--print-file=/proc/sys/net/ipv4/ip_default_ttl"],"user":"0","group":"0"}}],
"isolators":[{"name":"os/unix/sysctl","value":{"`+key+`":"`+val+`"}}]}`), 0o644)
		return p
	}
	host, _ := os.ReadFile("/proc/sys/net/ipv4/ip_default_ttl")
	r := c.Run(t, "run", "--pod-manifest="+manifest("net.ipv4.ip_default_ttl", "42"))
	wantExit(t, r, 0)
	if strings.TrimSpace(r.Stdout) != "42" {
		t.Errorf("sysctl in the pod = %q, want 42", r.Stdout)
	}
	if now, _ := os.ReadFile("/proc/sys/net/ipv4/ip_default_ttl"); string(now) != string(host) {
		t.Errorf("the host's sysctl changed: %q -> %q", host, now)
	}
	r = c.Run(t, "run", "--pod-manifest="+manifest("kernel.domainname", "x"))
	wantExit(t, r, 254)
	oneLineError(t, r, "kernel.domainname")
	r = c.Run(t, "run", "--net=host", "--pod-manifest="+manifest("net.ipv4.ip_default_ttl", "42"))
	wantExit(t, r, 254)
	oneLineError(t, r, "--net=host")
}

func TestPrivateUsers(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/userns")
	hostUID := func(out string) string {
		for _, l := range strings.Split(out, "\n") {
			if fs := strings.Fields(l); len(fs) == 3 && fs[0] == "0" && fs[2] == "65536" {
				return fs[1]
			}
		}
		t.Fatalf("no uid_map line 0 HOST 65536 in:\n%s", out)
		return ""
	}
	// A running pod and a second one started meanwhile get different ranges.
	p := c.Start(t, "--insecure-options=image", "run", "--private-users", "--net=host", aci, "--",
		"--print-file=/proc/self/uid_map", "--sleep=1h")
	// inspect prints messages before files: wait for the map itself.
	p.WaitOutput(t, " 65536\n", 30*time.Second)
	first := hostUID(p.Stdout())
	// The pod's trees are overlays of idmapped layers passed as file
	// descriptors ("lowerdir+"), not copies.
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	byFd := 0
	for _, l := range strings.Split(string(mi), "\n") {
		if strings.Contains(l, c.DataDir) && strings.Contains(l, " - overlay ") && strings.Contains(l, "lowerdir+") {
			byFd++
		}
	}
	if byFd == 0 {
		t.Errorf("no overlay of idmapped layers for a --private-users pod: its trees were copied")
	}
	r := runInsecure(t, c, "--private-users", aci, "--", "--print-user", "--print-file=/proc/self/uid_map",
		"--write-file=/created", "--content=x", "--stat-file=/created")
	wantExit(t, r, 0)
	if got := field(t, r.Stdout, "UID"); got != "0" {
		t.Errorf("uid inside = %s, want 0", got)
	}
	second := hostUID(r.Stdout)
	if first == "0" || second == "0" || first == second {
		t.Errorf("host ranges %s and %s: want two distinct unprivileged ranges", first, second)
	}
	// Without overlayfs the trees are copied with shifted owners.
	r = runInsecure(t, c, "--private-users", "--no-overlay", "--net=host", aci, "--", "--print-user", "--print-file=/proc/self/uid_map",
		"--write-file=/created", "--content=x", "--stat-file=/created")
	wantExit(t, r, 0)
	if got := field(t, r.Stdout, "UID"); got != "0" || hostUID(r.Stdout) == "0" {
		t.Errorf("--no-overlay --private-users: uid %s, map %s", got, hostUID(r.Stdout))
	}
	p.Signal(syscall.SIGTERM)
	p.Wait(t, 20*time.Second)
}
