package ocibundle

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/appc/spec/schema"

	"github.com/rkt-ng/rkt/stage2"
	"github.com/rkt-ng/rkt/stage2/seccomp"
)

func manifest(t *testing.T, app string) *schema.ImageManifest {
	t.Helper()
	var im schema.ImageManifest
	js := `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/web/server","app":` + app + `}`
	if err := json.Unmarshal([]byte(js), &im); err != nil {
		t.Fatal(err)
	}
	return &im
}

func rootfs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nweb:x:33:33::/srv:/bin/false\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "etc/group"), []byte("root:x:0:\nweb:x:33:\n"), 0o644)
	return dir
}

func TestConfigDefaults(t *testing.T) {
	im := manifest(t, `{"exec":["/bin/server","-v"],"user":"web","group":"web","environment":[{"name":"FOO","value":"1"}]}`)
	s, err := Config(Input{Image: im, ImageID: "sha512-x", Rootfs: rootfs(t)})
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != Version || s.Root.Path != "rootfs" || s.Hostname != "server" {
		t.Errorf("version %q root %q hostname %q", s.Version, s.Root.Path, s.Hostname)
	}
	p := s.Process
	if !slices.Equal(p.Args, []string{"/bin/server", "-v"}) || p.Cwd != "/" || p.User.UID != 33 || p.User.GID != 33 || !p.NoNewPrivileges {
		t.Errorf("process %+v", p)
	}
	env := strings.Join(p.Env, "\n")
	for _, kv := range []string{"PATH=/usr/local/sbin:", "FOO=1", "HOME=/srv", "USER=web", "AC_APP_NAME=server", "container=rkt"} {
		if !strings.Contains(env, kv) {
			t.Errorf("env lacks %s:\n%s", kv, env)
		}
	}
	// A non-root user without a retain set is only bounded.
	c := p.Capabilities
	if len(c.Bounding) != 14 || len(c.Effective)+len(c.Permitted)+len(c.Inheritable)+len(c.Ambient) != 0 {
		t.Errorf("capabilities %+v", c)
	}
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != "SCMP_ACT_KILL_PROCESS" || !slices.Contains(s.Linux.Seccomp.Syscalls[0].Names, "read") {
		t.Errorf("seccomp %+v", s.Linux.Seccomp)
	}
	if !slices.Contains(s.Linux.MaskedPaths, "/proc/kcore") || !slices.Contains(s.Linux.ReadonlyPaths, "/proc/sys") {
		t.Errorf("masked %q read-only %q", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if r := s.Linux.Resources; r == nil || r.Memory != nil || r.CPU != nil {
		t.Errorf("resources %+v", r)
	}
}

func TestConfigIsolators(t *testing.T) {
	im := manifest(t, `{"exec":["/bin/server"],"user":"0","group":"0","isolators":[
{"name":"resource/memory","value":{"limit":"128Mi"}},
{"name":"resource/cpu","value":{"limit":"500m"}},
{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_NET_BIND_SERVICE"]}},
{"name":"os/linux/oom-score-adj","value":100}]}`)
	s, err := Config(Input{Image: im, Rootfs: rootfs(t)})
	if err != nil {
		t.Fatal(err)
	}
	r := s.Linux.Resources
	if r.Memory == nil || *r.Memory.Limit != 128<<20 || r.CPU == nil || *r.CPU.Quota != 50000 || *r.CPU.Period != 100000 {
		t.Errorf("resources %+v %+v", r.Memory, r.CPU)
	}
	c := s.Process.Capabilities
	want := []string{"CAP_NET_BIND_SERVICE"}
	if !slices.Equal(c.Bounding, want) || !slices.Equal(c.Effective, want) || len(c.Ambient) != 0 {
		t.Errorf("root with a retain set: %+v", c)
	}
	if s.Process.OOMScoreAdj == nil || *s.Process.OOMScoreAdj != 100 {
		t.Errorf("oom score %v", s.Process.OOMScoreAdj)
	}
}

func TestConfigRefused(t *testing.T) {
	for _, tc := range []struct{ app, want string }{
		{`{"exec":["/x"],"user":"0","group":"0","isolators":[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_SYS_ADMIN"]}}]}`, "os/linux/capabilities-retain-set"},
		{`{"exec":["/x"],"user":"0","group":"0","isolators":[{"name":"os/linux/no-new-privileges","value":false}]}`, "os/linux/no-new-privileges=false"},
		{`{"exec":["/x"],"user":"nobody","group":"0"}`, "nobody"},
	} {
		_, err := Config(Input{Image: manifest(t, tc.app), Rootfs: rootfs(t)})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "example.com/web/server") {
			t.Errorf("%s: error %v, want one naming %s and the image", tc.app, err, tc.want)
		}
	}
	im := manifest(t, `{"exec":["/x"],"user":"0","group":"0"}`)
	im.App = nil
	if _, err := Config(Input{Image: im, Rootfs: rootfs(t)}); err == nil || !strings.Contains(err.Error(), "no app") {
		t.Errorf("image without app: %v", err)
	}
}

func TestSeccompProfile(t *testing.T) {
	if p, err := seccompProfile(nil); p != nil || err != nil {
		t.Errorf("nil set: %+v %v", p, err)
	}
	if p, err := seccompProfile(&stage2.Seccomp{Retain: true, Syscalls: []string{seccomp.GroupAll}}); p != nil || err != nil {
		t.Errorf("retain @all: %+v %v", p, err)
	}
	// Retain: the allowed list is Allowed's, the rest fails with the errno.
	p, err := seccompProfile(&stage2.Seccomp{Retain: true, Syscalls: []string{"read", "openat"}, Errno: "ENOTSUP"})
	if err != nil {
		t.Fatal(err)
	}
	allowed, _ := seccomp.Allowed(seccomp.Retain, []string{"read", "openat"})
	if p.DefaultAction != "SCMP_ACT_ERRNO" || p.DefaultErrnoRet == nil || *p.DefaultErrnoRet != 95 ||
		!slices.Equal(p.Syscalls[0].Names, allowed) || p.Syscalls[0].Action != "SCMP_ACT_ALLOW" {
		t.Errorf("retain profile %+v", p)
	}
	if last := p.Syscalls[len(p.Syscalls)-1]; last.Names[0] != "clone3" || *last.ErrnoRet != 38 {
		t.Errorf("clone3 is not ENOSYS: %+v", last)
	}
	// Remove: only the set is blocked, and never an essential syscall.
	p, err = seccompProfile(&stage2.Seccomp{Syscalls: []string{"mkdir", "mkdirat"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.DefaultAction != "SCMP_ACT_ALLOW" || len(p.Syscalls) != 1 || !slices.Equal(p.Syscalls[0].Names, []string{"mkdir", "mkdirat"}) ||
		p.Syscalls[0].Action != "SCMP_ACT_KILL_PROCESS" {
		t.Errorf("remove profile %+v", p)
	}
	p, err = seccompProfile(&stage2.Seccomp{Syscalls: []string{seccomp.GroupAll}, Errno: "EPERM"})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range seccomp.Essential() {
		for _, sc := range p.Syscalls {
			if sc.Action != "SCMP_ACT_ALLOW" && slices.Contains(sc.Names, e) {
				t.Errorf("remove @all blocks essential %s", e)
			}
		}
	}
	for _, bad := range []*stage2.Seccomp{
		{Retain: true, Syscalls: []string{"no_such_call"}},
		{Syscalls: []string{"mkdir"}, Errno: "ENOPE"},
	} {
		if _, err := seccompProfile(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestCapabilitiesRules(t *testing.T) {
	set := []string{"CAP_KILL"}
	for _, tc := range []struct {
		p                  stage2.Proc
		eff, inh, prm, amb int
	}{
		{stage2.Proc{UID: 0, Caps: set}, 1, 1, 1, 0},
		{stage2.Proc{UID: 5, Caps: set}, 0, 0, 0, 0},
		{stage2.Proc{UID: 5, Caps: set, CapsRetained: true}, 1, 1, 1, 1},
		{stage2.Proc{UID: 0, Caps: []string{}}, 0, 0, 0, 0},
	} {
		c := capabilities(tc.p)
		if len(c.Bounding) != len(tc.p.Caps) || len(c.Effective) != tc.eff || len(c.Inheritable) != tc.inh ||
			len(c.Permitted) != tc.prm || len(c.Ambient) != tc.amb {
			t.Errorf("uid %d retained %v: %+v", tc.p.UID, tc.p.CapsRetained, c)
		}
	}
	b, _ := json.Marshal(capabilities(stage2.Proc{UID: 5, Caps: set}))
	if !strings.Contains(string(b), `"ambient":[]`) {
		t.Errorf("empty sets must be written: %s", b)
	}
}
