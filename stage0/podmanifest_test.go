package stage0

import (
	"testing"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"github.com/google/go-cmp/cmp"
)

func TestFillMounts(t *testing.T) {
	vol := func(s string) types.Volume {
		v, err := types.VolumeFromString(s)
		if err != nil {
			t.Fatal(err)
		}
		return *v
	}
	app := func() *schema.RuntimeApp {
		return &schema.RuntimeApp{Name: "b", App: &types.App{MountPoints: []types.MountPoint{
			{Name: "secret", Path: "/loot"}, {Name: "scratch", Path: "/scratch"}, {Name: "other", Path: "/other"},
		}}}
	}
	for _, tc := range []struct {
		name     string
		userApp  bool
		apps     int
		want     []schema.Mount
		implicit []implicitMount
	}{
		{"one app: host volume by name, with a warning", false, 1,
			[]schema.Mount{{Volume: "secret", Path: "/loot"}, {Volume: "scratch", Path: "/scratch"}, {Volume: "b-other", Path: "/other"}},
			[]implicitMount{{App: "b", Volume: "secret", Path: "/loot", Mounted: true}}},
		{"two apps: host volume needs --mount", false, 2,
			[]schema.Mount{{Volume: "b-secret", Path: "/loot"}, {Volume: "scratch", Path: "/scratch"}, {Volume: "b-other", Path: "/other"}},
			[]implicitMount{{App: "b", Volume: "secret", Path: "/loot"}}},
		{"pod manifest app: the user declared it", true, 2,
			[]schema.Mount{{Volume: "secret", Path: "/loot"}, {Volume: "scratch", Path: "/scratch"}, {Volume: "b-other", Path: "/other"}},
			nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vols := map[types.ACName]types.Volume{
				"secret":  vol("secret,kind=host,source=/etc"),
				"scratch": vol("scratch,kind=empty"),
			}
			ra := app()
			_, implicit := fillMounts(ra, vols, tc.userApp, tc.apps)
			if diff := cmp.Diff(tc.want, ra.Mounts); diff != "" {
				t.Errorf("mounts mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.implicit, implicit); diff != "" {
				t.Errorf("implicit mismatch (-want +got):\n%s", diff)
			}
		})
	}
	// An explicit --mount at the path wins; nothing implicit happens.
	ra := app()
	ra.Mounts = []schema.Mount{{Volume: "secret", Path: "/loot/"}}
	if _, implicit := fillMounts(ra, map[types.ACName]types.Volume{"secret": vol("secret,kind=host,source=/etc")}, false, 2); len(implicit) != 0 {
		t.Errorf("explicit mount reported as implicit: %v", implicit)
	}
}

func TestParseMountTarget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"volume=v,target=/abs", "/abs"},
		{"volume=v,target=rel/dir", "/rel/dir"},
		{"volume=v,target=../../up", "/up"},
	} {
		m, err := ParseMount(tc.in)
		if err != nil || m.Target != tc.want {
			t.Errorf("ParseMount(%q) = %q, %v; want target %q", tc.in, m.Target, err, tc.want)
		}
	}
}
