package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/tests/testutil"
)

type result struct {
	stdout, stderr string
	code           int
}

func runInspect(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), testutil.BuildInspect(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	if cmd.ProcessState == nil {
		t.Fatalf("run inspect %v: %v", args, err)
	}
	return result{so.String(), se.String(), cmd.ProcessState.ExitCode()}
}

func TestInspectReports(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	statPath := filepath.Join(dir, "f")
	if err := os.WriteFile(statPath, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(statPath, 0o2640); err != nil {
		t.Fatal(err)
	}
	netns, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		env      []string
		args     []string
		want     string // exact stdout, unless wantRe is set
		wantRe   string
		wantCode int
		wantErr  string // substring of stderr
	}{
		{name: "msg and exit code", args: []string{"--print-msg=hello", "--exit-code=3"}, want: "hello\n", wantCode: 3},
		{name: "env", env: []string{"INSPECT_FOO=bar"}, args: []string{"--print-env=INSPECT_FOO", "--print-env=INSPECT_UNSET"},
			want: "INSPECT_FOO=bar\nINSPECT_UNSET is unset\n"},
		{name: "user", args: []string{"--print-user"},
			want: fmt.Sprintf("UID=%d\nGID=%d\nEUID=%d\nEGID=%d\n", os.Getuid(), os.Getgid(), os.Geteuid(), os.Getegid())},
		{name: "cwd", args: []string{"--print-cwd"}, want: "CWD=" + dir + "\n"},
		{name: "netns", args: []string{"--print-netns"}, want: "NETNS=" + netns + "\n"},
		{name: "caps", args: []string{"--print-caps", "--print-no-new-privs"},
			wantRe: `^CapInh=[0-9a-f]{16}\nCapPrm=[0-9a-f]{16}\nCapEff=[0-9a-f]{16}\nCapBnd=[0-9a-f]{16}\nCapAmb=[0-9a-f]{16}\nNoNewPrivs=[01]\n$`},
		{name: "order is fixed", args: []string{"--print-hostname", "--print-msg=first"}, wantRe: "^first\nHOSTNAME=.+\n$"},
		{name: "write then read", args: []string{"--write-file=" + filepath.Join(dir, "w"), "--content=abc", "--read-file=" + filepath.Join(dir, "w")}, want: "abc"},
		{name: "read missing", args: []string{"--read-file=" + filepath.Join(dir, "missing")}, wantCode: 1, wantErr: "no such file"},
		{name: "print missing goes on", args: []string{"--print-file=" + filepath.Join(dir, "missing"), "--print-msg=after"},
			want: "after\n", wantErr: "no such file"},
		{name: "stat", args: []string{"--stat-file=" + statPath},
			want: fmt.Sprintf("STAT=%s type=file mode=2640 uid=%d gid=%d\n", statPath, os.Geteuid(), os.Getegid())},
		{name: "syscall allowed", args: []string{"--syscall=getpid", "--syscall=uname", "--syscall=mkdir"},
			want: "SYSCALL_GETPID=OK\nSYSCALL_UNAME=OK\nSYSCALL_MKDIR=OK\n"},
		{name: "ptrace probe", args: []string{"--syscall=ptrace"}, want: "SYSCALL_PTRACE=ESRCH\n"},
		{name: "unknown syscall", args: []string{"--syscall=nope"}, wantCode: 1, wantErr: `syscall "nope": unknown`},
		{name: "alloc", args: []string{"--alloc=3M"}, want: "ALLOCATED=3145728\n"},
		{name: "sleep seconds", args: []string{"--sleep=0", "--print-msg=x"}, want: "x\n"},
		{name: "bad sleep", args: []string{"--sleep=soon"}, wantCode: 1, wantErr: "not a duration"},
		{name: "bad flag", args: []string{"--no-such-flag"}, wantCode: 2},
		{name: "mounts", args: []string{"--print-mounts"}, wantRe: `(?m)^MOUNT=/ fstype=\S+ source=\S+ root=\S+ opts=\S+ super=\S+ propagation=\S+$`},
		{name: "ifaces", args: []string{"--print-ifaces"}, wantRe: `(?m)^IFACE=lo mtu=\d+ flags=up\|loopback.*\nADDR=lo 127\.0\.0\.1/8$`},
		{name: "resolve", args: []string{"--resolve=localhost"}, wantRe: `^RESOLVE=localhost .*127\.0\.0\.1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := runInspect(t, dir, tc.env, tc.args...)
			if res.code != tc.wantCode {
				t.Errorf("exit code = %d, want %d; stderr: %s", res.code, tc.wantCode, res.stderr)
			}
			if tc.wantRe != "" {
				if !regexp.MustCompile(tc.wantRe).MatchString(res.stdout) {
					t.Errorf("stdout %q does not match %q", res.stdout, tc.wantRe)
				}
			} else if tc.wantCode != 2 {
				if diff := cmp.Diff(tc.want, res.stdout); diff != "" {
					t.Errorf("stdout mismatch (-want +got):\n%s", diff)
				}
			}
			if !strings.Contains(res.stderr, tc.wantErr) {
				t.Errorf("stderr %q does not contain %q", res.stderr, tc.wantErr)
			}
		})
	}
}

func TestInspectPIDs(t *testing.T) {
	t.Parallel()
	cmd := exec.CommandContext(t.Context(), testutil.BuildInspect(t), "--print-pid", "--print-ppid")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("PID=%d\nPPID=%d\n", cmd.Process.Pid, os.Getpid())
	if diff := cmp.Diff(want, string(out)); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

// startInspect starts inspect and returns a reader of its stdout lines.
func startInspect(t *testing.T, args ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), testutil.BuildInspect(t), args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, bufio.NewScanner(out)
}

func nextLine(t *testing.T, sc *bufio.Scanner) string {
	t.Helper()
	if !sc.Scan() {
		t.Fatalf("inspect output ended early (err %v)", sc.Err())
	}
	return sc.Text()
}

func TestInspectSilentSigterm(t *testing.T) {
	t.Parallel()
	cmd, sc := startInspect(t, "--silent-sigterm", "--print-msg=ready", "--sleep=forever")
	if got := nextLine(t, sc); got != "ready" {
		t.Fatalf("first line %q, want ready", got)
	}
	if err := cmd.Process.Signal(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := nextLine(t, sc); got != "got SIGTERM" {
		t.Errorf("after SIGTERM got %q, want \"got SIGTERM\"", got)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("inspect exited with %v, want 0", err)
	}
}

func TestInspectPrintSignals(t *testing.T) {
	t.Parallel()
	cmd, sc := startInspect(t, "--print-signals", "--print-msg=ready", "--sleep=forever")
	if got := nextLine(t, sc); got != "ready" {
		t.Fatalf("first line %q, want ready", got)
	}
	var got []string
	for _, sig := range []unix.Signal{unix.SIGUSR1, unix.SIGHUP, unix.SIGTERM} {
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		got = append(got, nextLine(t, sc))
	}
	want := []string{"SIGNAL=SIGUSR1", "SIGNAL=SIGHUP", "SIGNAL=SIGTERM"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestInspectForkChildren(t *testing.T) {
	t.Parallel()
	cmd := exec.CommandContext(t.Context(), testutil.BuildInspect(t), "--print-pid", "--fork-children=2")
	// Output waits for the pipe to close: the orphans must not hold it.
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	var pids []int
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if v, ok := strings.CutPrefix(line, "CHILD_PID="); ok {
			pid, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			pids = append(pids, pid)
		}
	}
	if len(pids) != 2 {
		t.Fatalf("want 2 CHILD_PID lines, got output %q", out)
	}
	for _, pid := range pids {
		t.Cleanup(func() { unix.Kill(pid, unix.SIGKILL) })
	}
	for _, pid := range pids {
		state, ppid := procState(t, pid)
		// A fresh sleeper may still be starting up.
		for deadline := time.Now().Add(5 * time.Second); state != "S" && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
			state, ppid = procState(t, pid)
		}
		if state != "S" {
			t.Errorf("grandchild %d state %s, want S (sleeping)", pid, state)
		}
		if ppid == cmd.Process.Pid {
			t.Errorf("grandchild %d still has inspect as parent", pid)
		}
	}
}

// procState returns the state and parent PID from /proc/<pid>/stat.
func procState(t *testing.T, pid int) (string, int) {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("process %d: %v", pid, err)
	}
	// pid (comm) state ppid ...
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatalf("/proc/%d/stat: %v", pid, err)
	}
	return f[0], ppid
}

func TestInspectHTTP(t *testing.T) {
	t.Parallel()
	_, sc := startInspect(t, "--serve-http=127.0.0.1:0")
	line := nextLine(t, sc)
	addr, ok := strings.CutPrefix(line, "SERVING=")
	if !ok {
		t.Fatalf("first line %q, want SERVING=", line)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	res := runInspect(t, "", nil, "--get-http=http://"+addr+"/")
	if res.code != 0 || res.stdout != "hello from "+host+"\n" {
		t.Errorf("get-http: code %d stdout %q stderr %q, want \"hello from %s\"", res.code, res.stdout, res.stderr, host)
	}
	res = runInspect(t, "", nil, "--get-http=http://127.0.0.1:1/", "--http-timeout=300ms")
	if res.code != 1 || !strings.Contains(res.stderr, "connection refused") {
		t.Errorf("get-http of a closed port: code %d stderr %q, want 1 and connection refused", res.code, res.stderr)
	}
}

func TestInspectMknod(t *testing.T) {
	testutil.RequireRoot(t)
	t.Parallel()
	p := filepath.Join(t.TempDir(), "null")
	res := runInspect(t, "", nil, "--check-mknod=c:1:3:"+p)
	if diff := cmp.Diff("MKNOD=OK\nMKNOD_OPEN=OK\n", res.stdout); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s\nstderr: %s", diff, res.stderr)
	}
	res = runInspect(t, "", nil, "--check-mknod="+p)
	if res.stdout != "MKNOD=EEXIST\n" {
		t.Errorf("second mknod: stdout %q, want MKNOD=EEXIST", res.stdout)
	}
}

// TestInspectCgroupV1 runs inspect in a fresh v1 memory and cpu cgroup with
// limits and checks that it reads them back.
func TestInspectCgroupV1(t *testing.T) {
	testutil.RequireRoot(t)
	name := fmt.Sprintf("rkt-ng-inspect-test-%d", os.Getpid())
	files := map[string]map[string]string{
		"memory": {"memory.limit_in_bytes": "67108864"},
		"cpu":    {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "50000", "cpu.shares": "512"},
	}
	var procs []string
	for ctrl, settings := range files {
		base := "/sys/fs/cgroup/" + ctrl
		if _, err := os.Stat(filepath.Join(base, "cgroup.procs")); err != nil {
			t.Skipf("requires a cgroup v1 %s hierarchy at %s (%v); run on a cgroup v1 or hybrid host", ctrl, base, err)
		}
		d := filepath.Join(base, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			// The process has exited; the kernel may take a moment to
			// release the cgroup.
			for range 50 {
				if err := os.Remove(d); err == nil || os.IsNotExist(err) {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Errorf("remove cgroup %s", d)
		})
		for f, v := range settings {
			if err := os.WriteFile(filepath.Join(d, f), []byte(v), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		procs = append(procs, filepath.Join(d, "cgroup.procs"))
	}
	// sh moves itself into the cgroups, then becomes inspect.
	script := `for p in "$@"; do echo $$ > "$p" || exit 1; done; exec "$0" --print-memorylimit --print-cpuquota --print-cpushares`
	cmd := exec.CommandContext(t.Context(), "/bin/sh", append([]string{"-c", script, testutil.BuildInspect(t)}, procs...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("inspect: %v\n%s", err, out)
	}
	want := "MEMORY_LIMIT=67108864\nCPU_QUOTA=500\nCPU_SHARES=512\n"
	if diff := cmp.Diff(want, string(out)); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int64
		err  bool
	}{
		{in: "123", want: 123},
		{in: "64K", want: 64 << 10},
		{in: "100M", want: 100 << 20},
		{in: "100MiB", want: 100 << 20},
		{in: "2g", want: 2 << 30},
		{in: "", err: true},
		{in: "M", err: true},
		{in: "-1", err: true},
		{in: "1T", err: true},
		{in: "9999999999G", err: true},
	} {
		got, err := parseSize(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestParseRoutes(t *testing.T) {
	t.Parallel()
	v4 := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n" +
		"eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n" +
		"eth1\t0000A8C0\t00000000\t0000\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
	got, err := parseRoutes4(v4)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"default via 10.0.0.1 dev eth0 metric 100", "10.0.0.0/24 dev eth0 metric 0"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseRoutes4 mismatch (-want +got):\n%s", diff)
	}
	v6 := "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000001 00000000 00000003     eth0\n" +
		"fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n"
	got, err = parseRoutes6(v6)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"default6 via fd00::1 dev eth0 metric 1024", "fd00::/64 dev eth0 metric 256"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseRoutes6 mismatch (-want +got):\n%s", diff)
	}
	if _, err := parseRoutes4("header\nshort line\n"); err == nil {
		t.Error("parseRoutes4 of a short line: no error")
	}
}

func TestParseMountInfo(t *testing.T) {
	t.Parallel()
	in := "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n" +
		"37 35 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
	got, err := parseMountInfo(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []mountInfo{
		{root: "/mnt1", mountPoint: `/mnt/with\040space`, opts: "rw,noatime", optional: "master:1", fsType: "ext3", source: "/dev/root", superOpts: "rw,errors=continue"},
		{root: "/", mountPoint: "/sys/fs/cgroup/memory", opts: "rw,relatime", fsType: "cgroup", source: "cgroup", superOpts: "rw,memory"},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(mountInfo{})); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
	if got := unescapeMount(`/a\040b\\c\134`); got != `/a b\\c\` {
		t.Errorf("unescapeMount = %q", got)
	}
	if _, err := parseMountInfo("1 2 3\n"); err == nil {
		t.Error("malformed line: no error")
	}
}

func TestFindCgroupFile(t *testing.T) {
	t.Parallel()
	mp := t.TempDir()
	// The pod's cgroup bind-mounted at the mount point: /proc/self/cgroup
	// shows the full path, mountinfo the same root.
	sub := filepath.Join(mp, "leaf")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{mp, sub} {
		if err := os.WriteFile(filepath.Join(d, "memory.max"), []byte("max"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, root, own, want string
	}{
		{name: "namespace root", root: "/", own: "/leaf", want: sub},
		{name: "sub-tree mounted", root: "/machine/pod", own: "/machine/pod/leaf", want: sub},
		{name: "mount is the cgroup", root: "/machine/pod", own: "/machine/pod", want: mp},
		{name: "unrelated root falls back to mount point", root: "/other", own: "/machine/x", want: mp},
	} {
		got, ok := findCgroupFile(mountInfo{root: tc.root, mountPoint: mp}, tc.own, "memory.max")
		if !ok || got != tc.want {
			t.Errorf("%s: findCgroupFile = %q, %v; want %q", tc.name, got, ok, tc.want)
		}
	}
}

// FuzzParseProcFiles checks that the /proc parsers never panic, whatever a
// (possibly newer) kernel prints.
func FuzzParseProcFiles(f *testing.F) {
	f.Add("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw\n")
	f.Add("Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\neth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\n")
	f.Add("fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0\n")
	f.Add(`/a\040b\1`)
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 1<<16 {
			return
		}
		parseMountInfo(s)
		parseRoutes4(s)
		parseRoutes6(s)
		unescapeMount(s)
	})
}
