// Command mkvmlinux writes the KVM stage1's guest kernel at build time: the
// uncompressed ELF kernel inside a bzImage (vm.KernelELF), which qemu boots
// through its PVH entry point without the bzImage's decompressor (seconds of
// every boot under TCG; docs/kvm.md).
//
//	go run ./stage1/kvm/internal/mkvmlinux -o OUT BZIMAGE
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/rkt-ng/rkt/internal/vm"
)

func main() {
	out := flag.String("o", "", "the ELF kernel to write")
	flag.Parse()
	if *out == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: mkvmlinux -o OUT BZIMAGE")
		os.Exit(2)
	}
	if err := build(flag.Arg(0), *out); err != nil {
		fmt.Fprintf(os.Stderr, "mkvmlinux: %v\n", err)
		os.Exit(1)
	}
}

func build(bzImage, out string) error {
	b, err := os.ReadFile(bzImage)
	if err != nil {
		return err
	}
	elf, err := vm.KernelELF(b)
	if err != nil {
		return fmt.Errorf("%s: %w", bzImage, err)
	}
	return os.WriteFile(out, elf, 0o644)
}
