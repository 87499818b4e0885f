package stage0

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/rkt-ng/rkt/"

// contractOnly reports whether stage0 may depend on the module's package
// pkg (path relative to the module): stage0 knows stage1 only through the
// contract (package stage1, docs/stage1-abi.md), never through a flavor's
// internals (stage1/ns, stage1/cgroups, stage1/mds, stage1/podspec,
// stage2/..., cni). What a flavor can apply, it checks itself.
func contractOnly(pkg string) bool {
	switch pkg {
	case "stage1", "pods", "pods/layout", "discovery", "signing", "manifests":
		return true
	}
	return strings.HasPrefix(pkg, "stage0/") || strings.HasPrefix(pkg, "internal/")
}

// TestDeps keeps stage0 (and its sub-packages, and everything they import)
// to the standard library, third-party modules and the packages
// contractOnly allows.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./...").Output()
	if err != nil {
		t.Skipf("requires the go command: %v", err)
	}
	for line := range strings.Lines(string(out)) {
		pkg := strings.TrimSpace(line)
		rel, ours := strings.CutPrefix(pkg, module)
		if !ours || rel == "stage0" {
			continue
		}
		if !contractOnly(rel) {
			t.Errorf("stage0 depends on %s; it may use only the stage1 contract (package stage1), pods, manifests, discovery, signing, internal/... and stage0/...", pkg)
		}
	}
}

func TestContractOnly(t *testing.T) {
	t.Parallel()
	for pkg, want := range map[string]bool{
		"stage1": true, "pods/layout": true, "stage0/store": true, "internal/untar": true,
		"stage1/ns": false, "stage1/cgroups": false, "stage1/mds": false, "stage1/podspec": false,
		"stage2": false, "stage2/caps": false, "stage2/seccomp": false, "cni": false, "stage1x": false, "podsx": false,
	} {
		if got := contractOnly(pkg); got != want {
			t.Errorf("contractOnly(%q) = %v, want %v", pkg, got, want)
		}
	}
}

// TestImportsNoFetching keeps image fetching in package stage0/images: the
// pod lifecycle gets its images through that package and never talks to
// discovery, registries or the trust store itself.
func TestImportsNoFetching(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Skipf("requires the go command: %v", err)
	}
	forbidden := []string{
		"github.com/rkt-ng/rkt/discovery",
		"github.com/rkt-ng/rkt/signing",
		"github.com/google/go-containerregistry/",
		"github.com/ProtonMail/go-crypto/",
		"net/http",
	}
	for pkg := range strings.Lines(string(out)) {
		pkg = strings.TrimSpace(pkg)
		for _, f := range forbidden {
			if pkg == strings.TrimSuffix(f, "/") || strings.HasPrefix(pkg, f) {
				t.Errorf("stage0 imports %s; image fetching belongs in stage0/images", pkg)
			}
		}
	}
}
