package deb

import (
	"os/exec"
	"testing"
)

var versionCases = []struct {
	a, b string
	want int
}{
	{"1.0", "1.0", 0},
	{"1.0", "1.1", -1},
	{"1.10", "1.9", 1},
	{"1:1.0", "2.0", 1},
	{"0:1.0", "1.0", 0},
	{"1.0~rc1", "1.0", -1},
	{"1.0~~", "1.0~", -1},
	{"1.0-1", "1.0-2", -1},
	{"1.0-1", "1.0", 1},
	{"1.0a", "1.0+", -1},
	{"1.0+b1", "1.0", 1},
	{"2.36-9+deb12u7", "2.36-9+deb12u14", -1},
	{"1:1.35.0-4+deb12u1+b1", "1:1.35.0-4+b3", 1},
	{"20250419~deb12u2", "20230311+deb12u1", 1},
	{"1.0.0001", "1.0.1", 0},
	{"1.2-3-4", "1.2-3-5", -1},
	{"1.0-a", "1.0-~", 1},
}

func TestCompareVersions(t *testing.T) {
	for _, c := range versionCases {
		if got := CompareVersions(c.a, c.b); got != c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := CompareVersions(c.b, c.a); got != -c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

// TestCompareVersionsDpkg checks the cases against dpkg itself when it is
// installed.
func TestCompareVersionsDpkg(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("dpkg not installed")
	}
	for _, c := range versionCases {
		op := map[int]string{-1: "lt", 0: "eq", 1: "gt"}[c.want]
		if err := exec.Command("dpkg", "--compare-versions", c.a, op, c.b).Run(); err != nil {
			t.Errorf("dpkg disagrees: %s %s %s", c.a, op, c.b)
		}
	}
}
