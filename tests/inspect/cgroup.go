package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// mountInfo is one line of /proc/self/mountinfo (proc(5)).
type mountInfo struct {
	root, mountPoint, opts, optional, fsType, source, superOpts string
}

// parseMountInfo parses /proc/<pid>/mountinfo. Paths stay octal-escaped as
// the kernel writes them ("\040" for a space).
func parseMountInfo(data string) ([]mountInfo, error) {
	var out []mountInfo
	for _, line := range strings.Split(data, "\n") {
		if line == "" {
			continue
		}
		pre, post, ok := strings.Cut(line, " - ")
		// One space separates fields; a source may be empty (proc(5)).
		f, g := strings.Fields(pre), strings.Split(post, " ")
		if !ok || len(f) < 6 || len(g) != 3 {
			return nil, fmt.Errorf("mountinfo: malformed line %q", line)
		}
		out = append(out, mountInfo{
			root: f[3], mountPoint: f[4], opts: f[5], optional: strings.Join(f[6:], ","),
			fsType: g[0], source: g[1], superOpts: g[2],
		})
	}
	return out, nil
}

func readMountInfo() ([]mountInfo, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return parseMountInfo(string(b))
}

func printMounts() error {
	mi, err := readMountInfo()
	if err != nil {
		return err
	}
	for _, m := range mi {
		prop := m.optional
		if prop == "" {
			prop = "private"
		}
		fmt.Printf("MOUNT=%s fstype=%s source=%s root=%s opts=%s super=%s propagation=%s\n",
			m.mountPoint, m.fsType, m.source, m.root, m.opts, m.superOpts, prop)
	}
	return nil
}

// unescapeMount undoes the octal escapes of mountinfo paths.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cgroupDir finds the directory of this process's own cgroup for a v1
// controller (for example "memory" or "cpu") that holds file, or, when the
// controller has no v1 hierarchy, the cgroup v2 directory holding file2.
// It reports whether the directory is a v2 one.
//
// The own cgroup path comes from /proc/self/cgroup and is relative to the
// root of the cgroup namespace; the mount's root field says which part of the
// hierarchy is mounted. A runtime may also bind-mount the pod's cgroup over
// the hierarchy's mount point without a cgroup namespace, so the mount point
// itself is the last candidate.
func cgroupDir(controller, file, file2 string) (dir string, v2 bool, err error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", false, err
	}
	mounts, err := readMountInfo()
	if err != nil {
		return "", false, err
	}
	var v1Path, v2Path string
	haveV2 := false
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2Path, haveV2 = parts[2], true
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				v1Path = parts[2]
			}
		}
	}
	if v1Path != "" {
		for _, m := range mounts {
			if m.fsType != "cgroup" || !hasOpt(m.superOpts, controller) {
				continue
			}
			if d, ok := findCgroupFile(m, v1Path, file); ok {
				return d, false, nil
			}
		}
	}
	if haveV2 {
		for _, m := range mounts {
			if m.fsType != "cgroup2" {
				continue
			}
			if d, ok := findCgroupFile(m, v2Path, file2); ok {
				return d, true, nil
			}
		}
	}
	return "", false, fmt.Errorf("no cgroup directory with %s or %s for this process", file, file2)
}

func hasOpt(opts, name string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == name {
			return true
		}
	}
	return false
}

func findCgroupFile(m mountInfo, own, file string) (string, bool) {
	mp, root := unescapeMount(m.mountPoint), unescapeMount(m.root)
	var cands []string
	if rel, ok := strings.CutPrefix(own, root); ok && (root == "/" || rel == "" || strings.HasPrefix(rel, "/")) {
		cands = append(cands, filepath.Join(mp, rel))
	}
	cands = append(cands, filepath.Join(mp, own), mp)
	for _, d := range cands {
		if _, err := os.Stat(filepath.Join(d, file)); err == nil {
			return d, true
		}
	}
	return "", false
}

func readCgroupFile(dir, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// v1Unlimited is where cgroup v1 memory.limit_in_bytes starts meaning "no
// limit" (LONG_MAX rounded down to a page).
const v1Unlimited = 0x7FFFFFFFFFFFF000

func memoryLimit() (string, error) {
	dir, v2, err := cgroupDir("memory", "memory.limit_in_bytes", "memory.max")
	if err != nil {
		return "", err
	}
	if v2 {
		return readCgroupFile(dir, "memory.max")
	}
	s, err := readCgroupFile(dir, "memory.limit_in_bytes")
	if err != nil {
		return "", err
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return "", fmt.Errorf("memory.limit_in_bytes %q: %w", s, err)
	}
	if n >= v1Unlimited {
		return "max", nil
	}
	return s, nil
}

// cpuQuota returns the CFS quota in millicores, or "max".
func cpuQuota() (string, error) {
	dir, v2, err := cgroupDir("cpu", "cpu.cfs_quota_us", "cpu.max")
	if err != nil {
		return "", err
	}
	var quota, period string
	if v2 {
		s, err := readCgroupFile(dir, "cpu.max")
		if err != nil {
			return "", err
		}
		f := strings.Fields(s)
		if len(f) != 2 {
			return "", fmt.Errorf("cpu.max %q: want QUOTA PERIOD", s)
		}
		quota, period = f[0], f[1]
	} else {
		if quota, err = readCgroupFile(dir, "cpu.cfs_quota_us"); err != nil {
			return "", err
		}
		if period, err = readCgroupFile(dir, "cpu.cfs_period_us"); err != nil {
			return "", err
		}
	}
	if quota == "max" || quota == "-1" {
		return "max", nil
	}
	q, err1 := strconv.ParseInt(quota, 10, 64)
	p, err2 := strconv.ParseInt(period, 10, 64)
	if err := errors.Join(err1, err2); err != nil || p <= 0 {
		return "", fmt.Errorf("cpu quota %q period %q: not numbers", quota, period)
	}
	return strconv.FormatInt(q*1000/p, 10), nil
}

// cpuShares returns ("CPU_SHARES", cpu.shares) on cgroup v1 or
// ("CPU_WEIGHT", cpu.weight) on v2: the conversion between them is lossy, so
// the test compares against the value of the version in use.
func cpuShares() (key, value string, err error) {
	dir, v2, err := cgroupDir("cpu", "cpu.shares", "cpu.weight")
	if err != nil {
		return "", "", err
	}
	if v2 {
		v, err := readCgroupFile(dir, "cpu.weight")
		return "CPU_WEIGHT", v, err
	}
	v, err := readCgroupFile(dir, "cpu.shares")
	return "CPU_SHARES", v, err
}
