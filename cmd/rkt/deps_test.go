package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the CRI server's modules (gRPC, protobuf, k8s.io) out of
// rkt: they live in bin/rkt-cri, and rkt's start time matters.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Skipf("requires the go command: %v", err)
	}
	for line := range strings.Lines(string(out)) {
		pkg := strings.TrimSpace(line)
		for _, bad := range []string{"google.golang.org/grpc", "google.golang.org/protobuf", "k8s.io", "github.com/rkt-ng/rkt/stage0/cri"} {
			if pkg == bad || strings.HasPrefix(pkg, bad+"/") {
				t.Errorf("rkt depends on %s", pkg)
			}
		}
	}
}
