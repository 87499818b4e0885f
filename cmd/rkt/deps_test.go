package main

import (
	"testing"

	"github.com/rkt-ng/rkt/internal/depcheck"
)

// TestDeps keeps the CRI server's modules (gRPC, protobuf, k8s.io) out of
// rkt: they live in bin/rkt-cri, and rkt's start time matters.
func TestDeps(t *testing.T) {
	depcheck.Forbid(t, "rkt", "google.golang.org/grpc", "google.golang.org/protobuf", "k8s.io", "github.com/rkt-ng/rkt/stage0/cri")
}
