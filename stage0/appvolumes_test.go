package stage0

import (
	"slices"
	"testing"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
)

func TestDropAppVolumes(t *testing.T) {
	vol := func(n string) types.Volume { return types.Volume{Name: types.ACName(n), Kind: "host", Source: "/x"} }
	pm := &schema.PodManifest{
		Volumes: []types.Volume{vol("sandbox"), vol("mine"), vol("shared"), vol("other")},
		Apps:    schema.AppList{{Name: "b", Mounts: []schema.Mount{{Volume: "shared", Path: "/s"}}}},
	}
	var got []string
	for _, v := range dropAppVolumes(pm, []string{"mine", "shared"}) {
		got = append(got, v.Name.String())
	}
	// "mine" goes; "shared" is still mounted by b; the others were not the app's.
	if want := []string{"sandbox", "shared", "other"}; !slices.Equal(got, want) {
		t.Errorf("volumes %q, want %q", got, want)
	}
	if out := dropAppVolumes(pm, nil); len(out) != 4 {
		t.Errorf("no app volumes: %d volumes left, want 4", len(out))
	}
}
