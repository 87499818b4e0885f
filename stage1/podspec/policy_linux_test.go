package podspec

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/appc/spec/schema/types"

	"github.com/rkt-ng/rkt/stage1"
)

func isolators(t *testing.T, js string) types.Isolators {
	t.Helper()
	var isos types.Isolators
	if err := json.Unmarshal([]byte(js), &isos); err != nil {
		t.Fatalf("isolators %s: %v", js, err)
	}
	return isos
}

func TestConfineImage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		isos   string
		o      stage1.AppOptions
		in     Insecure
		refuse []string // words of the error; nil: accepted
	}{
		{name: "none", isos: `[]`},
		{name: "caps subset", isos: `[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_CHOWN","CAP_KILL"]}}]`},
		{name: "caps remove", isos: `[{"name":"os/linux/capabilities-remove-set","value":{"set":["CAP_CHOWN"]}}]`},
		{name: "caps beyond", isos: `[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_SYS_ADMIN","CAP_DAC_READ_SEARCH","CAP_CHOWN"]}}]`,
			refuse: []string{"app a:", "os/linux/capabilities-retain-set", "CAP_DAC_READ_SEARCH,CAP_SYS_ADMIN", "--caps-retain=CAP_CHOWN,CAP_DAC_READ_SEARCH,CAP_SYS_ADMIN"}},
		{name: "caps beyond, pod manifest", isos: `[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_SYS_ADMIN"]}}]`,
			o: stage1.AppOptions{GrantedBy: stage1.GrantedByPodManifest}, refuse: []string{"CAP_SYS_ADMIN", "apps[].app.isolators"}},
		{name: "caps beyond, flag given", isos: `[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_SYS_ADMIN"]}}]`,
			o: stage1.AppOptions{UserIsolators: []string{"os/linux/capabilities-retain-set", "os/linux/capabilities-remove-set"}}},
		{name: "caps beyond, insecure capabilities", isos: `[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_SYS_ADMIN"]}}]`,
			in: Insecure{Capabilities: true}},
		{name: "seccomp all", isos: `[{"name":"os/linux/seccomp-retain-set","value":{"set":["@appc.io/all"]}}]`,
			refuse: []string{"os/linux/seccomp-retain-set", "more", "--seccomp=mode=retain,@appc.io/all"}},
		{name: "seccomp one beyond", isos: `[{"name":"os/linux/seccomp-retain-set","value":{"set":["@rkt/default-whitelist","open_by_handle_at"]}}]`,
			refuse: []string{"allows open_by_handle_at beyond"}},
		{name: "seccomp subset", isos: `[{"name":"os/linux/seccomp-retain-set","value":{"set":["read","write"]}}]`},
		{name: "seccomp all, flag given", isos: `[{"name":"os/linux/seccomp-retain-set","value":{"set":["@appc.io/all"]}}]`,
			o: stage1.AppOptions{UserIsolators: []string{"os/linux/seccomp-retain-set", "os/linux/seccomp-remove-set"}}},
		{name: "oom negative", isos: `[{"name":"os/linux/oom-score-adj","value":-1000}]`, refuse: []string{"-1000", "--oom-score-adj"}},
		{name: "oom negative, flag given", isos: `[{"name":"os/linux/oom-score-adj","value":-1000}]`, o: stage1.AppOptions{UserIsolators: []string{"os/linux/oom-score-adj"}}},
		{name: "oom positive", isos: `[{"name":"os/linux/oom-score-adj","value":500}]`},
		{name: "memory", isos: `[{"name":"resource/memory","value":{"limit":"100M"}}]`},
		{name: "no_new_privs on", isos: `[{"name":"os/linux/no-new-privileges","value":true}]`},
		{name: "no_new_privs off", isos: `[{"name":"os/linux/no-new-privileges","value":false}]`,
			refuse: []string{"os/linux/no-new-privileges", "turns no_new_privs off"}},
		{name: "user's pod manifest app", isos: `[{"name":"os/linux/no-new-privileges","value":false},{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_SYS_ADMIN"]}}]`,
			o: stage1.AppOptions{GrantedBy: stage1.GrantedByPodManifest, UserIsolators: []string{"os/linux/no-new-privileges", "os/linux/capabilities-retain-set"}}},
		{name: "only the named kind is the user's", isos: `[{"name":"os/linux/oom-score-adj","value":-1000},{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_SYS_ADMIN"]}}]`,
			o: stage1.AppOptions{UserIsolators: []string{"os/linux/oom-score-adj"}}, refuse: []string{"CAP_SYS_ADMIN", "--caps-retain"}},
		{name: "two at once", isos: `[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_SYS_ADMIN"]}},{"name":"os/linux/seccomp-retain-set","value":{"set":["@appc.io/all"]}}]`,
			refuse: []string{"CAP_SYS_ADMIN", "@appc.io/all"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ConfineImage("a", isolators(t, tc.isos), tc.o, tc.in)
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
	got, err := ConfineImage("a", isolators(t, `[{"name":"os/linux/seccomp-remove-set","value":{"set":["mkdir","mkdirat"],"errno":"ENOTSUP"}}]`), stage1.AppOptions{}, Insecure{})
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
	set := syscallNames(v.Set())
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

// TestCheckIsolators: what appc accepts but stage2 cannot apply is refused
// with one line naming it.
func TestCheckIsolators(t *testing.T) {
	for _, tc := range []struct {
		name, isos string
		refuse     string // a word of the error; "": accepted
	}{
		{name: "none", isos: `[]`},
		{name: "caps and seccomp", isos: `[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_CHOWN"]}},{"name":"os/linux/seccomp-remove-set","value":{"set":["mkdir"],"errno":"ENOTSUP"}}]`},
		{name: "unknown capability", isos: `[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_NOPE"]}}]`, refuse: "CAP_NOPE"},
		{name: "unknown removed capability", isos: `[{"name":"os/linux/capabilities-remove-set","value":{"set":["CAP_NOPE"]}}]`, refuse: "CAP_NOPE"},
		{name: "unknown syscall", isos: `[{"name":"os/linux/seccomp-remove-set","value":{"set":["no_such_syscall"]}}]`, refuse: "no_such_syscall"},
		{name: "unknown errno", isos: `[{"name":"os/linux/seccomp-retain-set","value":{"set":["read"],"errno":"ENOPE"}}]`, refuse: "ENOPE"},
		{name: "two capability sets", isos: `[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_CHOWN"]}},{"name":"os/linux/capabilities-remove-set","value":{"set":["CAP_KILL"]}}]`, refuse: "conflicting"},
		{name: "two seccomp sets", isos: `[{"name":"os/linux/seccomp-retain-set","value":{"set":["read"]}},{"name":"os/linux/seccomp-remove-set","value":{"set":["mkdir"]}}]`, refuse: "conflicting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := CheckIsolators(isolators(t, tc.isos))
			switch {
			case tc.refuse == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refuse != "" && (err == nil || !strings.Contains(err.Error(), tc.refuse) || strings.Contains(err.Error(), "\n")):
				t.Fatalf("err = %v, want one line naming %q", err, tc.refuse)
			}
		})
	}
}
