package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/vm"
	"github.com/rkt-ng/rkt/tests/testutil"
)

// requireKVMStage1 skips unless qemu is installed, and returns the KVM
// stage1 image. It does not need /dev/kvm: without it the guest runs under
// TCG, as in CI.
func requireKVMStage1(t *testing.T) string {
	t.Helper()
	testutil.RequireRoot(t)
	if testing.Short() {
		t.Skip("boots a virtual machine; run without -short")
	}
	if _, err := vm.FindQEMU(); err != nil {
		t.Skipf("requires qemu (%v); run: apt-get install --no-install-recommends qemu-system-x86 (or sh scripts/install-deps.sh)", err)
	}
	return testutil.KVMStage1Image(t)
}

// TestKVMRun runs one pod in a virtual machine (one boot): the app's
// stdout reaches rkt run's, its exit code 7 comes back as rkt run's and in
// rkt status, it runs on the image's kernel (not the host's), confined by
// stage2 (no_new_privs, its own PID namespace), and a host volume it writes
// in the guest holds the write on the host.
func TestKVMRun(t *testing.T) {
	stage1 := requireKVMStage1(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/kvm-run", testutil.WithMountPoint("data", "/data", false))
	vol := t.TempDir()
	start := time.Now()
	r := runInsecure(t, c, "--stage1-path="+stage1, "--net=none", "--pod-name=kvmrun",
		"--volume=data,kind=host,source="+vol, aci, "--",
		"--print-msg=hello from the guest", "--print-file=/proc/sys/kernel/osrelease",
		"--print-no-new-privs",
		"--write-file=/data/out", "--content=written in the guest", "--exit-code=7")
	t.Logf("rkt run took %s\n%s", time.Since(start).Round(time.Millisecond), r)
	wantExit(t, r, 7)
	if !strings.Contains(r.Stdout, "hello from the guest") {
		t.Errorf("the app's stdout did not reach rkt run's:\n%s", r)
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	hostKernel := unix.ByteSliceToString(uts.Release[:])
	if strings.Contains(r.Stdout, hostKernel+"\n") {
		t.Errorf("the app runs on the host's kernel %s, want the guest's:\n%s", hostKernel, r)
	}
	if !strings.Contains(r.Stdout, "-amd64\n") {
		t.Errorf("no guest kernel release in the output:\n%s", r)
	}
	if got := field(t, r.Stdout, "NoNewPrivs"); got != "1" {
		t.Errorf("NoNewPrivs = %q in the guest, want 1 (stage2's confinement)", got)
	}
	// rkt status reads the app's exit status the guest wrote into the
	// shared stage1 rootfs.
	st := c.MustRun(t, "status", "kvmrun")
	if !strings.Contains(st.Stdout, "app-kvm-run=7\n") || !strings.Contains(st.Stdout, "state=exited\n") {
		t.Errorf("rkt status does not show the app's exit code 7:\n%s", st)
	}
	b, err := os.ReadFile(filepath.Join(vol, "out"))
	if err != nil || string(b) != "written in the guest" {
		t.Errorf("host volume after the pod: %q, %v; want %q", b, err, "written in the guest")
	}
}
