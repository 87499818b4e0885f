package seccomp

import (
	"testing"

	"github.com/rkt-ng/rkt/internal/depcheck"
)

// TestDeps keeps the package fit for the static stage2 binary: besides the
// standard library it may only use golang.org/x/sys/unix, and never net/http.
func TestDeps(t *testing.T) {
	for _, d := range depcheck.Deps(t) {
		switch {
		case depcheck.Under(d.Path, "net/http"):
			t.Errorf("depends on %s", d.Path)
		case d.Standard, d.Path == "golang.org/x/sys/unix", d.Path == "github.com/rkt-ng/rkt/stage2/seccomp":
		default:
			t.Errorf("depends on %s; only the standard library and golang.org/x/sys/unix are allowed", d.Path)
		}
	}
}
