package testutil

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"testing"
)

// StubStage1Name is the image name of the stage1 that StubStage1 builds.
const StubStage1Name = "rkt-ng.test/stub-stage1"

// StubInterfaceVersion is the stage1 interface version the stub declares
// unless an option overrides the annotation: one less than rkt-ng's, so that
// tests see stage0 drop the newer arguments.
const StubInterfaceVersion = "5"

var (
	stubOnce sync.Once
	stubPath string
	stubErr  error
)

// stubBinary builds the stub stage1 program (tests/stubstage1, whose
// package doc says what it implements) once per test binary.
func stubBinary(t testing.TB) string {
	t.Helper()
	root := RepoRoot(t)
	stubOnce.Do(func() {
		sum := sha256.Sum256([]byte(root))
		stubPath, stubErr = goBuild(root, "./tests/stubstage1", "stub-stage1-"+hex.EncodeToString(sum[:6]))
	})
	if stubErr != nil {
		t.Fatalf("build stub stage1: %v", stubErr)
	}
	return stubPath
}

// StubStage1 builds a minimal stage1 ACI for stage1 ABI tests and returns its
// path: its entrypoints /run-stub, /enter-stub, /gc-stub and /stop-stub are
// named by the coreos.com/rkt/stage1/{run,enter,gc,stop} annotations, and it
// declares interface version StubInterfaceVersion. opts are applied last, so
// WithAnnotation can change or add annotations.
func StubStage1(t testing.TB, opts ...ACIOption) string {
	t.Helper()
	bin := stubBinary(t)
	base := []ACIOption{
		WithoutApp(),
		WithAnnotation("coreos.com/rkt/stage1/interface-version", StubInterfaceVersion),
	}
	for _, e := range []string{"run", "enter", "gc", "stop"} {
		base = append(base,
			WithHostFile(bin, "/"+e+"-stub"),
			WithAnnotation("coreos.com/rkt/stage1/"+e, "/"+e+"-stub"))
	}
	return NewACI(t, StubStage1Name, append(base, opts...)...)
}
