package stage0

import (
	"testing"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
)

func TestPodSysctls(t *testing.T) {
	pm := &schema.PodManifest{}
	if err := podSysctls(pm, PrepareConfig{Sysctls: map[string]string{"net.core.somaxconn": "1024"}}); err != nil {
		t.Fatal(err)
	}
	if len(pm.Isolators) != 1 || pm.Isolators[0].Name != types.UnixSysctlName {
		t.Fatalf("isolators %+v", pm.Isolators)
	}
	if raw := pm.Isolators[0].ValueRaw; raw == nil || string(*raw) != `{"net.core.somaxconn":"1024"}` {
		t.Errorf("sysctl isolator value %v", raw)
	}
	for _, bad := range []map[string]string{
		{"kernel.shm_rmid_forced": "1"},
		{"net..core": "1"},
		{"net/core": "1"},
		{"net.core.somaxconn": "1\n2"},
	} {
		if err := podSysctls(&schema.PodManifest{}, PrepareConfig{Sysctls: bad}); err == nil {
			t.Errorf("sysctls %v accepted", bad)
		}
	}
}
