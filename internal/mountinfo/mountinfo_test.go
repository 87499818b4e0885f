package mountinfo

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Mount
	}{
		{`36 35 98:0 /mnt1 /mnt/with\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue`,
			Mount{ID: 36, Parent: 35, MajorMinor: "98:0", Root: "/mnt1", Mountpoint: "/mnt/with space", Options: "rw,noatime",
				Optional: []string{"master:1"}, FSType: "ext3", Source: "/dev/root", SuperOptions: "rw,errors=continue"}},
		// mount -t tmpfs "" /x: an empty source field (two spaces).
		{`44 26 0:39 / /tmp/x rw,relatime - tmpfs  rw`,
			Mount{ID: 44, Parent: 26, MajorMinor: "0:39", Root: "/", Mountpoint: "/tmp/x", Options: "rw,relatime", FSType: "tmpfs", SuperOptions: "rw"}},
		// No optional fields, several optional fields, escapes in the source.
		{`25 1 0:22 / /sys rw,nosuid shared:7 master:3 propagate_from:2 unbindable - sysfs my\134src\011x rw`,
			Mount{ID: 25, Parent: 1, MajorMinor: "0:22", Root: "/", Mountpoint: "/sys", Options: "rw,nosuid",
				Optional: []string{"shared:7", "master:3", "propagate_from:2", "unbindable"}, FSType: "sysfs", Source: "my\\src\tx", SuperOptions: "rw"}},
		// A mount point named "-" and a source named "-".
		{`50 1 0:40 / /- rw - tmpfs - rw`,
			Mount{ID: 50, Parent: 1, MajorMinor: "0:40", Root: "/", Mountpoint: "/-", Options: "rw", FSType: "tmpfs", Source: "-", SuperOptions: "rw"}},
		// A newline in a path.
		{`51 1 0:41 / /a\012b rw - tmpfs none rw`,
			Mount{ID: 51, Parent: 1, MajorMinor: "0:41", Root: "/", Mountpoint: "/a\nb", Options: "rw", FSType: "tmpfs", Source: "none", SuperOptions: "rw"}},
	} {
		got, err := Parse(tc.line)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.line, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tc.line, diff)
		}
	}
	for _, bad := range []string{"", "1 2 3", "x 1 0:0 / / rw - a b c", "1 2 0:0 / / rw - a b", "1 2 0:0 / / rw - a b c d", "1 2 0:0 / / rw shared:1"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}

// Every line of this machine's own mountinfo parses.
func TestReadSelf(t *testing.T) {
	ms, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].Mountpoint == "" {
		t.Fatalf("Read() = %v", ms)
	}
	// A file with an empty source line among ordinary ones.
	p := filepath.Join(t.TempDir(), "mountinfo")
	os.WriteFile(p, []byte("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n44 22 0:39 / /tmp/x rw - tmpfs  rw\n"), 0o644)
	ms, err = ReadFile(p)
	if err != nil || len(ms) != 2 || ms[1].Source != "" || ms[1].SuperOptions != "rw" {
		t.Errorf("ReadFile = %+v, %v", ms, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(`36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw`)
	f.Add(`44 26 0:39 / /tmp/x rw,relatime - tmpfs  rw`)
	f.Add(`25 1 0:22 / /sys rw,nosuid shared:7 master:3 - sysfs sysfs rw`)
	f.Add(`50 1 0:40 / /a\040b rw - tmpfs - rw`)
	f.Fuzz(func(t *testing.T, s string) {
		m, err := Parse(s)
		if err != nil {
			return
		}
		if m.Mountpoint == "" || m.FSType == "" {
			t.Errorf("Parse(%q) accepted an empty mount point or type: %+v", s, m)
		}
	})
}
