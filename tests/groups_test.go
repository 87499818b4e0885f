package tests

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// TestGroupsNonRoot reproduces rkt 1.30's model for non-root users
// (Documentation/packaging.md, dist/init/systemd/tmpfiles.d/rkt.conf, and
// ensureSuperuser in rkt/rkt.go): members of the group rkt read pod and image
// information (`rkt list`, `status`, `cat-manifest`, `image list`,
// `image cat-manifest`) through group-owned setgid directories, and every
// other command refuses a non-root user with exit 254 and rkt's "cannot run
// as unprivileged user". What the security model requires stays true: no
// setuid binary or device node of the store or of a pod is reachable by a
// member, and a user outside the group reads nothing. It creates the group
// and two users for the test and removes them.
func TestGroupsNonRoot(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "groupadd")
	testutil.RequireCommand(t, "useradd")
	if _, err := user.LookupGroup("rkt"); err == nil {
		t.Skip("requires a host without a group named rkt (the test creates and removes it); " +
			"if an interrupted run left it: groupdel rkt; userdel rktngmember; userdel rktngother")
	}
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	run("groupadd", "--system", "rkt")
	t.Cleanup(func() { exec.Command("groupdel", "rkt").Run() })
	member, other := "rktngmember", "rktngother"
	for _, u := range []string{member, other} {
		exec.Command("userdel", u).Run()
		args := []string{"--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", u}
		if u == member {
			args = append(args, "--groups", "rkt")
		}
		run("useradd", args...)
		t.Cleanup(func() { exec.Command("userdel", u).Run() })
	}
	cred := func(name string) *syscall.Credential {
		t.Helper()
		u, err := user.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		gids, err := u.GroupIds()
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		for _, g := range gids {
			n, _ := strconv.Atoi(g)
			c.Groups = append(c.Groups, uint32(n))
		}
		return c
	}
	memberCred, otherCred := cred(member), cred(other)
	grp, err := user.LookupGroup("rkt")
	if err != nil {
		t.Fatal(err)
	}
	rktGID, _ := strconv.Atoi(grp.Gid)
	if !containsGID(memberCred.Groups, rktGID) || containsGID(otherCred.Groups, rktGID) {
		t.Fatalf("group set up wrong: %s %v, %s %v (rkt is %d)", member, memberCred.Groups, other, otherCred.Groups, rktGID)
	}

	c := testutil.NewCtx(t)
	// The documented set-up: the data dir belongs to group rkt, setgid
	// (rkt's `chgrp rkt /var/lib/rkt; chmod 2750 /var/lib/rkt`); the
	// test's own temporary dirs above it are searchable.
	for d := filepath.Dir(c.DataDir); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(c.DataDir, 0, rktGID); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(c.DataDir, 0o750|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}

	aci := inspectACI(t, "rkt-ng.test/grouped",
		testutil.WithInspectCopy("/suid-inspect", 0o4755),
		testutil.WithDevice("/null", true, 1, 3, 0o666, 0, 0))
	id := strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", aci).Stdout)
	r := runInsecure(t, c, "--net=none", "--pod-name=done", aci, "--", "--print-msg=ran", "--exit-code=3")
	wantExit(t, r, 3)
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	p := c.Start(t, "--insecure-options=image", "run", "--net=none", "--pod-name=alive", "--uuid-file-save="+uuidFile, aci,
		"--", "--print-msg=up", "--sleep=1h")
	p.WaitOutput(t, "up", 30*time.Second)
	b, err := os.ReadFile(uuidFile)
	if err != nil {
		t.Fatal(err)
	}
	alive := strings.TrimSpace(string(b))

	as := func(t *testing.T, cr *syscall.Credential, args ...string) testutil.Result {
		t.Helper()
		cmd := c.CmdContext(t.Context(), args...)
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cr}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		t.Logf("run as uid %d: rkt %s", cr.Uid, strings.Join(args, " "))
		err := cmd.Run()
		if err != nil && cmd.ProcessState == nil {
			t.Fatalf("rkt %s: %v", strings.Join(args, " "), err)
		}
		return testutil.Result{Stdout: out.String(), Stderr: errb.String(), ExitCode: cmd.ProcessState.ExitCode()}
	}

	t.Run("member reads", func(t *testing.T) {
		r := as(t, memberCred, "list", "--no-legend")
		wantExit(t, r, 0)
		for _, want := range []string{alive[:8], "running", "exited"} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("rkt list as a member lacks %q\n%s", want, r)
			}
		}
		r = as(t, memberCred, "status", alive)
		wantExit(t, r, 0)
		if !strings.Contains(r.Stdout, "state=running") {
			t.Errorf("rkt status as a member:\n%s", r)
		}
		r = as(t, memberCred, "status", "done")
		wantExit(t, r, 0)
		if !strings.Contains(r.Stdout, "state=exited") {
			t.Errorf("rkt status of an exited pod as a member:\n%s", r)
		}
		t.Logf("rkt status of an exited pod as a member:\n%s", r)
		r = as(t, memberCred, "cat-manifest", alive)
		wantExit(t, r, 0)
		if !strings.Contains(r.Stdout, `"PodManifest"`) {
			t.Errorf("rkt cat-manifest as a member:\n%s", r)
		}
		r = as(t, memberCred, "image", "list", "--no-legend")
		wantExit(t, r, 0)
		if !strings.Contains(r.Stdout, "rkt-ng.test/grouped") {
			t.Errorf("rkt image list as a member:\n%s", r)
		}
		r = as(t, memberCred, "image", "cat-manifest", id)
		wantExit(t, r, 0)
		if !strings.Contains(r.Stdout, `"ImageManifest"`) {
			t.Errorf("rkt image cat-manifest as a member:\n%s", r)
		}
	})

	t.Run("refused to non-root", func(t *testing.T) {
		for _, args := range [][]string{
			{"--insecure-options=image", "run", "--net=none", aci},
			{"--insecure-options=image", "fetch", aci},
			{"--insecure-options=image", "prepare", aci},
			{"enter", alive, "/inspect"},
			{"stop", alive},
			{"rm", "done"},
			{"gc"},
			{"logs", alive},
			{"image", "rm", id},
			{"image", "gc"},
		} {
			for _, cr := range []*syscall.Credential{memberCred, otherCred} {
				r := as(t, cr, args...)
				wantExit(t, r, 254)
				oneLineError(t, r, "cannot run as unprivileged user")
			}
		}
	})

	t.Run("outsider reads nothing", func(t *testing.T) {
		for _, args := range [][]string{{"list"}, {"status", alive}, {"image", "list"}, {"cat-manifest", alive}} {
			r := as(t, otherCred, args...)
			wantExit(t, r, 254)
			if strings.Contains(r.Stdout, alive) || strings.Contains(r.Stdout, "grouped") {
				t.Errorf("a user outside group rkt read pod or image information:\n%s", r)
			}
		}
	})

	t.Run("no setuid binary reachable", func(t *testing.T) {
		found := dangerous(t, c.DataDir)
		if len(found) == 0 {
			t.Fatalf("no setuid file or device node under --dir: the check would mean nothing")
		}
		for _, f := range found {
			for _, cr := range []*syscall.Credential{memberCred, otherCred} {
				cmd := exec.Command("stat", f)
				cmd.Dir = "/"
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cr}
				if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "Permission denied") {
					t.Errorf("stat %s as uid %d: %v, want permission denied:\n%s", f, cr.Uid, err, out)
				}
				cmd = exec.Command(f, "--print-user")
				cmd.Dir = "/"
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cr}
				if out, err := cmd.CombinedOutput(); !errors.Is(err, syscall.EACCES) {
					t.Errorf("exec %s as uid %d: %v, want EACCES:\n%s", f, cr.Uid, err, out)
				}
			}
		}
		// The metadata service token of a running pod stays root's.
		tokens, _ := filepath.Glob(filepath.Join(c.DataDir, "pods", "run", alive, "mds-token"))
		if len(tokens) != 1 {
			t.Fatalf("no mds-token in the running pod's directory: the check would mean nothing")
		}
		cmd := exec.Command("cat", tokens[0])
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: memberCred}
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "Permission denied") {
			t.Errorf("cat %s as a member: %v, want permission denied:\n%s", tokens[0], err, out)
		}
		// What the group may read is group-owned and setgid.
		for _, d := range []string{"pods", "pods/run", "cas", "cas/images", "cas/manifest"} {
			var st syscall.Stat_t
			if err := syscall.Stat(filepath.Join(c.DataDir, d), &st); err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%o %d:%d", st.Mode&0o7777, st.Uid, st.Gid); got != fmt.Sprintf("2750 0:%d", rktGID) {
				t.Errorf("%s: mode and owner %s, want 2750 0:%d", d, got, rktGID)
			}
		}
		for _, d := range []string{"cas/tree", "cas/blob", "cas/layers", "cas/tmp", "cas/locks", "cas/remote"} {
			fi, err := os.Stat(filepath.Join(c.DataDir, d))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o700 {
				t.Errorf("%s: mode %o, want 700", d, fi.Mode().Perm())
			}
		}
	})

	p.Signal(syscall.SIGTERM)
	p.Wait(t, 30*time.Second)
}

func containsGID(gids []uint32, gid int) bool {
	for _, g := range gids {
		if int(g) == gid {
			return true
		}
	}
	return false
}
