package depcheck

import "testing"

func TestUnder(t *testing.T) {
	for _, tc := range []struct {
		path, prefix string
		want         bool
	}{
		{"net/http", "net/http", true},
		{"net/http/httptrace", "net/http", true},
		{"net/httpx", "net/http", false},
		{"k8s.io/cri-api/pkg", "k8s.io", true},
		{"github.com/containernetworking/cni", "github.com/containernetworking/", true},
	} {
		if got := Under(tc.path, tc.prefix); got != tc.want {
			t.Errorf("Under(%q, %q) = %v", tc.path, tc.prefix, got)
		}
	}
}

// This package's own graph: itself, and os/exec from the standard library.
func TestDeps(t *testing.T) {
	seen := map[string]Package{}
	for _, d := range Deps(t) {
		seen[d.Path] = d
	}
	if d, ok := seen["os/exec"]; !ok || !d.Standard {
		t.Errorf("os/exec missing or not standard: %+v", d)
	}
	if d, ok := seen["github.com/rkt-ng/rkt/internal/depcheck"]; !ok || d.Standard {
		t.Errorf("the package itself missing or standard: %+v", d)
	}
}
