// Package vm is the protocol between the virtual-machine functional tests
// (tests/vm_cgroupv2_test.go) and their init (tests/vm/init): the test boots
// a kernel with internal/vm, the init runs the [Config]'s steps, prints one
// [Result] per line on the serial console after [Marker], and powers the
// machine off; [ParseSerial] reads the results back.
//
// The package is Linux-only and meant for tests.
package vm
