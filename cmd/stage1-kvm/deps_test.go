package main

import (
	"testing"

	"github.com/rkt-ng/rkt/internal/depcheck"
)

// TestDeps keeps the KVM stage1's host program a stage program: no cobra,
// no signing, no stage0 (net/http comes with libcni, as in stage1-ns).
func TestDeps(t *testing.T) {
	depcheck.Forbid(t, "stage1-kvm", "github.com/spf13/cobra", "github.com/rkt-ng/rkt/signing", "github.com/rkt-ng/rkt/stage0")
}
