//go:build !amd64

package main

import "golang.org/x/sys/unix"

// Architectures without mkdir(2) and chown(2) (arm64, riscv64, ...) get the
// *at forms, which is what their libc calls too.

func mkdirProbe(p string) error { return mkdiratProbe(p) }

func chownProbe(p string, uid, gid int) error {
	return unix.Fchownat(unix.AT_FDCWD, p, uid, gid, 0)
}
