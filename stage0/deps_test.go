package stage0

import (
	"os/exec"
	"strings"
	"testing"
)

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
