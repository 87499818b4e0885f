// Package ns is the namespace-based stage1 flavor. Its run entrypoint keeps
// the PID of `rkt run` (stage0 execs it), creates the pod's mount, PID, UTS
// and IPC namespaces (and network namespace through CNI) for a child that
// prepares the pod's mounts and pivot_roots into the stage1 rootfs, then
// becomes the stage2 init. The child dies with the run process (Pdeathsig), so
// no process of a pod outlives `rkt run`, even under SIGKILL; whatever the run
// process could not clean up then is found by the gc entrypoint through the
// records in the pod directory.
//
// What the pod runs is decided by stage1/plan, without system calls; this
// package executes that plan (plan_linux.go: files written as the pod's root,
// empty volumes, cgroups, the setup child's binds) and starts the pod's first
// process through internal/reexec. Linux-only.
package ns
