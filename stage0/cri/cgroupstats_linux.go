package cri

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/mountinfo"
	"github.com/rkt-ng/rkt/internal/untrusted"
)

// cgroupDirs are the host directories of one cgroup (a pod's, or an
// app's below it): the unified one (v2), or one per v1 controller.
type cgroupDirs struct {
	unified string
	v1      map[string]string // controller -> dir
}

// maxSubcgroupBytes bounds the subcgroup file read back.
const maxSubcgroupBytes = 4096

// podCgroups reads a pod's subcgroup file (docs/stage1-abi.md: one
// absolute path, or CONTROLLERS:PATH lines) and finds the directories on
// the host's cgroup mounts. Each path must be clean, absolute and end in
// a pod cgroup name (rkt-...).
func podCgroups(subcgroupFile string) (cgroupDirs, error) {
	b, err := untrusted.ReadFile(subcgroupFile, maxSubcgroupBytes)
	if err != nil {
		return cgroupDirs{}, err
	}
	mounts, err := mountinfo.Read()
	if err != nil {
		return cgroupDirs{}, err
	}
	check := func(p string) error {
		if !path.IsAbs(p) || path.Clean(p) != p || !strings.HasPrefix(path.Base(p), "rkt-") {
			return fmt.Errorf("subcgroup path %q: not a pod cgroup", p)
		}
		return nil
	}
	under := func(m mountinfo.Mount, p string) string {
		rel, ok := strings.CutPrefix(p, strings.TrimSuffix(m.Root, "/"))
		if !ok || (rel != "" && !strings.HasPrefix(rel, "/")) {
			return ""
		}
		return filepath.Join(m.Mountpoint, rel)
	}
	d := cgroupDirs{v1: map[string]string{}}
	s := strings.TrimSpace(string(b))
	if strings.HasPrefix(s, "/") {
		if err := check(s); err != nil {
			return d, err
		}
		for _, m := range mounts {
			if m.FSType == "cgroup2" {
				if dir := under(m, s); dir != "" {
					d.unified = dir
					break
				}
			}
		}
		for _, m := range mounts {
			if m.FSType == "cgroup" {
				for _, c := range strings.Split(m.SuperOptions, ",") {
					if dir := under(m, s); dir != "" && (c == "cpu" || c == "cpuacct" || c == "memory") {
						d.v1[c] = dir
					}
				}
			}
		}
	} else {
		for line := range strings.SplitSeq(s, "\n") {
			key, p, ok := strings.Cut(line, ":")
			if !ok {
				return d, fmt.Errorf("subcgroup line %q: want CONTROLLERS:PATH", line)
			}
			if err := check(p); err != nil {
				return d, err
			}
			for _, c := range strings.Split(key, ",") {
				for _, m := range mounts {
					if m.FSType == "cgroup" && containsOpt(m.SuperOptions, c) {
						if dir := under(m, p); dir != "" {
							d.v1[c] = dir
						}
					}
				}
			}
		}
	}
	if d.unified == "" && d.v1["cpuacct"] == "" && d.v1["memory"] == "" {
		return d, errors.New("no cpu or memory cgroup of the pod is mounted")
	}
	return d, nil
}

func containsOpt(opts, o string) bool {
	for _, x := range strings.Split(opts, ",") {
		if x == o {
			return true
		}
	}
	return false
}

// child is the cgroup of an app below the pod's.
func (d cgroupDirs) child(name string) cgroupDirs {
	c := cgroupDirs{v1: map[string]string{}}
	if d.unified != "" {
		c.unified = filepath.Join(d.unified, name)
	}
	for k, v := range d.v1 {
		c.v1[k] = filepath.Join(v, name)
	}
	return c
}

// usage is what a cgroup reports of its CPU and memory.
type usage struct {
	cpuNanos                  uint64
	memUsage, workingSet, rss uint64
	pageFaults, majorFaults   uint64
	haveCPU, haveMem, haveRSS bool
}

