package stage0

import (
	"strings"
	"testing"

	"github.com/appc/spec/schema"

	"github.com/google/go-cmp/cmp"

	"github.com/rkt-ng/rkt/manifests"
	"github.com/rkt-ng/rkt/stage1"
)

// TestFlagIsolators: the kinds an app flag replaces are the user's; the
// stage1 checks every other isolator as the image's.
func TestFlagIsolators(t *testing.T) {
	t.Parallel()
	oom, shares := -500, 512
	for _, tc := range []struct {
		name string
		spec AppSpec
		want []string
	}{
		{name: "none", spec: AppSpec{}},
		{name: "caps retain", spec: AppSpec{CapsRetain: []string{"CAP_SYS_ADMIN"}},
			want: []string{"os/linux/capabilities-retain-set", "os/linux/capabilities-remove-set"}},
		{name: "caps remove", spec: AppSpec{CapsRemove: []string{"CAP_CHOWN"}},
			want: []string{"os/linux/capabilities-retain-set", "os/linux/capabilities-remove-set"}},
		{name: "seccomp", spec: AppSpec{Seccomp: "mode=retain,@appc.io/all"},
			want: []string{"os/linux/seccomp-retain-set", "os/linux/seccomp-remove-set"}},
		{name: "resources and oom", spec: AppSpec{Memory: "64Mi", CPU: "250m", CPUShares: &shares, OOMScoreAdj: &oom},
			want: []string{"resource/memory", "resource/cpu", "os/linux/cpu-shares", "os/linux/oom-score-adj"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, flagIsolators(tc.spec)); diff != "" {
				t.Errorf("flagIsolators mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWithGrants(t *testing.T) {
	t.Parallel()
	apps := map[string]stage1.AppOptions{"a": {StopSignal: "SIGUSR1"}}
	got := withGrants(apps, map[string]stage1.AppOptions{
		"a": {UserIsolators: []string{"os/linux/oom-score-adj"}, GrantedBy: stage1.GrantedByFlags},
		"b": {GrantedBy: stage1.GrantedByPodManifest},
	})
	want := map[string]stage1.AppOptions{
		"a": {StopSignal: "SIGUSR1", UserIsolators: []string{"os/linux/oom-score-adj"}, GrantedBy: stage1.GrantedByFlags},
		"b": {GrantedBy: stage1.GrantedByPodManifest},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("withGrants mismatch (-want +got):\n%s", diff)
	}
	if got := withGrants(nil, nil); got != nil {
		t.Errorf("withGrants(nil, nil) = %v, want nil", got)
	}
}

func TestRefuseImageGrants(t *testing.T) {
	pm := func(isos string) *schema.PodManifest {
		b := `{"acKind":"PodManifest","acVersion":"0.8.11","apps":[{"name":"a","image":{"id":"sha512-` + strings.Repeat("0", 128) + `"},` +
			`"app":{"exec":["/x"],"user":"0","group":"0","isolators":` + isos + `}}]}`
		m, err := manifests.DecodePod([]byte(b))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	user := map[string]stage1.AppOptions{"a": {UserIsolators: []string{"os/linux/capabilities-retain-set"}}}
	for _, tc := range []struct {
		isos   string
		grants map[string]stage1.AppOptions
		refuse bool
	}{
		{`[]`, nil, false},
		{`[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_CHOWN"]}}]`, nil, true},
		{`[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_SYS_ADMIN"]}}]`, user, false},
		{`[{"name":"os/linux/capabilities-remove-set","value":{"set":["CAP_CHOWN"]}}]`, nil, false},
		{`[{"name":"os/linux/seccomp-retain-set","value":{"set":["@appc.io/all"]}}]`, nil, true},
		{`[{"name":"os/linux/no-new-privileges","value":false}]`, nil, true},
		{`[{"name":"os/linux/oom-score-adj","value":-5}]`, nil, true},
		{`[{"name":"resource/memory","value":{"limit":"1G"}}]`, nil, false},
	} {
		err := refuseImageGrants(pm(tc.isos), tc.grants, "example.com/old-stage1")
		if (err != nil) != tc.refuse {
			t.Errorf("isolators %s: %v, want refused=%v", tc.isos, err, tc.refuse)
		}
		if err != nil && !strings.Contains(err.Error(), "does not enforce") {
			t.Errorf("error %q does not say why", err)
		}
	}
}
