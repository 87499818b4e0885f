package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// refusedPodGone checks that a refused run left no pod running: the stage1
// refuses before any app starts and leaves at most an exited pod, as its
// other errors do, which gc removes (gc never collects a running pod).
func refusedPodGone(t *testing.T, c *testutil.Ctx) {
	t.Helper()
	c.MustRun(t, "gc", "--grace-period=0s")
	podDirsEmpty(t, c)
}

// podDirsEmpty checks that no pod is left in any state.
func podDirsEmpty(t *testing.T, c *testutil.Ctx) {
	t.Helper()
	for _, s := range []string{"embryo", "prepare", "prepared", "run", "exited-garbage", "garbage"} {
		ents, _ := os.ReadDir(filepath.Join(c.DataDir, "pods", s))
		if len(ents) > 0 {
			t.Errorf("a refused pod left pods/%s/%s", s, ents[0].Name())
		}
	}
}

// TestImagePrivilegesRefused: an image cannot grant itself capabilities or
// syscalls beyond the default set; the user can, with app flags.
func TestImagePrivilegesRefused(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	hostile := inspectACI(t, "rkt-ng.test/hostile-caps",
		testutil.WithIsolator("os/linux/capabilities-retain-set", `{"set":["CAP_SYS_ADMIN","CAP_DAC_READ_SEARCH"]}`))
	r := runInsecure(t, c, "--net=host", hostile, "--", "--print-caps")
	wantExit(t, r, 254)
	oneLineError(t, r, "app hostile-caps", "os/linux/capabilities-retain-set", "CAP_DAC_READ_SEARCH", "CAP_SYS_ADMIN", "--caps-retain")
	if strings.Contains(r.Stdout, "CapBnd") {
		t.Errorf("the app ran:\n%s", r)
	}
	refusedPodGone(t, c)

	// The same privileges given by the user on the command line.
	r = runInsecure(t, c, "--net=host", hostile, "--caps-retain=CAP_SYS_ADMIN,CAP_DAC_READ_SEARCH", "--", "--print-caps")
	wantExit(t, r, 0)
	if got := field(t, r.Stdout, "CapBnd"); got != "0000000000200004" {
		t.Errorf("CapBnd = %s, want CAP_DAC_READ_SEARCH|CAP_SYS_ADMIN (0000000000200004)", got)
	}

	// A seccomp retain set of every syscall.
	all := inspectACI(t, "rkt-ng.test/hostile-seccomp",
		testutil.WithIsolator("os/linux/seccomp-retain-set", `{"set":["@appc.io/all"]}`))
	r = runInsecure(t, c, "--net=host", all, "--", "--syscall=getpid")
	wantExit(t, r, 254)
	oneLineError(t, r, "app hostile-seccomp", "os/linux/seccomp-retain-set", "--seccomp=mode=retain,@appc.io/all")
	refusedPodGone(t, c)
	r = runInsecure(t, c, "--net=host", all, "--seccomp=mode=retain,@appc.io/all", "--", "--print-file=/proc/self/status")
	wantExit(t, r, 0)
	if !strings.Contains(r.Stdout, "Seccomp:\t0") {
		t.Errorf("--seccomp=mode=retain,@appc.io/all still installed a filter")
	}

	// A pod manifest whose app comes from the image: still the image's
	// isolators; one the user wrote is honoured.
	id := strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", hostile).Stdout)
	pm := filepath.Join(t.TempDir(), "pod.json")
	os.WriteFile(pm, []byte(`{"acKind":"PodManifest","acVersion":"0.8.11","apps":[{"name":"a","image":{"id":"`+id+`"}}]}`), 0o644)
	r = c.Run(t, "run", "--net=host", "--pod-manifest="+pm)
	wantExit(t, r, 254)
	oneLineError(t, r, "CAP_SYS_ADMIN", "apps[].app.isolators")
	refusedPodGone(t, c)
	os.WriteFile(pm, []byte(`{"acKind":"PodManifest","acVersion":"0.8.11","apps":[{"name":"a","image":{"id":"`+id+`"},
"app":{"exec":["/inspect","--print-caps"],"user":"0","group":"0",
"isolators":[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_SYS_ADMIN"]}}]}}]}`), 0o644)
	r = c.Run(t, "run", "--net=host", "--pod-manifest="+pm)
	wantExit(t, r, 0)
	if got := field(t, r.Stdout, "CapBnd"); got != "0000000000200000" {
		t.Errorf("CapBnd = %s, want CAP_SYS_ADMIN (0000000000200000)", got)
	}
}

// TestImageRestrictingIsolators: isolators that only take privileges away
// keep working from the image.
func TestImageRestrictingIsolators(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/restrict",
		testutil.WithIsolator("os/linux/capabilities-retain-set", `{"set":["CAP_CHOWN","CAP_NET_BIND_SERVICE"]}`),
		testutil.WithIsolator("os/linux/seccomp-remove-set", `{"set":["mkdir","mkdirat"],"errno":"ENOTSUP"}`))
	r := runInsecure(t, c, "--net=host", aci, "--", "--print-caps", "--syscall=mkdir", "--syscall=getpid", "--syscall=kexec_load")
	wantExit(t, r, 0)
	if got := field(t, r.Stdout, "CapBnd"); got != "0000000000000401" {
		t.Errorf("CapBnd = %s, want CAP_CHOWN|CAP_NET_BIND_SERVICE (0000000000000401)", got)
	}
	if got := field(t, r.Stdout, "SYSCALL_MKDIR"); got != "ENOTSUP" && got != "EOPNOTSUPP" {
		t.Errorf("mkdir removed by the image gave %s", got)
	}
	if got := field(t, r.Stdout, "SYSCALL_GETPID"); got != "OK" {
		t.Errorf("getpid = %s", got)
	}
	// The remove set narrows the default filter: what the default blocks
	// stays blocked (with the set's errno).
	if got := field(t, r.Stdout, "SYSCALL_KEXEC_LOAD"); got == "OK" {
		t.Errorf("kexec_load allowed under an image's remove set")
	}
	rm := inspectACI(t, "rkt-ng.test/restrict-remove",
		testutil.WithIsolator("os/linux/capabilities-remove-set", `{"set":["CAP_CHOWN"]}`))
	r = runInsecure(t, c, "--net=host", rm, "--", "--print-caps")
	wantExit(t, r, 0)
	if got := field(t, r.Stdout, "CapBnd"); got != "00000000a80425fa" {
		t.Errorf("CapBnd = %s, want the default set without CAP_CHOWN", got)
	}
}
