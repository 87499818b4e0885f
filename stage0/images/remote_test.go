package images

import (
	"strings"
	"testing"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"github.com/rkt-ng/rkt/discovery"
)

func TestMatchRequest(t *testing.T) {
	t.Parallel()
	im := schema.BlankImageManifest()
	im.Name = "example.com/app"
	im.Labels = types.Labels{{Name: "version", Value: "1.0"}, {Name: "os", Value: "linux"}, {Name: "arch", Value: discovery.AppcArch("amd64")}}
	for _, tc := range []struct {
		name string
		app  discovery.App
		ok   bool
	}{
		{"name only", discovery.App{Name: "example.com/app"}, true},
		{"version", discovery.App{Name: "example.com/app", Labels: map[string]string{"version": "1.0"}}, true},
		{"other name", discovery.App{Name: "example.com/other"}, false},
		{"other version", discovery.App{Name: "example.com/app", Labels: map[string]string{"version": "2.0"}}, false},
		{"missing label", discovery.App{Name: "example.com/app", Labels: map[string]string{"channel": "beta"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := matchRequest(tc.app, im)
			if tc.app.Labels["arch"] == "" && err != nil && strings.Contains(err.Error(), "arch") {
				t.Skip("host arch is not amd64")
			}
			if (err == nil) != tc.ok {
				t.Errorf("matchRequest = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
