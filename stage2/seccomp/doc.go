// Package seccomp builds and installs the seccomp-bpf syscall filter of an app,
// from the appc isolators os/linux/seccomp-retain-set and
// os/linux/seccomp-remove-set, in pure Go (no libseccomp, no cgo). It is
// Linux-only and supports amd64 and arm64.
//
// A set is a list of syscall names ("mkdir") and groups: @appc.io/all,
// @appc.io/empty, @rkt/default-whitelist, @rkt/default-blacklist,
// @docker/default-whitelist and @docker/default-blacklist (see groups_linux.go for
// where each list comes from). An unknown name or group is an error naming
// it. A syscall the running architecture lacks (chown32, or open on arm64) is
// skipped silently when it comes from a group and is an error when it is
// named explicitly.
//
// # The filter
//
// Build compiles a set into a classic BPF program that:
//
//  1. kills the process (SECCOMP_RET_KILL_PROCESS) when the syscall's audit
//     architecture is not the native one (i386 or arm32 compat calls);
//  2. on amd64, fails syscall numbers with the x32 bit (0x40000000) or above
//     with ENOSYS, so the x32 ABI cannot bypass the filter;
//  3. looks the syscall number up in a binary search tree of comparisons
//     (about 10 per syscall for 400+ syscalls) and returns allow, or the
//     blocked action: the errno given to Build, or without one
//     SECCOMP_RET_KILL_PROCESS, which kills the whole process with SIGSYS.
//
// clone3, when blocked, always fails with ENOSYS instead: libc (glibc 2.34+)
// falls back to clone(2) only on ENOSYS, and Docker and runc do the same.
//
// # Call order
//
// The filter and the capability bounding set are per thread and a Go program
// has many threads, so the caller (stage2's app launcher) must:
//
//  1. runtime.LockOSThread() on the goroutine that will exec, and never
//     unlock it;
//  2. chroot, chdir, unix.Setgroups, unix.Setresgid;
//  3. unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) if the app asks for
//     no_new_privs;
//  4. Filter.Install, while still holding CAP_SYS_ADMIN: seccomp(2) refuses a
//     filter with EACCES unless the caller has CAP_SYS_ADMIN or no_new_privs
//     is set;
//  5. caps.Apply (which calls prctl, capset and setresuid);
//  6. unix.Exec.
//
// Install may also come after caps.Apply (as the step right before
// unix.Exec) when no_new_privs is set or the app keeps CAP_SYS_ADMIN.
// Install uses SECCOMP_FILTER_FLAG_TSYNC so that every thread of the Go
// runtime gets the filter too: a thread without it could otherwise run the
// syscalls the app must not.
//
// Between Install and the exec the Go runtime and caps.Apply still make
// syscalls. A retain filter therefore always allows the Essential syscalls,
// and a remove set may not name one of them (when one comes from a group, it
// is kept allowed). The exec'd app keeps that permission.
package seccomp

//go:generate go run ./internal/gen -o zsysnum_linux.go
