package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the guest agent, which is in every pod's initramfs, small:
// no net/http, no cobra, no signing, no stage0 and no CNI.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Skipf("requires the go command: %v", err)
	}
	for line := range strings.Lines(string(out)) {
		pkg := strings.TrimSpace(line)
		for _, bad := range []string{"net/http", "github.com/spf13/cobra", "github.com/rkt-ng/rkt/signing",
			"github.com/rkt-ng/rkt/stage0", "github.com/rkt-ng/rkt/cni", "github.com/containernetworking/"} {
			if pkg == bad || strings.HasPrefix(pkg, strings.TrimSuffix(bad, "/")+"/") {
				t.Errorf("the agent depends on %s", pkg)
			}
		}
	}
}
