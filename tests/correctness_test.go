package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// Scenarios where rkt-ng gave wrong results that no error reported.

// A mount with an empty source anywhere on the host (mount -t tmpfs "" /x)
// must not stop pods from starting: mountinfo has an empty field then.
func TestHostMountWithEmptySource(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	dir := filepath.Join(t.TempDir(), "empty-source")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs with an empty source: %v", err)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	aci := inspectACI(t, "rkt-ng.test/emptysrc")
	r := runInsecure(t, c, "--net=host", aci, "--memory=64Mi", "--", "--print-msg=started", "--print-memorylimit")
	wantExit(t, r, 0)
	if got := field(t, r.Stdout, "MEMORY_LIMIT"); got != "67108864" {
		t.Errorf("MEMORY_LIMIT = %s, want 67108864", got)
	}
}

// Apps get /etc/hostname and /etc/mtab (a symlink to /proc/self/mounts), as
// rkt gave them and as many programs expect.
func TestHostnameAndMtabFiles(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/etcfiles")
	r := runInsecure(t, c, "--net=host", "--hostname=podhost", aci, "--", "--read-file=/etc/hostname", "--read-file=/etc/mtab")
	wantExit(t, r, 0)
	if !strings.HasPrefix(r.Stdout, "podhost\n") {
		t.Errorf("/etc/hostname does not hold the pod's hostname\n%s", r)
	}
	if !strings.Contains(r.Stdout, "proc /proc proc") {
		t.Errorf("/etc/mtab does not show the app's mounts\n%s", r)
	}
	// An image's own /etc/mtab is kept.
	own := inspectACI(t, "rkt-ng.test/ownmtab", testutil.WithFile("/etc/mtab", "image mtab\n", 0o644))
	r = runInsecure(t, c, "--net=host", own, "--", "--read-file=/etc/mtab")
	wantExit(t, r, 0)
	if r.Stdout != "image mtab\n" {
		t.Errorf("the image's /etc/mtab was replaced\n%s", r)
	}
}

// An image mount point that no volume satisfies gets an empty volume that
// starts as a copy of the image's files there (Docker VOLUME semantics, as
// in rkt), instead of an empty directory hiding them.
func TestImplicitVolumeKeepsImageContent(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/seeded",
		testutil.WithFile("/data/seed.txt", "from the image\n", 0o640),
		testutil.WithSymlink("/data/escape", "/etc"),
		testutil.WithMountPoint("data", "/data", false))
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	r := runInsecure(t, c, "--net=host", "--uuid-file-save="+uuidFile, aci, "--",
		"--read-file=/data/seed.txt", "--stat-file=/data/seed.txt", "--write-file=/data/new.txt", "--content=written")
	wantExit(t, r, 0)
	if !strings.HasPrefix(r.Stdout, "from the image\n") {
		t.Errorf("the image's file under the mount point is gone\n%s", r)
	}
	if !strings.Contains(r.Stdout, "STAT=/data/seed.txt type=file mode=0640") {
		t.Errorf("the seeded file lost its mode\n%s", r)
	}
	uuid := waitUUID(t, uuidFile)
	vol := filepath.Join(c.DataDir, "pods", "exited-garbage", uuid, "sharedVolumes", "seeded-data")
	if _, err := os.Stat(vol); err != nil {
		vol = filepath.Join(c.DataDir, "pods", "run", uuid, "sharedVolumes", "seeded-data")
	}
	if b, err := os.ReadFile(filepath.Join(vol, "new.txt")); err != nil || string(b) != "written" {
		t.Errorf("the app's write is not in the volume %s: %q, %v", vol, b, err)
	}
	if fi, err := os.Lstat(filepath.Join(vol, "escape")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the image's symlink was not copied as a symlink: %v", err)
	}
	// A volume the user declared is not seeded: it is what they asked for.
	r = runInsecure(t, c, "--net=host", "--volume=data,kind=empty", aci, "--", "--print-file=/data/seed.txt")
	wantExit(t, r, 0)
	if strings.Contains(r.Stdout, "from the image") {
		t.Errorf("a declared empty volume was seeded from the image\n%s", r)
	}
}

// An app stopped because another failed keeps the status of its stop, and
// `rkt status` says that rkt stopped it.
func TestStoppedAppStatus(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	a := inspectACI(t, "rkt-ng.test/a")
	b := inspectACI(t, "rkt-ng.test/b")
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	r := runInsecure(t, c, "--net=host", "--uuid-file-save="+uuidFile, a, "--", "--sleep=1h", "---", b, "--", "--sleep=100ms", "--exit-code=3")
	wantExit(t, r, 3)
	st := c.MustRun(t, "status", waitUUID(t, uuidFile))
	for _, want := range []string{"app-b=3\n", "app-a=143\n", "app-a-stopped-by=rkt\n"} {
		if !strings.Contains(st.Stdout, want) {
			t.Errorf("rkt status lacks %q\n%s", strings.TrimSpace(want), st)
		}
	}
	if strings.Contains(st.Stdout, "app-b-stopped-by") {
		t.Errorf("the failed app is reported as stopped by rkt\n%s", st)
	}
}

// An image whose /etc/passwd and /etc/group lack root (or that has none)
// still runs as user and group root: uid/gid 0 and the names root always
// resolve.
func TestRootWithoutPasswdEntry(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	bare := inspectACI(t, "rkt-ng.test/nopasswd", testutil.WithUser("root", "root"))
	other := inspectACI(t, "rkt-ng.test/norootentry", testutil.WithUser("root", "root"),
		testutil.WithPasswd("app:x:1000:1000::/:/bin/sh\n"), testutil.WithGroup("app:x:1000:\n"))
	for _, aci := range []string{bare, other} {
		r := runInsecure(t, c, "--net=host", aci, "--", "--print-user", "--print-env=HOME")
		wantExit(t, r, 0)
		if field(t, r.Stdout, "UID") != "0" || field(t, r.Stdout, "GID") != "0" {
			t.Errorf("not running as root\n%s", r)
		}
		if field(t, r.Stdout, "HOME") != "/root" {
			t.Errorf("HOME of root without a passwd entry\n%s", r)
		}
		r = runInsecure(t, c, "--net=host", aci, "--user=root", "--group=root", "--", "--print-user")
		wantExit(t, r, 0)
	}
}

// --ipc=private (the default, auto) gives the pod its own IPC namespace;
// --ipc=parent shares rkt's, as in rkt; anything else is refused.
func TestIPCFlag(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/ipc")
	host, err := os.Readlink("/proc/self/ns/ipc")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		flag string
		same bool
	}{{"", false}, {"--ipc=auto", false}, {"--ipc=private", false}, {"--ipc=parent", true}} {
		args := []string{"--net=host"}
		if tc.flag != "" {
			args = append(args, tc.flag)
		}
		r := runInsecure(t, c, append(args, aci, "--", "--print-ipcns")...)
		wantExit(t, r, 0)
		if got := field(t, r.Stdout, "IPCNS"); (got == host) != tc.same {
			t.Errorf("%q: pod IPC namespace %s, host %s", tc.flag, got, host)
		}
	}
	r := runInsecure(t, c, "--net=host", "--ipc=bogus", aci)
	wantExit(t, r, 254)
	oneLineError(t, r, "--ipc=bogus")
}
