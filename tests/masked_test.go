package tests

import (
	"os"
	"strings"
	"testing"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// TestMaskedPathsLookLikeRkt checks what a stat from inside an app shows of
// the masked kernel paths. rkt 1.30's stage1 hid them with systemd's
// InaccessiblePaths= (stage1/init/common/app.go: protectKernelHiddenDirs
// /sys/firmware, /sys/hypervisor, /sys/module, /sys/power and
// protectKernelHiddenPaths /proc/kcore, /proc/kallsyms, /proc/sched_debug,
// ...), which mounts an empty directory or an empty regular file of mode 0
// read-only over each: `stat /sys/firmware` shows d--------- root root, an
// empty directory; `stat /proc/keys` an empty regular file ----------,
// unreadable by a non-root app. --insecure-options=paths lifts it.
func TestMaskedPathsLookLikeRkt(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := testutil.NewACI(t, "rkt-ng.test/masked", testutil.WithInspect(), testutil.WithBusybox("sh", "ls", "cat", "wc", "echo", "touch"))
	// Paths of both kinds that every kernel here has (/proc/kcore and
	// /sys/hypervisor depend on the kernel's configuration).
	for _, p := range []string{"/sys/firmware", "/sys/module", "/proc/keys", "/proc/kallsyms"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("requires %s on the host: %v", p, err)
		}
	}
	script := `/inspect --stat-file=/sys/firmware --stat-file=/sys/module --stat-file=/proc/keys --stat-file=/proc/kallsyms
echo "entries=$(ls -A /sys/firmware | wc -l)"
echo "keys=$(cat /proc/keys 2>/dev/null | wc -c)"
cat /proc/keys >/dev/null 2>&1 && echo "keys-read=ok" || echo "keys-read=refused"
touch /sys/firmware/x 2>/dev/null && echo "write=ok" || echo "write=refused"`
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		r := runInsecure(t, c, append(append([]string{"--net=host"}, args...), "--exec=/bin/sh", "--", "-c", script)...)
		wantExit(t, r, 0)
		return r.String()
	}
	check := func(t *testing.T, out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w+"\n") {
				t.Errorf("output lacks %q\n%s", w, out)
			}
		}
	}
	rktLook := []string{
		"STAT=/sys/firmware type=dir mode=0000 uid=0 gid=0",
		"STAT=/sys/module type=dir mode=0000 uid=0 gid=0",
		"STAT=/proc/keys type=file mode=0000 uid=0 gid=0",
		"STAT=/proc/kallsyms type=file mode=0000 uid=0 gid=0",
		"entries=0", "write=refused",
	}
	t.Run("root", func(t *testing.T) {
		out := run(t, aci)
		// Root reads past mode 0 (CAP_DAC_OVERRIDE), and finds nothing.
		check(t, out, append(rktLook, "keys=0", "keys-read=ok")...)
	})
	t.Run("non-root", func(t *testing.T) {
		out := run(t, aci, "--user=1000", "--group=1000")
		check(t, out, append(rktLook, "keys=0", "keys-read=refused")...)
	})
	t.Run("insecure paths", func(t *testing.T) {
		r := c.Run(t, "--insecure-options=image,paths", "run", "--net=host", aci, "--exec=/bin/sh", "--", "-c", script)
		wantExit(t, r, 0)
		if strings.Contains(r.Stdout, "STAT=/sys/firmware type=dir mode=0000") {
			t.Errorf("--insecure-options=paths: /sys/firmware still masked\n%s", r)
		}
	})
}
