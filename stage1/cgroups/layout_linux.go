package cgroups

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/eintr"
	"github.com/rkt-ng/rkt/internal/mountinfo"
)

// Mode is the cgroup layout of the host.
type Mode int

const (
	// Legacy is cgroup v1, with or without an (unused) cgroup2 mount beside
	// it ("hybrid").
	Legacy Mode = iota + 1
	// Unified is cgroup v2 only.
	Unified
)

func (m Mode) String() string {
	switch m {
	case Legacy:
		return "v1"
	case Unified:
		return "v2"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// Hierarchy is one mounted cgroup hierarchy.
type Hierarchy struct {
	// Mountpoint is where the hierarchy is mounted.
	Mountpoint string
	// Root is the cgroup shown at Mountpoint, relative to the hierarchy root
	// of our cgroup namespace (mountinfo field 4); "/" for a whole-hierarchy
	// mount.
	Root string
	// Controllers are the v1 controllers bound to the hierarchy, sorted, a
	// named hierarchy as "name=<name>" (e.g. ["cpu", "cpuacct"],
	// ["name=systemd"]). Nil for cgroup2.
	Controllers []string
}

// key identifies a v1 hierarchy: its sorted controllers joined by ",". It is
// "" for cgroup2, as in the "0::" line of /proc/<pid>/cgroup.
func (h Hierarchy) key() string { return strings.Join(h.Controllers, ",") }

// has reports whether the v1 hierarchy carries controller c.
func (h Hierarchy) has(c string) bool { return slices.Contains(h.Controllers, c) }

// dirName is the directory the hierarchy gets under /sys/fs/cgroup inside the
// pod, following the systemd convention ("cpu,cpuacct", "systemd").
func (h Hierarchy) dirName() string {
	names := make([]string, len(h.Controllers))
	for i, c := range h.Controllers {
		names[i] = strings.TrimPrefix(c, "name=")
	}
	return strings.Join(names, ",")
}

// Layout is the detected cgroup layout.
type Layout struct {
	Mode Mode
	// Hierarchies holds one entry per v1 hierarchy (Legacy) or the single
	// cgroup2 mount (Unified).
	Hierarchies []Hierarchy
}

// ErrNoCgroups is returned when no usable cgroup hierarchy is mounted.
var ErrNoCgroups = errors.New("no cgroup hierarchy mounted")

// Detect reads /proc/self/mountinfo and returns the cgroup layout.
func Detect() (*Layout, error) {
	mounts, err := readMountinfo("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return layoutFrom(mounts)
}

// detectUnifiedAt returns a Unified layout for the cgroup2 mounted at dir.
func detectUnifiedAt(dir string) (*Layout, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	dir, err = filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	var st unix.Statfs_t
	if err := eintr.Retry(func() error { return unix.Statfs(dir, &st) }); err != nil {
		return nil, &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		return nil, fmt.Errorf("%s is not a cgroup2 mount (filesystem magic %#x)", dir, st.Type)
	}
	mounts, err := readMountinfo("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	// The last mount at dir is the visible one.
	for i := len(mounts) - 1; i >= 0; i-- {
		if m := mounts[i]; m.fstype == "cgroup2" && m.mountpoint == dir {
			return &Layout{Mode: Unified, Hierarchies: []Hierarchy{{Mountpoint: dir, Root: m.root}}}, nil
		}
	}
	return nil, fmt.Errorf("%s is a cgroup2 directory but not a mount point", dir)
}

// mountinfoEntry is the part of a mountinfo line this package needs.
type mountinfoEntry struct {
	root, mountpoint, fstype, superOpts string
}

func readMountinfo(p string) ([]mountinfoEntry, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	mounts, err := parseMountinfo(f)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", p, err)
	}
	return mounts, nil
}

// parseMountinfo parses proc(5) mountinfo lines (internal/mountinfo),
// keeping cgroup mounts only.
func parseMountinfo(r io.Reader) ([]mountinfoEntry, error) {
	var out []mountinfoEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		m, err := mountinfo.Parse(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if m.FSType != "cgroup" && m.FSType != "cgroup2" {
			continue
		}
		out = append(out, mountinfoEntry{root: m.Root, mountpoint: m.Mountpoint, fstype: m.FSType, superOpts: m.SuperOptions})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// v1NonControllerOpts are cgroup v1 mount options that are not controllers
// (kernel/cgroup/cgroup-v1.c, cgroup1_parse_param).
var v1NonControllerOpts = map[string]bool{
	"rw": true, "ro": true, "none": true, "all": true, "noprefix": true, "xattr": true,
	"clone_children": true, "cpuset_v2_mode": true, "favordynmods": true, "nofavordynmods": true,
}

// v1Controllers returns the sorted controllers of a v1 mount's super options.
func v1Controllers(superOpts string) []string {
	var cs []string
	for o := range strings.SplitSeq(superOpts, ",") {
		switch {
		case o == "" || v1NonControllerOpts[o]:
		case strings.HasPrefix(o, "name="):
			cs = append(cs, o)
		case strings.Contains(o, "="): // release_agent=..., etc.
		default:
			cs = append(cs, o)
		}
	}
	slices.Sort(cs)
	return slices.Compact(cs)
}

// layoutFrom picks the layout from the cgroup mounts. Any v1 hierarchy with a
// real controller makes the layout Legacy; otherwise a cgroup2 mount makes it
// Unified. Of several mounts of one hierarchy the one showing the largest part
// of it (shortest root), and among those the first, is kept.
func layoutFrom(mounts []mountinfoEntry) (*Layout, error) {
	var v1, v2 []Hierarchy
	realV1 := false
	for _, m := range mounts {
		switch m.fstype {
		case "cgroup":
			cs := v1Controllers(m.superOpts)
			if len(cs) == 0 {
				continue
			}
			for _, c := range cs {
				if !strings.HasPrefix(c, "name=") {
					realV1 = true
				}
			}
			v1 = addHierarchy(v1, Hierarchy{Mountpoint: m.mountpoint, Root: m.root, Controllers: cs})
		case "cgroup2":
			v2 = addHierarchy(v2, Hierarchy{Mountpoint: m.mountpoint, Root: m.root})
		}
	}
	switch {
	case realV1:
		return &Layout{Mode: Legacy, Hierarchies: v1}, nil
	case len(v2) > 0:
		return &Layout{Mode: Unified, Hierarchies: v2[:1]}, nil
	}
	return nil, ErrNoCgroups
}

func addHierarchy(hs []Hierarchy, h Hierarchy) []Hierarchy {
	for i, o := range hs {
		if o.key() != h.key() {
			continue
		}
		if len(h.Root) < len(o.Root) {
			hs[i] = h
		}
		return hs
	}
	return append(hs, h)
}

// procCgroups maps hierarchy keys (see Hierarchy.key; "" for cgroup2) to cgroup
// paths, parsed from /proc/<pid>/cgroup ("hierarchy-ID:controllers:path").
type procCgroups map[string]string

func readProcCgroups(pid int) (procCgroups, error) {
	p := "/proc/self/cgroup"
	if pid != 0 {
		p = "/proc/" + strconv.Itoa(pid) + "/cgroup"
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	pc, err := parseProcCgroups(b)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", p, err)
	}
	return pc, nil
}

func parseProcCgroups(b []byte) (procCgroups, error) {
	pc := procCgroups{}
	for n, line := range bytes.Split(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		id, rest, ok1 := strings.Cut(string(line), ":")
		ctrls, p, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("line %d: want ID:CONTROLLERS:PATH, got %q", n+1, line)
		}
		if _, err := strconv.ParseUint(id, 10, 32); err != nil {
			return nil, fmt.Errorf("line %d: bad hierarchy ID %q", n+1, id)
		}
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("line %d: cgroup path %q is not absolute", n+1, p)
		}
		var key string
		if ctrls != "" {
			cs := strings.Split(ctrls, ",")
			slices.Sort(cs)
			key = strings.Join(cs, ",")
		} else if id != "0" {
			return nil, fmt.Errorf("line %d: v1 hierarchy %s without controllers", n+1, id)
		}
		pc[key] = p
	}
	return pc, nil
}

// dirOf returns the directory of cgroup rel (relative to the root of the
// hierarchy as our cgroup namespace sees it) under h's mount point.
func (h Hierarchy) dirOf(rel string) (string, error) {
	root := path.Clean(h.Root)
	if root != "/" && rel != root && !strings.HasPrefix(rel, root+"/") {
		return "", fmt.Errorf("cgroup %s is outside the part %s of the hierarchy mounted at %s", rel, root, h.Mountpoint)
	}
	return filepath.Join(h.Mountpoint, strings.TrimPrefix(rel, root)), nil
}
