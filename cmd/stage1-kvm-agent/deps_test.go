package main

import (
	"testing"

	"github.com/rkt-ng/rkt/internal/depcheck"
)

// TestDeps keeps the guest agent, which is in every pod's initramfs, small:
// no net/http, no cobra, no signing, no stage0 and no CNI.
func TestDeps(t *testing.T) {
	depcheck.Forbid(t, "the agent", "net/http", "github.com/spf13/cobra", "github.com/rkt-ng/rkt/signing",
		"github.com/rkt-ng/rkt/stage0", "github.com/rkt-ng/rkt/cni", "github.com/containernetworking")
}
