package tests

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// Regression tests for docs/security.md: a hostile image (the tests/inspect
// probe, --try-escape) must not reach the host from a default `rkt run`.

var hostileUsers = []testutil.ACIOption{
	testutil.WithPasswd("root:x:0:0::/:/bin/sh\nuser:x:1000:1000::/:/bin/sh\n"),
	testutil.WithGroup("root:x:0:\nuser:x:1000:\n"),
	testutil.WithDir("/tmp", 0o1777, 0, 0),
}

// escapes returns the probe's ESCAPE_* lines and fails the test for any that
// is not CONFINED.
func wantConfined(t *testing.T, r testutil.Result, skip ...string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, l := range strings.Split(r.Stdout, "\n") {
		// On a terminal a line may start with echoed control characters.
		if i := strings.Index(l, "ESCAPE_"); i > 0 {
			l = l[i:]
		}
		l = strings.TrimRight(l, "\r")
		k, v, ok := strings.Cut(l, "=")
		if !ok || !strings.HasPrefix(k, "ESCAPE_") {
			continue
		}
		got[k] = v
		skipped := false
		for _, s := range skip {
			skipped = skipped || k == s
		}
		if !skipped && !strings.HasPrefix(v, "CONFINED") {
			t.Errorf("%s=%s", k, v)
		}
	}
	// The probe makes 12 attempts; fewer lines means it did not run them.
	if len(got) < 12 {
		t.Fatalf("the probe reported %d attempts, want 12\n%s", len(got), r)
	}
	return got
}

// noEscapeMarker fails if the probe's marker file exists anywhere under dir.
func noEscapeMarker(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "escaped-by-app" {
			t.Errorf("an app wrote %s", p)
		}
		return nil
	})
}

func TestEscapeProbe(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/hostile", hostileUsers...)
	for _, tc := range []struct {
		name string
		args []string
		// chroot is what the chroot escape should end with: root can
		// chroot (CAP_SYS_CHROOT is in appc's default set) but only ever
		// finds its own root; a non-root app cannot chroot at all.
		chroot  string
		nonRoot bool
	}{
		{"root", nil, "outside the subdirectory is only the app's own root", false},
		{"non-root", []string{"--user=1000", "--group=1000"}, "chroot: EPERM", true},
		{"private-users", []string{"--private-users"}, "outside the subdirectory is only the app's own root", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--net=host"}
			if tc.name == "private-users" {
				args = append(args, "--private-users")
			}
			args = append(args, aci)
			if tc.name != "private-users" {
				args = append(args, tc.args...)
			}
			r := runInsecure(t, c, append(args, "--", "--try-escape", "--print-caps", "--print-no-new-privs")...)
			wantExit(t, r, 0)
			got := wantConfined(t, r)
			if !strings.Contains(got["ESCAPE_CHROOT"], tc.chroot) {
				t.Errorf("ESCAPE_CHROOT=%s, want %q", got["ESCAPE_CHROOT"], tc.chroot)
			}
			if v := field(t, r.Stdout, "NoNewPrivs"); v != "1" {
				t.Errorf("NoNewPrivs = %s, want 1 by default", v)
			}
			if tc.nonRoot {
				for _, k := range []string{"CapEff", "CapPrm", "CapAmb", "CapInh"} {
					if v := field(t, r.Stdout, k); v != "0000000000000000" {
						t.Errorf("non-root app: %s = %s, want none", k, v)
					}
				}
			}
		})
	}
	noEscapeMarker(t, c.DataDir)
}

// A setuid-root binary in the image does not raise a non-root app's
// privileges: no_new_privs is on by default.
func TestSetuidInImage(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/suid", append(hostileUsers, testutil.WithInspectCopy("/suid-inspect", 0o4755))...)
	r := runInsecure(t, c, "--net=host", aci, "--user=1000", "--group=1000", "--exec=/suid-inspect", "--", "--print-user")
	wantExit(t, r, 0)
	if v := field(t, r.Stdout, "EUID"); v != "1000" {
		t.Errorf("setuid-root binary ran with EUID %s, want 1000", v)
	}
}

