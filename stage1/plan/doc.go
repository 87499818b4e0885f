// Package plan decides, from data alone, everything a stage1 does to run a
// pod: the apps stage2 starts (argv, environment, user, confinement, event
// handlers, stop signal, terminal, sd_notify socket), each app's binds and
// read-only root, the files and directories stage1 writes into the pod's root
// (hostname, resolv.conf, hosts), the empty volumes it creates (mode, owner,
// seed source), the namespaced sysctls and the cgroup limits.
//
// Build performs no system call: it reads no file (users and groups come
// through Input.Users), creates nothing and looks at no process state. A
// flavor executes the Plan (stage1/ns does with namespaces and mounts; a KVM
// flavor can share its binds over virtio instead) and fills in only what
// exists once the pod's resources do: cgroup join files, listener fds, the
// network namespace and host paths. The same Input gives the same Plan, so
// the plan is tested with tables (plan_linux_test.go) and every flavor gives
// apps the same view. Linux-only (confinement uses stage2's capability and
// seccomp tables).
package plan
