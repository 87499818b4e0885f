package tests

import (
	"archive/tar"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
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
	// On a host with the group rkt, what it may read is 2750 (README,
	// "Non-root use"; TestGroupsNonRoot); nobody is not in it either way.
	_, groupErr := user.LookupGroup("rkt")
	for _, d := range []string{"cas", "cas/tree", "cas/blob", "cas/blob/sha512", "cas/tmp", "pods", "pods/run", "pods/prepared"} {
		fi, err := os.Stat(filepath.Join(c.DataDir, d))
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o700)
		if groupErr == nil && (d == "cas" || strings.HasPrefix(d, "pods")) {
			want = 0o750 | os.ModeSetgid
		}
		if got := fi.Mode() & (os.ModePerm | os.ModeSetgid); got != want {
			t.Errorf("%s: mode %v, want %v", d, got, want)
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

// statLine returns the uid= of inspect's STAT=path line.
func statUID(t *testing.T, out, path string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, "STAT="+path+" "); ok {
			for _, f := range strings.Fields(rest) {
				if v, ok := strings.CutPrefix(f, "uid="); ok {
					return v
				}
			}
		}
	}
	t.Fatalf("no STAT=%s line in:\n%s", path, out)
	return ""
}

// TestPrivateUsersPrivateDataDir runs --private-users pods with the data dir
// and its parent root-only (0700): the pod's root never walks the host path.
// What the app creates is the pod root's (uid 0 inside, 0 on disk in the
// upper dir: the pod's own IDs, not host-shifted ones), and an app running
// as uid 1000 works too.
func TestPrivateUsersPrivateDataDir(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	for _, d := range []string{filepath.Dir(c.DataDir), c.DataDir} {
		if err := os.Chmod(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	aci := inspectACI(t, "rkt-ng.test/userns-private", testutil.WithDir("/home/user", 0o755, 1000, 1000))
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	r := runInsecure(t, c, "--private-users", "--net=none", "--uuid-file-save="+uuidFile, aci, "--", "--print-user",
		"--write-file=/created", "--content=x", "--stat-file=/created")
	wantExit(t, r, 0)
	if got := field(t, r.Stdout, "UID"); got != "0" {
		t.Errorf("uid inside = %s, want 0", got)
	}
	if got := statUID(t, r.Stdout, "/created"); got != "0" {
		t.Errorf("/created owned by %s inside the pod, want 0", got)
	}
	uuid, err := os.ReadFile(uuidFile)
	if err != nil {
		t.Fatal(err)
	}
	ups, _ := filepath.Glob(filepath.Join(c.DataDir, "pods", "*", string(uuid), "overlay", "*", "upper", "*", "created"))
	if len(ups) != 1 {
		t.Fatalf("upper dir copy of /created: found %v, want one", ups)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(ups[0], &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 0 || st.Gid != 0 {
		t.Errorf("%s on disk: owner %d:%d, want 0:0 (the pod's IDs)", ups[0], st.Uid, st.Gid)
	}
	r = runInsecure(t, c, "--private-users", "--net=none", aci, "--user=1000", "--group=1000", "--", "--print-user",
		"--write-file=/home/user/f", "--content=x", "--stat-file=/home/user/f")
	wantExit(t, r, 0)
	if got := field(t, r.Stdout, "UID"); got != "1000" {
		t.Errorf("uid inside = %s, want 1000", got)
	}
	if got := statUID(t, r.Stdout, "/home/user/f"); got != "1000" {
		t.Errorf("/home/user/f owned by %s inside the pod, want 1000", got)
	}
	// The data dir stayed private.
	for _, d := range []string{c.DataDir, filepath.Join(c.DataDir, "pods"), filepath.Join(c.DataDir, "cas")} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, want mode 0700", d, fi.Mode())
		}
	}
}

// TestExportPrivateUsers exports the app of a --private-users pod, with the
// overlay and with a shifted copy: the ACI holds the pod's own owners (0,
// 1000), never the host-shifted ones.
func TestExportPrivateUsers(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/userns-export",
		testutil.WithDir("/home/user", 0o755, 1000, 1000),
		testutil.WithFileOwned("/home/user/owned", "x", 0o644, 1000, 1000))
	for _, mode := range []string{"overlay", "no-overlay"} {
		t.Run(mode, func(t *testing.T) {
			args := []string{"--private-users", "--net=none"}
			if mode == "no-overlay" {
				args = append(args, "--no-overlay")
			}
			uuidFile := filepath.Join(t.TempDir(), "uuid")
			args = append(args, "--uuid-file-save="+uuidFile, aci, "--", "--write-file=/created", "--content=x")
			wantExit(t, runInsecure(t, c, args...), 0)
			uuid, err := os.ReadFile(uuidFile)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "exported.aci")
			c.MustRun(t, "export", string(uuid), out)
			f, err := os.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			want := map[string][2]int{"rootfs/created": {0, 0}, "rootfs/home/user/": {1000, 1000}, "rootfs/home/user/owned": {1000, 1000}, "rootfs/inspect": {0, 0}}
			tr := tar.NewReader(f)
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if h.Uid >= 65536 || h.Gid >= 65536 {
					t.Errorf("%s: owner %d:%d, host-shifted", h.Name, h.Uid, h.Gid)
				}
				if w, ok := want[h.Name]; ok {
					if h.Uid != w[0] || h.Gid != w[1] {
						t.Errorf("%s: owner %d:%d, want %d:%d", h.Name, h.Uid, h.Gid, w[0], w[1])
					}
					delete(want, h.Name)
				}
			}
			if len(want) > 0 {
				t.Errorf("exported ACI lacks %v", want)
			}
		})
	}
}
