// Package cgroups creates and removes the cgroups of a pod run by the namespace
// stage1, applies resource limits to them, and describes how the pod sees its
// own cgroups. It is Linux-only.
//
// # Layouts
//
// Two layouts are supported, detected from /proc/self/mountinfo ([Detect]):
//
//   - [Legacy]: cgroup v1 controllers, each hierarchy mounted somewhere
//     (usually /sys/fs/cgroup/<controller>). A "hybrid" host that also mounts
//     an empty cgroup2 (/sys/fs/cgroup/unified) is Legacy: the cgroup2 there
//     has no controllers and is not used.
//   - [Unified]: a cgroup2 hierarchy (usually /sys/fs/cgroup) and no v1
//     controller hierarchy.
//
// Mount points are taken from mountinfo, so a hierarchy may be mounted
// anywhere; [WithUnifiedMount] forces the use of one particular cgroup2 mount.
//
// # Tree
//
// The pod cgroup is created below the cgroup of the calling process (per
// hierarchy on v1, the "0::" line on v2, both from /proc/self/cgroup), so a
// pod started from a systemd unit stays inside the unit's cgroup:
//
//	<parent>/rkt-<name>              pod: pod-wide limits
//	<parent>/rkt-<name>/init.scope   leaf for the pod's own processes (stage1, stage2)
//	<parent>/rkt-<name>/<app>        one per app: app limits, OOM accounting
//
// The init leaf is named "init.scope" because that can never be an appc app
// name (AC Names contain no dots). Using a leaf satisfies the cgroup v2 "no
// internal processes" rule (cgroup-v2.rst, "No Internal Process Constraint"):
// on v2 controllers are enabled in the pod's cgroup.subtree_control, which is
// only allowed while the pod cgroup holds no process itself. The same tree is
// used on v1 for uniformity.
//
// On v2, NewPod enables the controllers this package knows (cpu, cpuset, io,
// memory, pids, hugetlb) in the parent's cgroup.subtree_control where the
// parent offers them. That fails with EBUSY if the parent is not the root
// cgroup and holds processes (for example rkt itself, run from a plain systemd
// service without Delegate=yes); such a controller is then reported by
// [Pod.Controllers] as missing, logged, and a limit that needs it fails with a
// [*ControllerError] (errors.Is(err, [ErrNoController])).
//
// # Cgroup namespace (v2)
//
// On v2 the pod sees its cgroups through a cgroup namespace rooted at the pod
// cgroup ([Pod.Mounts]). A cgroup namespace is rooted at the cgroup of the
// process that creates it, so the caller must:
//
//  1. call [NewPod];
//  2. move a process into the pod cgroup itself with [Pod.Enter] (possible
//     because the pod's subtree_control is still empty);
//  3. from that process, create the pod's init with CLONE_NEWCGROUP (for a Go
//     program: exec.Cmd.SysProcAttr.Cloneflags, since clone(2) roots the new
//     namespace at the parent's cgroup, not at a CLONE_INTO_CGROUP target);
//  4. call [Pod.EnableControllers] (or [Pod.NewApp], which calls it): every
//     process still in the pod cgroup is moved to init.scope and the
//     controllers are enabled for the apps.
//
// Apps known before step 2 are declared with [Pod.PlanApp], which creates
// nothing on v2 until step 4 (EnableControllers creates them and applies
// their limits), so that [Pod.Mounts] can be computed before the clone.
//
// [Pod.Mounts] keeps the pod cgroup itself read-only inside the pod (only its
// children are writable), so the pod cannot raise its own pod-wide limits
// whether or not the host mounted cgroup2 with nsdelegate.
//
// # Recording and removal
//
// [Pod.Path] is what stage1 writes to the pod directory's "subcgroup" file and
// [Open] parses it back for gc. [Pod.Remove] kills every process left in the
// pod's cgroups (cgroup.kill on v2 when the kernel has it, SIGKILL through
// pidfds otherwise), waits a bounded time for them to go, and removes the
// cgroup directories bottom-up. It is idempotent.
package cgroups
