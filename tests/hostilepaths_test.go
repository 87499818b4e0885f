package tests

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// hostUntouched fails the test if anything was created in dir (which
// started empty) or is mounted on or under it.
func hostUntouched(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != dir {
			t.Errorf("a pod wrote the host path %s", p)
		}
		return nil
	})
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			t.Errorf("a pod mounted on the host path %s", f[4])
		}
	}
}

// TestHostileImageSymlinks runs images whose symlinks aim the files that
// rkt-ng writes or mounts into an app's rootfs (/etc/hosts,
// /etc/resolv.conf, a mount point, /dev, /tmp) at a host directory by
// absolute path. Each pod must either run with the path resolved inside its
// rootfs or be refused with one line; the host directory must stay empty
// and unmounted (issue 17, docs/security.md).
func TestHostileImageSymlinks(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	srcDir := t.TempDir() // a host volume's source, written through by the app
	for _, tc := range []struct {
		name string
		link string // the image path that is a symlink to the host dir
		args []string
		app  []string
		want string // what the pod must see in the file at link, if a file
	}{
		{name: "etc-hosts", link: "/etc/hosts", args: []string{"--hosts-entry=10.1.2.3=evil.example"}, want: "evil.example"},
		{name: "resolv-conf", link: "/etc/resolv.conf", args: []string{"--dns=192.0.2.53"}, want: "192.0.2.53"},
		{name: "mount-target", link: "/data", args: []string{"--volume=data,kind=empty"},
			app: []string{"--mount=volume=data,target=/data"}},
		{name: "host-volume-target", link: "/hv", args: []string{"--volume=hv,kind=host,source=" + srcDir},
			app: []string{"--mount=volume=hv,target=/hv"}},
		{name: "implicit-volume", link: "/vol"},
		{name: "dev", link: "/dev"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hostDir := t.TempDir()
			target := hostDir
			if strings.HasPrefix(tc.link, "/etc/") {
				target = filepath.Join(hostDir, filepath.Base(tc.link))
			}
			opts := []testutil.ACIOption{testutil.WithSymlink(tc.link, target)}
			if tc.name == "implicit-volume" {
				opts = append(opts, testutil.WithMountPoint("vol", "/vol", false))
			}
			aci := inspectACI(t, "rkt-ng.test/hostile-"+tc.name, opts...)
			args := append([]string{"--net=default"}, tc.args...)
			args = append(args, aci)
			args = append(args, tc.app...)
			if tc.want != "" {
				// The file rkt-ng wrote, seen from inside.
				args = append(args, "--", "--read-file="+tc.link, "--print-msg=ran")
			} else {
				// Write through the link from inside.
				args = append(args, "--", "--write-file="+tc.link+"/escaped-by-app", "--content=x", "--print-msg=ran")
			}
			r := runInsecure(t, c, args...)
			switch {
			case r.ExitCode == 254:
				oneLineError(t, r)
				t.Logf("refused: %s", strings.TrimSpace(r.Stderr))
			case r.ExitCode == 0 && strings.Contains(r.Stdout, "ran"):
				if !strings.Contains(r.Stdout, tc.want) {
					t.Errorf("the pod's %s lacks %q: %s", tc.link, tc.want, r)
				}
			default:
				t.Errorf("neither ran nor refused with one line: %s", r)
			}
			hostUntouched(t, hostDir)
			if tc.name == "host-volume-target" && r.ExitCode == 0 {
				// The volume was mounted at the in-root target.
				if _, err := os.Stat(filepath.Join(srcDir, "escaped-by-app")); err != nil {
					t.Errorf("the app's write through /hv did not reach the volume: %v", err)
				}
			}
			c.MustRun(t, "gc", "--grace-period=0s")
			hostUntouched(t, hostDir)
		})
	}
}
