package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// RequireRoot skips the test unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("requires root (uid=%d); run: sudo -E go test ./tests/...", os.Geteuid())
	}
}

// RequireKVM skips the test unless /dev/kvm can be opened read-write.
func RequireKVM(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("requires /dev/kvm (%v); run on a host with KVM enabled, as a user in the kvm group or root", err)
	}
	f.Close()
}

// debianPackages names the Debian package of the commands tests need.
var debianPackages = map[string]string{
	"busybox":   "busybox-static",
	"ip":        "iproute2",
	"iptables":  "iptables",
	"gpg":       "gnupg",
	"systemctl": "systemd",
}

// RequireCommand skips the test unless name is found in PATH, and returns its
// path.
func RequireCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		pkg := debianPackages[name]
		if pkg == "" {
			pkg = "the package providing " + name
		}
		t.Skipf("requires %s in PATH (%v); run: apt-get install %s", name, err, pkg)
	}
	return p
}
