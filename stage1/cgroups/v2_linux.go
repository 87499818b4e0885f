package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// v2Controllers are the cgroup v2 controllers delegated to the pod when the
// parent offers them.
var v2Controllers = []string{"cpu", "cpuset", "hugetlb", "io", "memory", "pids"}

// threadedControllers are the v2 controllers the kernel lets a cgroup that
// holds processes enable for its children (cgroup-v2.rst, "Threaded
// Controllers"); doing so makes it a thread root, where domain controllers
// (memory, io, hugetlb) can then no longer be enabled (EOPNOTSUPP).
var threadedControllers = []string{"cpu", "cpuset", "pids"}

// v2 is a pod on cgroup v2: one cgroup, dirs[0].
type v2 struct{ p *Pod }

func (v v2) dir() cgDir { return v.p.dirs[0] }

func (v v2) uses(Hierarchy) bool { return true }

func (v v2) notIn(Hierarchy) error {
	return errors.New("read own cgroups: no cgroup2 (0::) entry")
}

// delegate enables v2Controllers in the parent's cgroup.subtree_control,
// recording in p.missing the ones that cannot be. Domain controllers go
// first: if the parent holds processes the kernel refuses them (EBUSY), and
// then nothing else is written, so that the parent (typically the cgroup of
// the service that started rkt) is not turned into a thread root with half
// the controllers.
func (v v2) delegate() {
	p := v.p
	parent := filepath.Dir(v.dir().dir)
	avail, err := readFields(filepath.Join(parent, "cgroup.controllers"))
	if err != nil {
		for _, c := range v2Controllers {
			p.missing[c] = err
		}
		return
	}
	enabled, err := readFields(filepath.Join(parent, "cgroup.subtree_control"))
	if err != nil {
		for _, c := range v2Controllers {
			p.missing[c] = err
		}
		return
	}
	order := slices.Clone(v2Controllers)
	slices.SortStableFunc(order, func(a, b string) int {
		ta, tb := slices.Contains(threadedControllers, a), slices.Contains(threadedControllers, b)
		switch {
		case ta == tb:
			return 0
		case tb:
			return -1
		}
		return 1
	})
	var refused error
	for _, c := range order {
		switch {
		case slices.Contains(enabled, c):
		case !slices.Contains(avail, c):
			p.missing[c] = fmt.Errorf("not offered by parent cgroup %s (not in its cgroup.controllers)", parent)
		case refused != nil:
			p.missing[c] = refused
		default:
			err := writeFile(filepath.Join(parent, "cgroup.subtree_control"), "+"+c)
			if err == nil {
				continue
			}
			if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EOPNOTSUPP) {
				err = fmt.Errorf("%w (the parent cgroup holds processes; run rkt from a leaf of a delegated cgroup)", err)
				refused = fmt.Errorf("cannot delegate from parent: %w", err)
			}
			p.missing[c] = fmt.Errorf("cannot delegate from parent: %w", err)
			p.log.Warn("cannot delegate cgroup controller to pod", "controller", c, "cgroup", parent, "error", err)
		}
	}
}

func (v v2) controllers() []string {
	have, _ := readFields(filepath.Join(v.dir().dir, "cgroup.controllers"))
	return have
}

