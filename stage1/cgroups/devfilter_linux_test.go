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
	// Each denial is checked only where the same operation works outside
	// the filtered cgroup (a sandbox may deny it already): otherwise the
	// assertion would pass whether or not the filter works.
	control := exec.Command("/bin/sh", "-c", "mknod "+tmp+"/ctl b 8 0 && echo ctl-mknod-ok")
	ctl, _ := control.CombinedOutput()
	os.Remove(filepath.Join(tmp, "ctl"))
	mknodWorks := strings.Contains(string(ctl), "ctl-mknod-ok")
	disk := readableBlockDevice()
	script := "echo x > /dev/null && echo null-ok; head -c1 /dev/urandom >/dev/null && echo urandom-ok; " +
		"mknod " + tmp + "/null c 1 3 && echo mknod-null-ok; "
	want := []string{"null-ok", "urandom-ok", "mknod-null-ok"}
	if mknodWorks {
		script += "mknod " + tmp + "/sda b 8 0 2>&1 || echo mknod-denied; "
		want = append(want, "mknod-denied")
	} else {
		t.Log("mknod of a block device fails outside the filter too: not checked")
	}
	if disk != "" {
		script += "head -c1 " + disk + " >/dev/null 2>&1 || echo disk-denied; "
		want = append(want, "disk-denied")
	} else {
		t.Log("no block device readable outside the filter: reading one is not checked")
	}
	cmd := exec.Command("/bin/sh", "-c", "echo $$ > "+filepath.Join(dir, "cgroup.procs")+" && "+script+"true")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, w := range want {
		if !strings.Contains(string(out), w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// readableBlockDevice returns a block device node that this process can
// read, from /proc/partitions, or "".
func readableBlockDevice() string {
	b, err := os.ReadFile("/proc/partitions")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || f[0] == "major" {
			continue
		}
		p := "/dev/" + f[3]
		if fi, err := os.Stat(p); err != nil || fi.Mode()&os.ModeDevice == 0 || fi.Mode()&os.ModeCharDevice != 0 {
			continue
		}
		if f, err := os.Open(p); err == nil {
			buf := make([]byte, 1)
			_, rerr := f.Read(buf)
			f.Close()
			if rerr == nil {
				return p
			}
		}
	}
	return ""
}
