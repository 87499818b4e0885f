package caps

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the package fit for the static stage2 binary: besides the
// standard library it may only use golang.org/x/sys/unix, and never net/http.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", ".").Output()
	if err != nil {
		t.Skipf("requires the go command: %v", err)
	}
	for line := range strings.Lines(string(out)) {
		pkg, std, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch {
		case pkg == "net/http" || strings.HasPrefix(pkg, "net/http/"):
			t.Errorf("depends on %s", pkg)
		case std == "true", pkg == "golang.org/x/sys/unix", pkg == "github.com/rkt-ng/rkt/stage2/caps":
		default:
			t.Errorf("depends on %s; only the standard library and golang.org/x/sys/unix are allowed", pkg)
		}
	}
}
