package stage0

import (
	"testing"

	"github.com/google/go-cmp/cmp"

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
