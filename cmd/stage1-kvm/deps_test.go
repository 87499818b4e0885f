package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the KVM stage1's host program a stage program: no cobra,
// no signing, no stage0 (net/http comes with libcni, as in stage1-ns).
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Skipf("requires the go command: %v", err)
	}
	for line := range strings.Lines(string(out)) {
		pkg := strings.TrimSpace(line)
		for _, bad := range []string{"github.com/spf13/cobra", "github.com/rkt-ng/rkt/signing", "github.com/rkt-ng/rkt/stage0"} {
			if pkg == bad || strings.HasPrefix(pkg, bad+"/") {
				t.Errorf("stage1-kvm depends on %s", pkg)
			}
		}
	}
}
