package kvm

import "syscall"

// exec.Cmd speaks the syscall package's types; this alias keeps that import
// in one place.
type unixSysProcAttr = syscall.SysProcAttr
