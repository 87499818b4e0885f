// Package caps resolves the appc capability isolators
// (os/linux/capabilities-retain-set and -remove-set) into a capability set
// and applies it, with the app's UID, to the thread that execs the app. It is
// pure Go (no libcap, no cgo) and Linux-only.
//
// Names use the appc form "CAP_SYS_ADMIN" (case-insensitive). The table covers
// every capability up to CAP_CHECKPOINT_RESTORE (Linux 5.9); Apply ignores
// capabilities the running kernel does not know, since no process can hold
// them.
//
// # Call order
//
// Capabilities and the bounding set belong to a thread, not to a process, so
// the caller (stage2's app launcher, running as root with every capability)
// must:
//
//  1. runtime.LockOSThread() on the goroutine that will exec, and never
//     unlock it;
//  2. unix.Setgroups and unix.Setresgid (these need CAP_SETGID, which the app
//     may lose);
//  3. seccomp's Filter.Install, when a filter is used and no_new_privs is not
//     set (see package seccomp);
//  4. Apply(set, uid): Apply calls unix.Setresuid itself, which Go applies to
//     every thread of the process (syscall.AllThreadsSyscall), so the caller
//     must not change the UID before;
//  5. unix.Exec, on the same thread, with nothing in between that needs a
//     capability.
//
// After the exec, the app has exactly the set s in its bounding, permitted,
// effective and inheritable sets, and for a non-root UID also in its ambient
// set (as Docker and runc with ambient capabilities do), so a non-root
// program gets s without file capabilities. A setuid-root or file-capability
// binary the app runs later still cannot go beyond the bounding set.
package caps
