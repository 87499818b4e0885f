package cgroups

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
)

// v1 is a pod on cgroup v1: one cgroup per used hierarchy.
type v1 struct{ p *Pod }

// uses: see usedV1.
func (v v1) uses(h Hierarchy) bool { return usedV1(h) }

func (v v1) notIn(h Hierarchy) error {
	v.p.log.Warn("process is in no cgroup of hierarchy, skipping it", "controllers", h.key(), "mountpoint", h.Mountpoint)
	return nil
}

func (v v1) delegate() {}

func (v v1) controllers() []string {
	var have []string
	for _, d := range v.p.dirs {
		have = append(have, d.h.Controllers...)
	}
	return have
}

func (v v1) enable() error { return nil }

func (v v1) defersApps() bool { return false }

func (v v1) checkControllers(Limits) error { return nil }

func (v v1) limitWrites(l Limits) []limitWrite {
	var ws []limitWrite
	if l.MemoryBytes != nil {
		ws = append(ws, limitWrite{"memory", "memory.limit_in_bytes", strconv.FormatInt(max(*l.MemoryBytes, -1), 10)})
	}
	if l.CPUMilli != nil {
		// The period first: the quota is checked against it.
		ws = append(ws,
			limitWrite{"cpu", "cpu.cfs_period_us", strconv.Itoa(CFSPeriodUS)},
			limitWrite{"cpu", "cpu.cfs_quota_us", strconv.FormatInt(MilliToQuota(*l.CPUMilli), 10)})
	}
	if l.CPUShares != nil {
		s := min(max(*l.CPUShares, minShares), maxShares)
		ws = append(ws, limitWrite{"cpu", "cpu.shares", strconv.FormatUint(s, 10)})
	}
	if l.PidsMax != nil {
		ws = append(ws, limitWrite{"pids", "pids.max", maxOr(*l.PidsMax)})
	}
	return ws
}

func (v v1) controllerDir(c, sub string) (string, error) {
	d, ok := v.dir(c)
	if !ok {
		return "", &ControllerError{Controller: c, Cgroup: path.Join(v.p.dirs[0].rel, sub), Err: errors.New("no v1 hierarchy with this controller is mounted")}
	}
	return filepath.Join(d.dir, sub), nil
}

// dir returns the pod cgroup in the hierarchy of controller.
func (v v1) dir(controller string) (cgDir, bool) {
	for _, d := range v.p.dirs {
		if d.h.has(controller) {
			return d, true
		}
	}
	return cgDir{}, false
}

// restrictDevices: v1 refuses a blanket deny on a cgroup that has children,
// so the policy goes on the leaves: the init leaf now and every app made
// afterwards (appMade).
func (v v1) restrictDevices() error {
	if _, ok := v.dir("devices"); !ok {
		return &ControllerError{Controller: "devices", Cgroup: v.p.dirs[0].rel, Err: ErrNoController}
	}
	v.p.closedDevices = true
	return v.restrictChild(InitLeaf)
}

func (v v1) appMade(name string) error {
	if !v.p.closedDevices {
		return nil
	}
	return v.restrictChild(name)
}

// restrictChild denies every device to the pod's child cgroup, then allows
// allowedDevices.
func (v v1) restrictChild(child string) error {
	d, ok := v.dir("devices")
	if !ok {
		return nil
	}
	dir := filepath.Join(d.dir, child)
	if err := writeFile(filepath.Join(dir, "devices.deny"), "a"); err != nil {
		return fmt.Errorf("device policy of %s: %w", child, err)
	}
	for _, rule := range allowedDevices {
		if err := writeFile(filepath.Join(dir, "devices.allow"), rule); err != nil {
			return fmt.Errorf("device policy of %s: allow %q: %w", child, rule, err)
		}
	}
	return nil
}

// readOOM reads memory.oom_control, whose oom_kill counter needs Linux 4.13.
func (v v1) readOOM(name string) ([]byte, string, error) {
	d, ok := v.dir("memory")
	if !ok {
		return nil, "", &ControllerError{Controller: "memory", Cgroup: v.p.dirs[0].rel}
	}
	file := filepath.Join(d.dir, name, "memory.oom_control")
	b, err := os.ReadFile(file)
	return b, file, err
}

// killFile: v1 has no cgroup.kill; Remove signals each process.
func (v v1) killFile() string { return "" }

// mounts: a tmpfs at /sys/fs/cgroup; for each hierarchy, the hierarchy
// mounted at /sys/fs/cgroup/<controllers>, each child cgroup of the pod
// bind-mounted over itself there, and the hierarchy remounted read-only;
// last, the tmpfs remounted read-only.
func (v v1) mounts() []MountSpec {
	ms := []MountSpec{{
		Source: "tmpfs", Target: cgroupMountRoot, FSType: "tmpfs",
		Flags: secureFlags, Data: "mode=755",
	}}
	for _, d := range v.p.dirs {
		target := path.Join(cgroupMountRoot, d.h.dirName())
		data := d.h.key()
		if !slices.ContainsFunc(d.h.Controllers, isController) {
			// A named hierarchy without controllers: without "none" the
			// kernel would try to bind every controller.
			data = "none," + data
		}
		ms = append(ms, MountSpec{Source: "cgroup", Target: target, FSType: "cgroup", Flags: secureFlags, Data: data})
		// Without a cgroup namespace the new mount shows the hierarchy from
		// the root of our namespace, which is what d.rel is relative to.
		ms = append(ms, v.p.childBinds(path.Join(target, d.rel))...)
		ms = append(ms, readOnly(target))
	}
	return append(ms, readOnly(cgroupMountRoot))
}

// joinFiles: the tasks files, which move only the writing thread (see
// [App.JoinFiles]).
func (v v1) joinFiles(name string) []string {
	out := make([]string, 0, len(v.p.dirs))
	for _, d := range v.p.dirs {
		out = append(out, path.Join(cgroupMountRoot, d.h.dirName(), d.rel, name, "tasks"))
	}
	return out
}

// usedV1 reports whether a v1 hierarchy carries something a pod uses: its
// limits (memory, cpu, pids), accounting (cpuacct), device policy
// (devices), or systemd's tracking (name=systemd). Pods get no cgroup in
// the others (cpuset, blkio, freezer, net_cls, perf_event, hugetlb, ...):
// every cgroup made costs mkdir, rmdir and, for the processes put there,
// migrations on every pod start.
func usedV1(h Hierarchy) bool {
	for _, c := range []string{"memory", "cpu", "cpuacct", "pids", "devices", "name=systemd"} {
		if h.has(c) {
			return true
		}
	}
	return false
}

// initCpuset gives a new v1 cpuset cgroup its parent's cpus and mems: they
// start empty (unless cgroup.clone_children is set) and a cgroup with empty
// sets refuses processes with ENOSPC (cgroup-v1/cpusets.rst).
func initCpuset(h Hierarchy, dir string) error {
	if !h.has("cpuset") {
		return nil
	}
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		cur, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(cur)) > 0 {
			continue
		}
		parent, err := os.ReadFile(filepath.Join(filepath.Dir(dir), f))
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dir, f), string(bytes.TrimSpace(parent))); err != nil {
			return err
		}
	}
	return nil
}
