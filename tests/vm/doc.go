// Package vm boots a Linux kernel under qemu with KVM to run functional tests
// on a system layout the host does not have, such as a pure cgroup v2 host
// when the test machine runs cgroup v1.
//
// The host side builds a gzip'd newc cpio initramfs ([CPIOWriter]) holding
// the static init program of tests/vm/init, the binaries under test, any
// kernel modules the tests need ([ResolveModule]) and a [Config] listing the
// commands to run. The init mounts the usual filesystems and a cgroup2
// hierarchy, runs the commands one after the other, prints one [Result] per
// line on the serial console after [Marker], and powers the machine off.
// [Run] starts qemu, bounded by a context, and [ParseSerial] reads the
// results back from the console output.
//
// The package is Linux-only and meant for tests.
package vm
