package main

import (
	"bytes"
	"os"
	"testing"
)

// TestUpToDate fails when zsysnum_linux.go differs from what the generator
// writes for the golang.org/x/sys version that go.mod selects.
func TestUpToDate(t *testing.T) {
	dir, err := unixDir()
	if err != nil {
		t.Skipf("requires the go command and the golang.org/x/sys module source: %v", err)
	}
	want, err := generate(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../zsysnum_linux.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, got) {
		t.Error("stage2/seccomp/zsysnum_linux.go is stale; run: go generate ./stage2/seccomp")
	}
}

func TestParseKnownNumbers(t *testing.T) {
	dir, err := unixDir()
	if err != nil {
		t.Skipf("requires the go command and the golang.org/x/sys module source: %v", err)
	}
	// Numbers from the kernel's arch/x86/entry/syscalls/syscall_64.tbl and
	// include/uapi/asm-generic/unistd.h; they never change.
	for arch, want := range map[string]map[string]uint64{
		"amd64": {"read": 0, "mkdir": 83, "execve": 59, "_sysctl": 156, "newfstatat": 262, "clone3": 435},
		"arm64": {"io_setup": 0, "mkdirat": 34, "execve": 221, "newfstatat": 79, "clone3": 435},
	} {
		nums, err := parse(dir + "/zsysnum_linux_" + arch + ".go")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]uint64{}
		for _, s := range nums {
			got[s.name] = s.nr
		}
		for name, nr := range want {
			if got[name] != nr {
				t.Errorf("%s: %s = %d, want %d", arch, name, got[name], nr)
			}
		}
		if _, ok := got["arch_specific_syscall"]; ok {
			t.Errorf("%s: arch_specific_syscall is not a syscall", arch)
		}
	}
}
