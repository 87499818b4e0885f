package tests

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// nobody is the unprivileged user the data directory must be closed to.
var nobody = &syscall.Credential{Uid: 65534, Gid: 65534, NoSetGroups: false, Groups: []uint32{}}

// asNobody runs name with args as uid/gid 65534 without supplementary groups.
func asNobody(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: nobody}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// dangerous lists the setuid/setgid files and device nodes under dir, as
// root sees them.
func dangerous(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			// proc and sys of a running pod are not ours to walk.
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if m := fi.Mode(); m&(fs.ModeSetuid|fs.ModeSetgid) != 0 && m.IsRegular() || m&fs.ModeDevice != 0 {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDataDirPrivate is the regression test for the store as a setuid
// launcher (the class of CVE-2021-41091): an image with a setuid-root binary
// and a device node, fetched, run, prepared (overlays mounted) and running,
// and no path under --dir lets user nobody reach either, even when --dir
// itself is world-searchable. Directories an older version left searchable
// are closed when rkt opens them.
func TestDataDirPrivate(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	// The worst case: everything above the internals is searchable.
	for d := c.DataDir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// An older rkt's layout: searchable store and pod state directories.
	for _, d := range []string{"cas/tree", "cas/blob/sha512", "pods/run", "pods/prepared"} {
		if err := os.MkdirAll(filepath.Join(c.DataDir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(c.DataDir, "cas"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(c.DataDir, "pods"), 0o711); err != nil {
		t.Fatal(err)
	}
	aci := inspectACI(t, "rkt-ng.test/setuid",
		testutil.WithInspectCopy("/suid-inspect", 0o4755),
		testutil.WithDevice("/null", true, 1, 3, 0o666, 0, 0))
	c.MustRun(t, "--insecure-options=image", "fetch", aci)
	r := runInsecure(t, c, "--net=none", aci, "--", "--print-msg=ran")
	wantExit(t, r, 0)
	for _, d := range []string{"cas", "cas/tree", "cas/blob", "cas/blob/sha512", "cas/tmp", "pods", "pods/run", "pods/prepared"} {
		fi, err := os.Stat(filepath.Join(c.DataDir, d))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %o, want 700", d, fi.Mode().Perm())
		}
	}
	// A prepared pod keeps its overlays mounted; a running one too.
	prep := c.MustRun(t, "--insecure-options=image", "prepare", aci)
	uuid := strings.TrimSpace(prep.Stdout)
	p := c.Start(t, "--insecure-options=image", "run", "--net=none", aci, "--", "--print-msg=up", "--sleep=1h")
	p.WaitOutput(t, "up", 30*time.Second)

	found := dangerous(t, c.DataDir)
	var inStore, inPods int
	for _, f := range found {
		switch {
		case strings.HasPrefix(f, filepath.Join(c.DataDir, "cas")+"/"):
			inStore++
		case strings.HasPrefix(f, filepath.Join(c.DataDir, "pods")+"/"):
			inPods++
		}
	}
	// The test means something only if the files are there.
	if inStore == 0 || inPods == 0 {
		t.Fatalf("setuid files and device nodes under --dir: %d in the store, %d in pods; want some in both:\n%s",
			inStore, inPods, strings.Join(found, "\n"))
	}
	// Everything nobody can see under --dir.
	out, _ := asNobody("find", c.DataDir)
	visible := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		visible[l] = true
	}
	for _, f := range found {
		if visible[f] {
			t.Errorf("user nobody can see %s", f)
		}
		if out, err := asNobody("stat", f); err == nil || !strings.Contains(out, "Permission denied") {
			t.Errorf("stat %s as nobody: %v, want permission denied:\n%s", f, err, out)
		}
		cmd := exec.Command(f, "--print-user")
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: nobody}
		if out, err := cmd.CombinedOutput(); !errors.Is(err, syscall.EACCES) {
			t.Errorf("exec %s as nobody: %v, want EACCES:\n%s", f, err, out)
		}
	}
	// Nothing setuid or a device node is among what nobody sees at all.
	for l := range visible {
		var st syscall.Stat_t
		if syscall.Lstat(l, &st) != nil {
			continue
		}
		if st.Mode&(syscall.S_ISUID|syscall.S_ISGID) != 0 && st.Mode&syscall.S_IFMT == syscall.S_IFREG ||
			st.Mode&syscall.S_IFMT == syscall.S_IFCHR || st.Mode&syscall.S_IFMT == syscall.S_IFBLK {
			t.Errorf("user nobody reaches %s (mode %o)", l, st.Mode)
		}
	}
	p.Signal(syscall.SIGTERM)
	p.Wait(t, 20*time.Second)
	c.MustRun(t, "rm", uuid)
}
