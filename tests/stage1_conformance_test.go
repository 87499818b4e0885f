package tests

import (
	"testing"

	"github.com/rkt-ng/rkt/tests/stage1test"
	"github.com/rkt-ng/rkt/tests/testutil"
)

// TestStage1ConformanceNS runs the stage1 conformance suite against the
// namespace stage1 ($RKT_STAGE1, default bin/stage1-ns.aci), which supports
// every optional feature.
func TestStage1ConformanceNS(t *testing.T) {
	stage1test.Run(t, testutil.Stage1Image(t), stage1test.Options{Enter: true, Networking: true, MutablePods: true})
}

// TestStage1ConformanceKVM runs the suite against the KVM stage1
// ($RKT_STAGE1_KVM, default bin/stage1-kvm.aci): every pod is a virtual
// machine, emulated (TCG) where /dev/kvm is unusable, hence the longer
// start timeout.
func TestStage1ConformanceKVM(t *testing.T) {
	stage1 := requireKVMStage1(t)
	stage1test.Run(t, stage1, stage1test.Options{Enter: true, Networking: true, StartTimeout: kvmBootWait, VM: true})
}

// TestStage1ConformanceStub runs the suite against the stub stage1
// (tests/stubstage1): it enters apps through their root, and has no
// networking of its own.
func TestStage1ConformanceStub(t *testing.T) {
	testutil.RequireRoot(t)
	stage1test.Run(t, testutil.StubStage1(t), stage1test.Options{Enter: true})
}
