package cgroups

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDeviceProgramLoads has the kernel's verifier check the program: it is
// loaded (not attached) as root.
func TestDeviceProgramShape(t *testing.T) {
	p := deviceProgram(standardDevices)
	if p[len(p)-1] != exit() || p[len(p)-2] != movImm(0, 0) {
		t.Fatalf("program does not end by denying")
	}
	for i, in := range p {
		if in.code == bpfJMP|bpfJNE|bpfK && (int(in.off) <= 0 || i+1+int(in.off) > len(p)) {
			t.Errorf("insn %d jumps out of the program: off %d", i, in.off)
		}
	}
}

// TestDeviceFilterEnforced attaches the program to a fresh cgroup2 cgroup
// (the hybrid host's unified mount works: the hook follows the task's
// cgroup2 membership) and runs a shell in it.
func TestDeviceFilterEnforced(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("requires root: run as root with go test ./stage1/cgroups")
	}
	l, err := Detect()
	if err != nil {
		t.Skip(err)
	}
	var mnt string
	if l.Mode == Unified {
		mnt = l.Hierarchies[0].Mountpoint
	} else if fi, err := os.Stat("/sys/fs/cgroup/unified/cgroup.procs"); err == nil && !fi.IsDir() {
		mnt = "/sys/fs/cgroup/unified"
	} else {
		t.Skip("no cgroup2 mount")
	}
	dir := filepath.Join(mnt, "rkt-devtest-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(dir)
	if err := attachDeviceFilter(dir); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	script := "echo x > /dev/null && echo null-ok; head -c1 /dev/urandom >/dev/null && echo urandom-ok; " +
		"mknod " + tmp + "/sda b 8 0 2>&1 || echo mknod-denied; head -c1 /dev/vda >/dev/null 2>&1 || echo disk-denied; " +
		"mknod " + tmp + "/null c 1 3 && echo mknod-null-ok"
	cmd := exec.Command("/bin/sh", "-c", "echo $$ > "+filepath.Join(dir, "cgroup.procs")+" && "+script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, want := range []string{"null-ok", "urandom-ok", "mknod-denied", "disk-denied", "mknod-null-ok"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
