package cgroups

import (
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// MountSpec is one mount(2) call of the pod's cgroup view, as plain data: this
// package mounts nothing. Target, and Source when Flags has MS_BIND, are paths
// inside the pod's root; the caller resolves them under the root it is
// building (filepath-securejoin) and creates Target directories as needed.
// For other mounts Source is the filesystem's device name.
type MountSpec struct {
	Source string  `json:"source"`
	Target string  `json:"target"`
	FSType string  `json:"fstype"`
	Flags  uintptr `json:"flags"`
	Data   string  `json:"data,omitempty"`
}

// cgroupMountRoot is where the pod sees its cgroups.
const cgroupMountRoot = "/sys/fs/cgroup"

const secureFlags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC

// Mounts returns, in order, the mounts that give the pod its view of its
// cgroups at /sys/fs/cgroup. They are meant for the pod's own mount namespace
// and must be computed after the app cgroups are created ([Pod.NewApp]):
// only the pod's child cgroups known then (InitLeaf and the apps) are
// writable inside the pod. The pod cgroup itself stays read-only, so the pod
// cannot raise its own pod-wide limits; apps can change their own limits,
// which stay bounded by the pod's.
//
// v1: a tmpfs at /sys/fs/cgroup; for each hierarchy, the hierarchy mounted at
// /sys/fs/cgroup/<controllers>, each child cgroup of the pod bind-mounted over
// itself there, and the hierarchy remounted read-only; last, the tmpfs
// remounted read-only.
//
// v2: a cgroup2 mount at /sys/fs/cgroup, each child cgroup of the pod
// bind-mounted over itself, and the cgroup2 mount remounted read-only. The
// cgroup2 mount must be done inside a cgroup namespace rooted at the pod
// cgroup (see the package doc), where it shows the pod's subtree only.
// (With the nsdelegate mount option on the host the kernel would protect the
// namespace root by itself; the read-only remount does not depend on it.)
//
// Read-only remounts carry MS_BIND so that they change the mount, not the
// cgroup superblock shared with the host.
func (p *Pod) Mounts() []MountSpec { return p.version().mounts() }

// childBinds bind-mounts each child cgroup of the pod (InitLeaf and the apps)
// over itself below podDir, the pod cgroup in the pod's view.
func (p *Pod) childBinds(podDir string) []MountSpec {
	var ms []MountSpec
	for _, c := range p.children {
		d := path.Join(podDir, c)
		ms = append(ms, MountSpec{Source: d, Target: d, Flags: unix.MS_BIND})
	}
	return ms
}

// readOnly remounts target read-only. The remount carries MS_BIND so that it
// changes the mount, not the cgroup superblock shared with the host.
func readOnly(target string) MountSpec {
	return MountSpec{Target: target, Flags: unix.MS_REMOUNT | unix.MS_BIND | unix.MS_RDONLY | secureFlags}
}

func isController(c string) bool { return !strings.HasPrefix(c, "name=") }

// JoinFiles returns the files through which a process joins the app's
// cgroups from inside the pod (through [Pod.Mounts]) by writing "0" (itself):
// cgroup.procs on v2; on v1 the tasks files, which move only the writing
// thread. The thread that then execs carries its cgroups into the new
// program, and a single-thread move of oneself does not take the kernel's
// cgroup_threadgroup_rwsem, whose write side costs an RCU grace period
// (~10 ms on a VM) per batch of moves.
func (a *App) JoinFiles() []string { return a.p.version().joinFiles(a.name) }

// Mounts returns the mounts that make the app's cgroups writable in the
// pod's view once the pod runs, for an app added to a running pod: [Pod.Mounts]
// made the pod's view read-only except the children known then. Each of the
// app's cgroup directories is bind-mounted over itself and the bind made
// writable (a bind copies the read-only flag of the mount it comes from).
// Paths are the pod's, as in Pod.Mounts.
func (a *App) Mounts() []MountSpec {
	var ms []MountSpec
	for _, f := range a.JoinFiles() {
		d := path.Dir(f)
		ms = append(ms, MountSpec{Source: d, Target: d, Flags: unix.MS_BIND},
			MountSpec{Target: d, Flags: unix.MS_REMOUNT | unix.MS_BIND | secureFlags})
	}
	return ms
}