// read reads a cgroup's CPU and memory usage: cgroup v2's cpu.stat and
// memory.current/memory.stat, or v1's cpuacct.usage and memory's
// usage_in_bytes/memory.stat. The working set is the usage less the
// inactive file pages, as the kubelet computes it.
func (d cgroupDirs) read() (usage, error) {
	var u usage
	stat := map[string]uint64{}
	readStat := func(p string) {
		b, err := untrusted.ReadFile(p, 64<<10)
		if err != nil {
			return
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), " ")
			if n, err := strconv.ParseUint(v, 10, 64); ok && err == nil {
				stat[k] = n
			}
		}
	}
	readUint := func(p string) (uint64, bool) {
		b, err := untrusted.ReadFile(p, 64)
		if err != nil {
			return 0, false
		}
		n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		return n, err == nil
	}
	var inactive uint64
	if d.unified != "" {
		if _, err := os.Stat(d.unified); err != nil {
			return u, err
		}
		readStat(filepath.Join(d.unified, "cpu.stat"))
		if v, ok := stat["usage_usec"]; ok {
			u.cpuNanos, u.haveCPU = v*1000, true
		}
		if v, ok := readUint(filepath.Join(d.unified, "memory.current")); ok {
			u.memUsage, u.haveMem = v, true
		}
		clear(stat)
		readStat(filepath.Join(d.unified, "memory.stat"))
		inactive = stat["inactive_file"]
		u.rss, u.haveRSS = stat["anon"], true
		u.pageFaults, u.majorFaults = stat["pgfault"], stat["pgmajfault"]
	}
	if dir := d.v1["cpuacct"]; dir != "" && !u.haveCPU {
		if v, ok := readUint(filepath.Join(dir, "cpuacct.usage")); ok {
			u.cpuNanos, u.haveCPU = v, true
		}
	}
	if dir := d.v1["memory"]; dir != "" && !u.haveMem {
		if v, ok := readUint(filepath.Join(dir, "memory.usage_in_bytes")); ok {
			u.memUsage, u.haveMem = v, true
		}
		clear(stat)
		readStat(filepath.Join(dir, "memory.stat"))
		inactive = stat["total_inactive_file"]
		u.rss, u.haveRSS = stat["total_rss"], true
		u.pageFaults, u.majorFaults = stat["total_pgfault"], stat["total_pgmajfault"]
	}
	if !u.haveCPU && !u.haveMem {
		return u, errors.New("no cpu or memory statistics")
	}
	u.workingSet = u.memUsage
	if inactive < u.workingSet {
		u.workingSet -= inactive
	} else {
		u.workingSet = 0
	}
	return u, nil
}

// oomKilled reports whether the kernel's OOM killer killed a process of
// the cgroup: oom_kill of cgroup v2's memory.events, or of v1's
// memory.oom_control.
func (d cgroupDirs) oomKilled() bool {
	var files []string
	if d.unified != "" {
		files = append(files, filepath.Join(d.unified, "memory.events"))
	}
	if dir := d.v1["memory"]; dir != "" {
		files = append(files, filepath.Join(dir, "memory.oom_control"))
	}
	for _, f := range files {
		b, err := untrusted.ReadFile(f, 4096)
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
				if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil && n > 0 {
					return true
				}
			}
		}
	}
	return false
}

// unixNoFollow refuses a symlink in place of a cgroup file.
const unixNoFollow = unix.O_NOFOLLOW

// unlimited is where a v1 memory limit means none.
const unlimited = 1 << 62

