package stage0

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/appc/spec/schema/types"
)

func isolators(t *testing.T, js string) types.Isolators {
	t.Helper()
	var isos types.Isolators
	if err := json.Unmarshal([]byte(js), &isos); err != nil {
		t.Fatalf("isolators %s: %v", js, err)
	}
	return isos
}

func TestConfineImageIsolators(t *testing.T) {
	oom := -500
	for _, tc := range []struct {
		name   string
		isos   string
		spec   AppSpec
		in     Insecure
		how    privilegeGrant
		refuse []string // words of the error; nil: accepted
	}{
		{name: "none", isos: `[]`},
		{name: "caps subset", isos: `[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_CHOWN","CAP_KILL"]}}]`},
		{name: "caps remove", isos: `[{"name":"os/linux/capabilities-remove-set","value":{"set":["CAP_CHOWN"]}}]`},
		{name: "caps beyond", isos: `[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_SYS_ADMIN","CAP_DAC_READ_SEARCH","CAP_CHOWN"]}}]`,
			refuse: []string{"app a:", "os/linux/capabilities-retain-set", "CAP_DAC_READ_SEARCH,CAP_SYS_ADMIN", "--caps-retain=CAP_CHOWN,CAP_DAC_READ_SEARCH,CAP_SYS_ADMIN"}},
		{name: "caps beyond, pod manifest", isos: `[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_SYS_ADMIN"]}}]`,
			how: grantByPodManifest, refuse: []string{"CAP_SYS_ADMIN", "apps[].app.isolators"}},
		{name: "caps beyond, flag given", isos: `[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_SYS_ADMIN"]}}]`,
			spec: AppSpec{CapsRetain: []string{"CAP_SYS_ADMIN"}}},
		{name: "caps beyond, insecure capabilities", isos: `[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_SYS_ADMIN"]}}]`,
			in: Insecure{Capabilities: true}},
		{name: "seccomp all", isos: `[{"name":"os/linux/seccomp-retain-set","value":{"set":["@appc.io/all"]}}]`,
			refuse: []string{"os/linux/seccomp-retain-set", "more", "--seccomp=mode=retain,@appc.io/all"}},
		{name: "seccomp one beyond", isos: `[{"name":"os/linux/seccomp-retain-set","value":{"set":["@rkt/default-whitelist","open_by_handle_at"]}}]`,
			refuse: []string{"allows open_by_handle_at beyond"}},
		{name: "seccomp subset", isos: `[{"name":"os/linux/seccomp-retain-set","value":{"set":["read","write"]}}]`},
		{name: "seccomp all, flag given", isos: `[{"name":"os/linux/seccomp-retain-set","value":{"set":["@appc.io/all"]}}]`,
			spec: AppSpec{Seccomp: "mode=retain,@appc.io/all"}},
		{name: "oom negative", isos: `[{"name":"os/linux/oom-score-adj","value":-1000}]`, refuse: []string{"-1000", "--oom-score-adj"}},
		{name: "oom negative, flag given", isos: `[{"name":"os/linux/oom-score-adj","value":-1000}]`, spec: AppSpec{OOMScoreAdj: &oom}},
		{name: "oom positive", isos: `[{"name":"os/linux/oom-score-adj","value":500}]`},
		{name: "memory", isos: `[{"name":"resource/memory","value":{"limit":"100M"}}]`},
		{name: "no_new_privs on", isos: `[{"name":"os/linux/no-new-privileges","value":true}]`},
		{name: "no_new_privs off", isos: `[{"name":"os/linux/no-new-privileges","value":false}]`,
			refuse: []string{"os/linux/no-new-privileges", "turns no_new_privs off"}},
		{name: "two at once", isos: `[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_SYS_ADMIN"]}},{"name":"os/linux/seccomp-retain-set","value":{"set":["@appc.io/all"]}}]`,
			refuse: []string{"CAP_SYS_ADMIN", "@appc.io/all"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := confineImageIsolators("a", isolators(t, tc.isos), tc.spec, tc.in, tc.how)
			if tc.refuse == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var pe *ImagePrivilegesError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *ImagePrivilegesError", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error has several lines: %q", err)
			}
			for _, w := range tc.refuse {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestConfineImageRemoveSet: an image's remove set narrows the default
// filter rather than allowing everything else.
func TestConfineImageRemoveSet(t *testing.T) {
	got, err := confineImageIsolators("a", isolators(t, `[{"name":"os/linux/seccomp-remove-set","value":{"set":["mkdir","mkdirat"],"errno":"ENOTSUP"}}]`), AppSpec{}, Insecure{}, grantByFlags)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d isolators, want 1", len(got))
	}
	v, ok := got[0].Value().(*types.LinuxSeccompRetainSet)
	if !ok {
		t.Fatalf("isolator %s is %T, want a retain set", got[0].Name, got[0].Value())
	}
	set := entries(v.Set())
	has := func(n string) bool {
		for _, s := range set {
			if s == n {
				return true
			}
		}
		return false
	}
	if has("mkdir") || has("mkdirat") || has("open_by_handle_at") || !has("read") {
		t.Errorf("narrowed set mkdir=%v mkdirat=%v open_by_handle_at=%v read=%v", has("mkdir"), has("mkdirat"), has("open_by_handle_at"), has("read"))
	}
	if string(v.Errno()) != "ENOTSUP" {
		t.Errorf("errno = %q, want ENOTSUP", v.Errno())
	}
}