// TIOCSTI: a pod must not type into the terminal rkt was started from. The
// pod runs under a real pseudo-terminal (script(1)), and after `rkt run`
// exits, bash reads whatever is left in that terminal's input: an injected
// command would be there.
func TestTerminalInjection(t *testing.T) {
	testutil.RequireRoot(t)
	for _, tool := range []string{"script", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (util-linux / bash): %v", tool, err)
		}
	}
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/tty", hostileUsers...)
	for _, interactive := range []bool{false, true} {
		t.Run(fmt.Sprintf("interactive=%v", interactive), func(t *testing.T) {
			args := c.Args("--insecure-options=image", "run", "--net=host")
			if interactive {
				args = append(args, "--interactive")
			}
			args = append(args, aci, "--", "--try-escape", "--print-file=/proc/self/stat")
			line := c.Rkt
			for _, a := range args {
				line += " '" + a + "'"
			}
			line += `; echo RKT_EXIT=$?; bash -c 'read -t 2 l; echo "LEFTOVER=[$l]"'`
			cmd := exec.CommandContext(t.Context(), "script", "-qec", line, "/dev/null")
			cmd.WaitDelay = 10 * time.Second
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("script: %v\n%s", err, out)
			}
			text := strings.ReplaceAll(string(out), "\r", "")
			if !strings.Contains(text, "RKT_EXIT=0") {
				t.Fatalf("rkt run failed under a terminal\n%s", text)
			}
			if !strings.Contains(text, "LEFTOVER=[]") {
				t.Errorf("the pod typed into the caller's terminal\n%s", text)
			}
			for _, l := range strings.Split(text, "\n") {
				if l == "TIOCSTI-INJECTED" {
					t.Errorf("an injected command ran\n%s", text)
				}
			}
			r := testutil.Result{Stdout: text}
			if interactive {
				// The app's own terminal takes TIOCSTI (it types to
				// itself); the caller's never does, which LEFTOVER shows.
				wantConfined(t, r, "ESCAPE_TIOCSTI_STDIN", "ESCAPE_TIOCSTI_STDOUT", "ESCAPE_TIOCSTI_STDERR", "ESCAPE_TIOCSTI_DEVTTY", "ESCAPE_TIOCSTI_CONSOLE")
				return
			}
			wantConfined(t, r)
		})
	}
}

// The host runs stage1 entrypoints from the stage1 tree in the store, never
// from the pod's stage1 rootfs, which the pod's processes could write.
func TestHostNeverRunsPodFiles(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/sleeper")
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	p := c.Start(t, "--insecure-options=image", "run", "--net=host", "--uuid-file-save="+uuidFile, aci, "--", "--sleep=forever")
	defer p.Signal(os.Kill)
	uuid := waitUUID(t, uuidFile)
	c.MustRun(t, "status", "--wait-ready=30s", uuid)
	podDir := filepath.Join(c.DataDir, "pods", "run", uuid)
	marker := filepath.Join(t.TempDir(), "host-ran-pod-file")
	evil := "#!/bin/sh\ntouch " + marker + "\n"
	for _, e := range []string{"enter", "stop", "gc", "init"} {
		if err := os.WriteFile(filepath.Join(podDir, "stage1", "rootfs", e), []byte(evil), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c.Run(t, "enter", uuid, "/inspect", "--print-msg=entered")
	c.MustRun(t, "stop", uuid)
	r := p.Wait(t, time.Minute)
	if r.ExitCode != 0 && r.ExitCode != 143 {
		t.Errorf("pod did not stop cleanly through the store's stop entrypoint\n%s", r)
	}
	c.MustRun(t, "gc", "--grace-period=0s")
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the host executed an entrypoint the pod could have written")
	}
}

func waitUUID(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return strings.TrimSpace(string(b))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no UUID in %s", path)
	return ""
}
