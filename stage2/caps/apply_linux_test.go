package caps

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// helperEnv makes the test binary a helper that applies a set and execs a
// command: capabilities cannot be regained once dropped, so the test process
// itself must not call Apply.
const helperEnv = "RKTNG_CAPS_TEST_HELPER"

type helperConfig struct {
	Set Set
	// Granted is what the thread holds; nil means Set.
	Granted *Set
	UID     int
	Argv    []string
}

func TestMain(m *testing.M) {
	if cfg := os.Getenv(helperEnv); cfg != "" {
		if err := helper(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
		}
		os.Exit(254)
	}
	os.Exit(m.Run())
}

// helper follows the call order of the package documentation and returns
// only on failure.
func helper(cfg string) error {
	// Capabilities are per thread: Apply and the exec must run on this
	// thread, which is deliberately never unlocked.
	runtime.LockOSThread()
	var c helperConfig
	if err := json.Unmarshal([]byte(cfg), &c); err != nil {
		return err
	}
	if err := unix.Setgroups(nil); err != nil {
		return err
	}
	if err := unix.Setresgid(c.UID, c.UID, c.UID); err != nil {
		return err
	}
	granted := c.Set
	if c.Granted != nil {
		granted = *c.Granted
	}
	if err := Apply(c.Set, granted, c.UID); err != nil {
		return err
	}
	if len(c.Argv) == 0 {
		// Report what the thread holds before the exec.
		e, p, i, err := Current()
		if err != nil {
			return err
		}
		fmt.Printf("%d %d %d %d\n", e, p, i, unix.Getuid())
		os.Exit(0)
	}
	return unix.Exec(c.Argv[0], c.Argv, os.Environ())
}

func runHelper(t *testing.T, c helperConfig) string {
	t.Helper()
	cfg, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+string(cfg))
	cmd.WaitDelay = 10 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper %+v: %v: %s", c, err, stderr.String())
	}
	return string(out)
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("requires root (uid=%d); run: sudo -E go test ./stage2/caps", os.Geteuid())
	}
	e, _, _, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	if !e.Has(unix.CAP_SETPCAP) || !e.Has(unix.CAP_SETUID) || !e.Has(unix.CAP_SETGID) {
		t.Skipf("requires CAP_SETPCAP, CAP_SETUID and CAP_SETGID (have %s); run as real root", e)
	}
}

// status parses the Cap* and Uid lines of a /proc/<pid>/status.
func status(t *testing.T, text string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for line := range strings.Lines(text) {
		k, v, ok := strings.Cut(line, ":")
		if ok && (strings.HasPrefix(k, "Cap") || k == "Uid" || k == "NoNewPrivs") {
			got[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	if len(got) < 6 {
		t.Fatalf("no Cap lines in status:\n%s", text)
	}
	return got
}

func hex(s Set) string { return fmt.Sprintf("%016x", uint64(s)) }

func TestApplyExec(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	if _, err := os.Stat("/bin/cat"); err != nil {
		t.Skipf("requires /bin/cat: %v", err)
	}
	netBind := NewSet(unix.CAP_NET_BIND_SERVICE)
	tests := []struct {
		name string
		set  Set
		uid  int
		want map[string]string
		// nothing: grant no capability (the bounding set stays set).
		nothing bool
	}{
		{"root default", DefaultSet, 0, map[string]string{
			"CapInh": hex(DefaultSet), "CapPrm": hex(DefaultSet), "CapEff": hex(DefaultSet),
			"CapBnd": hex(DefaultSet), "CapAmb": hex(0), "Uid": "0 0 0 0", "NoNewPrivs": "0"}, false},
		{"root none", 0, 0, map[string]string{
			"CapInh": hex(0), "CapPrm": hex(0), "CapEff": hex(0),
			"CapBnd": hex(0), "CapAmb": hex(0), "Uid": "0 0 0 0", "NoNewPrivs": "0"}, false},
		{"uid 1000 net_bind_service", netBind, 1000, map[string]string{
			"CapInh": hex(netBind), "CapPrm": hex(netBind), "CapEff": hex(netBind),
			"CapBnd": hex(netBind), "CapAmb": hex(netBind), "Uid": "1000 1000 1000 1000", "NoNewPrivs": "0"}, false},
		{"uid 1000 default", DefaultSet, 1000, map[string]string{
			"CapInh": hex(DefaultSet), "CapPrm": hex(DefaultSet), "CapEff": hex(DefaultSet),
			"CapBnd": hex(DefaultSet), "CapAmb": hex(DefaultSet), "Uid": "1000 1000 1000 1000", "NoNewPrivs": "0"}, false},
		{"uid 1000 bounded, nothing granted", DefaultSet, 1000, map[string]string{
			"CapInh": hex(0), "CapPrm": hex(0), "CapEff": hex(0),
			"CapBnd": hex(DefaultSet), "CapAmb": hex(0), "Uid": "1000 1000 1000 1000", "NoNewPrivs": "0"}, true},
		{"uid 1000 none", 0, 1000, map[string]string{
			"CapInh": hex(0), "CapPrm": hex(0), "CapEff": hex(0),
			"CapBnd": hex(0), "CapAmb": hex(0), "Uid": "1000 1000 1000 1000", "NoNewPrivs": "0"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := helperConfig{Set: tc.set, UID: tc.uid, Argv: []string{"/bin/cat", "/proc/self/status"}}
			if tc.nothing {
				c.Granted = new(Set)
			}
			out := runHelper(t, c)
			if diff := cmp.Diff(tc.want, status(t, out)); diff != "" {
				t.Errorf("status after Apply(%s, %d) and exec mismatch (-want +got):\n%s", tc.set, tc.uid, diff)
			}
		})
	}
}

// A non-root app can use what it retained, and only that: bind a port below
// 1024 (CAP_NET_BIND_SERVICE) but not chown (CAP_CHOWN).
func TestApplyNonRootUses(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	// A system interpreter: uid 1000 cannot reach one under /root.
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skipf("requires %s to act as the exec'd app: %v", py, err)
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); err != nil || strings.TrimSpace(string(b)) != "1024" {
		t.Skipf("requires net.ipv4.ip_unprivileged_port_start=1024 (have %q, %v)", b, err)
	}
	script := `import socket, os
try:
    socket.socket().bind(("127.0.0.1", 1009)); print("bind ok")
except PermissionError:
    print("bind denied")
try:
    os.chown("/proc/self/status", 0, 0); print("chown ok")
except PermissionError:
    print("chown denied")`
	for set, want := range map[Set]string{
		NewSet(unix.CAP_NET_BIND_SERVICE): "bind ok\nchown denied\n",
		NewSet(unix.CAP_CHOWN):            "bind denied\nchown ok\n",
		0:                                 "bind denied\nchown denied\n",
	} {
		out := runHelper(t, helperConfig{Set: set, UID: 1000, Argv: []string{py, "-c", script}})
		if diff := cmp.Diff(want, out); diff != "" {
			t.Errorf("uid 1000 with %q (-want +got):\n%s", set, diff)
		}
	}
}

// Before the exec the thread holds exactly the set in effective, permitted
// and inheritable, as a non-root UID.
func TestApplyCurrent(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	set := NewSet(unix.CAP_KILL, unix.CAP_NET_RAW)
	out := runHelper(t, helperConfig{Set: set, UID: 1000})
	want := strings.Repeat(strconv.FormatUint(uint64(set), 10)+" ", 3) + "1000\n"
	if out != want {
		t.Errorf("Current after Apply = %q, want %q", out, want)
	}
}