// enable enables the controllers the pod cgroup has for its children.
func (v v2) enable() error {
	dir := v.dir().dir
	avail, err := readFields(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("enable pod cgroup controllers: %w", err)
	}
	enabled, err := readFields(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return fmt.Errorf("enable pod cgroup controllers: %w", err)
	}
	var add []string
	for _, c := range v2Controllers {
		if slices.Contains(avail, c) && !slices.Contains(enabled, c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	if err := writeFile(filepath.Join(dir, "cgroup.subtree_control"), strings.Join(add, " ")); err != nil {
		return fmt.Errorf("enable controllers %s in pod cgroup: %w", strings.Join(add, " "), err)
	}
	return nil
}

func (v v2) defersApps() bool { return true }

func (v v2) checkControllers(l Limits) error {
	d := v.dir()
	avail, err := readFields(filepath.Join(d.dir, "cgroup.controllers"))
	if err != nil {
		return err
	}
	for _, c := range l.controllers() {
		if !slices.Contains(avail, c) {
			return &ControllerError{Controller: c, Cgroup: d.rel, Err: v.p.missing[c]}
		}
	}
	return nil
}

func (v v2) limitWrites(l Limits) []limitWrite {
	var ws []limitWrite
	if l.MemoryBytes != nil {
		ws = append(ws, limitWrite{"memory", "memory.max", maxOr(*l.MemoryBytes)})
	}
	if l.CPUMilli != nil {
		q := "max"
		if *l.CPUMilli >= 0 {
			q = strconv.FormatInt(MilliToQuota(*l.CPUMilli), 10)
		}
		ws = append(ws, limitWrite{"cpu", "cpu.max", q + " " + strconv.Itoa(CFSPeriodUS)})
	}
	if l.CPUShares != nil {
		ws = append(ws, limitWrite{"cpu", "cpu.weight", strconv.FormatUint(SharesToWeight(*l.CPUShares), 10)})
	}
	if l.PidsMax != nil {
		ws = append(ws, limitWrite{"pids", "pids.max", maxOr(*l.PidsMax)})
	}
	return ws
}

func (v v2) controllerDir(c, sub string) (string, error) {
	d := v.dir()
	dir := filepath.Join(d.dir, sub)
	avail, err := readFields(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return "", err
	}
	if !slices.Contains(avail, c) {
		return "", &ControllerError{Controller: c, Cgroup: path.Join(d.rel, sub), Err: v.p.missing[c]}
	}
	return dir, nil
}

// restrictDevices attaches an eBPF device program to the pod cgroup, which
// covers everything below it; the kernel refuses programs where BPF is
// unavailable.
func (v v2) restrictDevices() error {
	if err := attachDeviceFilter(v.dir().dir); err != nil {
		return fmt.Errorf("%w: %v", ErrNoDevicePolicy, err)
	}
	return nil
}

// appMade: the pod's device program covers its apps already.
func (v v2) appMade(string) error { return nil }

// readOOM reads memory.events; without it the app has no memory controller.
func (v v2) readOOM(name string) ([]byte, string, error) {
	file := filepath.Join(v.dir().dir, name, "memory.events")
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, file, &ControllerError{Controller: "memory", Cgroup: path.Join(v.dir().rel, name), Err: err}
	}
	return b, file, err
}

// killFile is cgroup.kill (Linux 5.14), which kills the whole subtree, forks
// included.
func (v v2) killFile() string {
	if f := filepath.Join(v.dir().dir, "cgroup.kill"); exists(f) {
		return f
	}
	return ""
}

// mounts: a cgroup2 mount at /sys/fs/cgroup, each child cgroup of the pod
// bind-mounted over itself, and the cgroup2 mount remounted read-only. The
// cgroup2 mount must be done inside a cgroup namespace rooted at the pod
// cgroup (see the package doc), where it shows the pod's subtree only.
// (With the nsdelegate mount option on the host the kernel would protect the
// namespace root by itself; the read-only remount does not depend on it.)
func (v v2) mounts() []MountSpec {
	ms := []MountSpec{{
		Source: "cgroup2", Target: cgroupMountRoot, FSType: "cgroup2",
		Flags: secureFlags | unix.MS_RELATIME,
	}}
	ms = append(ms, v.p.childBinds(cgroupMountRoot)...)
	return append(ms, readOnly(cgroupMountRoot))
}

// joinFiles: cgroup.procs in the pod's cgroup namespace.
func (v v2) joinFiles(name string) []string {
	return []string{path.Join(cgroupMountRoot, name, "cgroup.procs")}
}
