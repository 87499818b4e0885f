// Package vm boots a Linux kernel under qemu: the host side shared by the
// KVM stage1 (stage1/kvm) and the virtual-machine functional tests
// (tests/vm).
//
// It writes an initramfs as a gzip'd newc cpio archive ([CPIOWriter],
// [WriteInitramfs]), resolves kernel modules and their dependencies from
// modules.dep and decompresses them ([ResolveModule], [ReadModule]: .ko,
// .ko.gz, .ko.xz, .ko.zst), finds a kernel ([FindKernel]) and qemu
// ([FindQEMU]), chooses the accelerator ([ChooseAccel]: KVM only where
// /dev/kvm works and is not PVM, else TCG), and builds and runs the qemu
// command of a [Machine]. The guest side (the init's mounts, module loading,
// power-off) is package internal/vm/guest.
//
// The package is Linux-only.
package vm
