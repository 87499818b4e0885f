package mountinfo

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	line := `36 35 98:0 /mnt1 /mnt/with\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
	got, err := Parse(line)
	if err != nil {
		t.Fatal(err)
	}
	want := Mount{ID: 36, Parent: 35, Mountpoint: "/mnt/with space", FSType: "ext3", Source: "/dev/root", Options: "rw,noatime"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse mismatch (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"", "1 2 3", "x 1 0:0 / / rw - a b c"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(`36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw`)
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4096 {
			return
		}
		Parse(s)
	})
}