// limits reads a cgroup's memory and CPU limits back (0 for none).
func (d cgroupDirs) limits() (limitsMeta, bool) {
	var l limitsMeta
	read := func(p string) (string, bool) {
		b, err := untrusted.ReadFile(p, 128)
		return strings.TrimSpace(string(b)), err == nil
	}
	num := func(s string) int64 {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 || n >= unlimited {
			return 0
		}
		return n
	}
	found := false
	if d.unified != "" {
		if v, ok := read(filepath.Join(d.unified, "memory.max")); ok {
			l.MemoryBytes, found = num(v), true
		}
		if v, ok := read(filepath.Join(d.unified, "cpu.max")); ok {
			q, p, _ := strings.Cut(v, " ")
			l.CPUQuota, l.CPUPeriod, found = num(q), num(p), true
		}
		if v, ok := read(filepath.Join(d.unified, "cpu.weight")); ok {
			if w := num(v); w > 0 {
				// The inverse of the kubelet's shares-to-weight mapping.
				l.CPUShares = 2 + ((w-1)*262142)/9999
			}
			found = true
		}
	}
	if dir := d.v1["memory"]; dir != "" && l.MemoryBytes == 0 {
		if v, ok := read(filepath.Join(dir, "memory.limit_in_bytes")); ok {
			l.MemoryBytes, found = num(v), true
		}
	}
	if dir := d.v1["cpu"]; dir != "" && d.unified == "" {
		if v, ok := read(filepath.Join(dir, "cpu.shares")); ok {
			l.CPUShares, found = num(v), true
		}
		if v, ok := read(filepath.Join(dir, "cpu.cfs_quota_us")); ok {
			l.CPUQuota = num(v)
		}
		if v, ok := read(filepath.Join(dir, "cpu.cfs_period_us")); ok {
			l.CPUPeriod = num(v)
		}
	}
	return l, found
}

// setLimits writes the non-zero limits of l to a cgroup: cgroup v2's
// memory.max, cpu.weight and cpu.max, or v1's memory.limit_in_bytes,
// cpu.shares, cpu.cfs_period_us and cpu.cfs_quota_us.
func (d cgroupDirs) setLimits(l limitsMeta) error {
	write := func(dir, file, v string) error {
		if dir == "" {
			return fmt.Errorf("no cgroup for %s", file)
		}
		f, err := os.OpenFile(filepath.Join(dir, file), os.O_WRONLY|unixNoFollow, 0)
		if err != nil {
			return err
		}
		_, err = f.WriteString(v)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", file, err)
		}
		return nil
	}
	period := l.CPUPeriod
	if period == 0 {
		period = 100000
	}
	if d.unified != "" {
		if l.MemoryBytes > 0 {
			if err := write(d.unified, "memory.max", strconv.FormatInt(l.MemoryBytes, 10)); err != nil {
				return err
			}
		}
		if l.CPUShares > 0 {
			w := 1 + ((min(max(l.CPUShares, 2), 262144)-2)*9999)/262142
			if err := write(d.unified, "cpu.weight", strconv.FormatInt(w, 10)); err != nil {
				return err
			}
		}
		if l.CPUQuota != 0 {
			q := "max"
			if l.CPUQuota > 0 {
				q = strconv.FormatInt(l.CPUQuota, 10)
			}
			if err := write(d.unified, "cpu.max", q+" "+strconv.FormatInt(period, 10)); err != nil {
				return err
			}
		}
		return nil
	}
	if l.MemoryBytes > 0 {
		if err := write(d.v1["memory"], "memory.limit_in_bytes", strconv.FormatInt(l.MemoryBytes, 10)); err != nil {
			return err
		}
	}
	if l.CPUShares > 0 {
		if err := write(d.v1["cpu"], "cpu.shares", strconv.FormatInt(min(max(l.CPUShares, 2), 262144), 10)); err != nil {
			return err
		}
	}
	if l.CPUQuota != 0 {
		if err := write(d.v1["cpu"], "cpu.cfs_period_us", strconv.FormatInt(period, 10)); err != nil {
			return err
		}
		q := l.CPUQuota
		if q < 0 {
			q = -1
		}
		if err := write(d.v1["cpu"], "cpu.cfs_quota_us", strconv.FormatInt(q, 10)); err != nil {
			return err
		}
	}
	return nil
}
