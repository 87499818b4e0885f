package podspec

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/appc/spec/schema/types"
	"golang.org/x/sys/unix"
)

// rootfs makes an image rootfs whose /etc is filled by setup.
func rootfs(t *testing.T, setup func(etc string)) string {
	t.Helper()
	root := t.TempDir()
	etc := filepath.Join(root, "etc")
	if err := os.Mkdir(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	setup(etc)
	return root
}

func TestResolveUserHostileDB(t *testing.T) {
	t.Parallel()
	// A host file the symlinks below aim at.
	host := filepath.Join(t.TempDir(), "passwd")
	os.WriteFile(host, []byte("someone:x:4242:4242::/:/bin/sh\n"), 0o644)
	for _, tc := range []struct {
		name  string
		setup func(etc string)
		want  string // error substring; "" means success
		uid   uint32
	}{
		{"regular", func(etc string) {
			os.WriteFile(filepath.Join(etc, "passwd"), []byte("someone:x:1000:1000::/home:/bin/sh\n"), 0o644)
		}, "", 1000},
		{"fifo", func(etc string) { unix.Mkfifo(filepath.Join(etc, "passwd"), 0o644) }, "/etc/passwd is not a regular file (a FIFO)", 0},
		{"directory", func(etc string) { os.Mkdir(filepath.Join(etc, "passwd"), 0o755) }, "not a regular file (a directory)", 0},
		{"symlink to host", func(etc string) { os.Symlink(host, filepath.Join(etc, "passwd")) }, "is a symlink", 0},
		{"relative symlink out", func(etc string) {
			os.Symlink("../../../../../../../../.."+host, filepath.Join(etc, "passwd"))
		}, "is a symlink", 0},
		{"too big", func(etc string) {
			os.WriteFile(filepath.Join(etc, "passwd"), []byte(strings.Repeat("#\n", maxDB)), 0o644)
		}, "more than", 0},
		{"missing", func(etc string) {}, `user "someone" not found`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := rootfs(t, tc.setup)
			done := make(chan struct{})
			var u User
			var err error
			go func() {
				defer close(done)
				u, err = ResolveUser(root, "someone", "0")
			}()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("ResolveUser hangs")
			}
			if tc.want == "" {
				if err != nil || u.UID != tc.uid {
					t.Fatalf("ResolveUser = %+v, %v; want uid %d", u, err, tc.uid)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ResolveUser error = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestStatInStaysInRoot: a user given as a path resolves symlinks inside
// the rootfs only.
func TestStatInStaysInRoot(t *testing.T) {
	t.Parallel()
	root := rootfs(t, func(etc string) {
		os.Symlink("/etc", filepath.Join(etc, "loop"))
	})
	if _, err := statIn(root, "/etc/loop/loop/loop"); err != nil {
		t.Errorf("in-root symlink: %v", err)
	}
	if _, err := statIn(root, "/proc/self/root/etc"); err == nil {
		t.Errorf("reached /proc through the rootfs")
	}
}

// FuzzResolveUser feeds the image's /etc/passwd and /etc/group, both
// untrusted, to ResolveUser; it must return, not panic.
func FuzzResolveUser(f *testing.F) {
	f.Add("root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n", "staff:x:50:\n", "alice", "staff")
	f.Add("alice:x\n::::::\n#\n", "staff\n", "alice", "50")
	f.Add("a:x:99999999999:0::/:/bin/sh\n", "g:x:-1:\n", "a", "g")
	f.Fuzz(func(t *testing.T, passwd, group, user, grp string) {
		if len(passwd) > 4096 || len(group) > 4096 || user == "" || grp == "" || strings.HasPrefix(user, "/") || strings.HasPrefix(grp, "/") {
			return
		}
		root := rootfs(t, func(etc string) {
			os.WriteFile(filepath.Join(etc, "passwd"), []byte(passwd), 0o644)
			os.WriteFile(filepath.Join(etc, "group"), []byte(group), 0o644)
		})
		ResolveUser(root, user, grp)
	})
}

// root and uid/gid 0 resolve whatever the image's passwd and group hold.
func TestResolveRootWithoutEntries(t *testing.T) {
	t.Parallel()
	for _, setup := range []func(etc string){
		func(etc string) {},
		func(etc string) {
			os.WriteFile(filepath.Join(etc, "passwd"), []byte("app:x:1000:1000::/:/bin/sh\n"), 0o644)
			os.WriteFile(filepath.Join(etc, "group"), []byte("app:x:1000:\n"), 0o644)
		},
	} {
		root := rootfs(t, setup)
		for _, ug := range [][2]string{{"root", "root"}, {"0", "0"}, {"root", "0"}} {
			u, err := ResolveUser(root, ug[0], ug[1])
			if err != nil {
				t.Errorf("ResolveUser(%q, %q): %v", ug[0], ug[1], err)
				continue
			}
			if u.UID != 0 || u.GID != 0 || u.Name != "root" || u.Home != "/root" {
				t.Errorf("ResolveUser(%q, %q) = %+v, want root", ug[0], ug[1], u)
			}
		}
		if _, err := ResolveUser(root, "nobody-here", "root"); err == nil {
			t.Error("an unknown user resolved")
		}
	}
}

// The environment is built in one fixed order, so that the same app gets
// byte-identical envp on every start (a map range gave the passwd-derived
// variables a random order).
func TestEnvironmentOrder(t *testing.T) {
	u := User{Name: "app", Home: "/home/app", Shell: "/bin/sh"}
	env := types.Environment{{Name: "A", Value: "1"}}
	want := []string{"PATH=" + DefaultPath, "A=1", "HOME=/home/app", "USER=app", "LOGNAME=app", "SHELL=/bin/sh", "AC_APP_NAME=web", "container=rkt", "X=2"}
	for i := 0; i < 20; i++ {
		got := Environment("web", env, u, []string{"X=2"})
		if !slices.Equal(got, want) {
			t.Fatalf("Environment = %q, want %q", got, want)
		}
	}
	got := Environment("web", types.Environment{{Name: "HOME", Value: "/data"}}, u, nil)
	if got[1] != "HOME=/data" || slices.Contains(got, "HOME=/home/app") {
		t.Fatalf("an image's HOME must win over passwd's: %q", got)
	}
}
