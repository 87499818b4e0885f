// Package mountinfo reads /proc/self/mountinfo and unmounts trees of mounts.
// It is Linux-only.
package mountinfo

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is one line of mountinfo (proc(5)):
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//	(1)(2)(3)   (4)   (5)      (6)      (7)   (8) (9)   (10)         (11)
//
// Paths and the source are unescaped.
type Mount struct {
	ID, Parent   int
	MajorMinor   string
	Root         string // (4): the root of the mount within its filesystem
	Mountpoint   string
	Options      string   // per-mount options
	Optional     []string // (7): zero or more tagged fields ("shared:1", "master:2")
	FSType       string
	Source       string // may be empty (mount -t tmpfs "" /x)
	SuperOptions string
}

// unescape undoes the octal escapes (\ooo) the kernel uses for space, tab,
// newline and backslash in paths and sources (fs/proc_namespace.c).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) && s[i+1] <= '3' {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// Read parses /proc/self/mountinfo.
func Read() ([]Mount, error) { return ReadFile("/proc/self/mountinfo") }

// ReadFile parses a mountinfo file (/proc/<pid>/mountinfo).
func ReadFile(path string) ([]Mount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Mount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		if sc.Text() == "" {
			continue
		}
		m, err := Parse(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("parse %s line %d: %w", path, n, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}

// Parse parses one mountinfo line. Fields are separated by exactly one
// space (the kernel escapes spaces inside them), so an empty field, such as
// the source of `mount -t tmpfs "" /x`, is kept as empty rather than
// shifting the fields after it.
func Parse(line string) (Mount, error) {
	var m Mount
	f := strings.Split(line, " ")
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if sep < 0 || len(f) != sep+4 {
		return m, fmt.Errorf("malformed mountinfo line %q", line)
	}
	var err1, err2 error
	m.ID, err1 = strconv.Atoi(f[0])
	m.Parent, err2 = strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || f[3] == "" || f[4] == "" || f[sep+1] == "" {
		return m, fmt.Errorf("malformed mountinfo line %q", line)
	}
	m.MajorMinor = f[2]
	m.Root = unescape(f[3])
	m.Mountpoint = unescape(f[4])
	m.Options = f[5]
	if sep > 6 {
		m.Optional = f[6:sep]
	}
	m.FSType = f[sep+1]
	m.Source = unescape(f[sep+2])
	m.SuperOptions = f[sep+3]
	return m, nil
}

// Under lists the mount points at or below dir, deepest first.
func Under(dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	ms, err := Read()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range ms {
		if m.Mountpoint == dir || strings.HasPrefix(m.Mountpoint, dir+"/") {
			out = append(out, m.Mountpoint)
		}
	}
	// Deepest first; among equal paths (stacked mounts) later mounts first.
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Count(out[i], "/") > strings.Count(out[j], "/")
	})
	return out, nil
}

// UnmountAll unmounts every mount at or below dir, deepest first, falling
// back to a lazy unmount for busy ones. Already-gone mounts are fine.
func UnmountAll(dir string) error {
	for range 4 { // stacked mounts need more than one pass
		mps, err := Under(dir)
		if err != nil {
			return err
		}
		if len(mps) == 0 {
			return nil
		}
		var errs []error
		for _, mp := range mps {
			err := unix.Unmount(mp, unix.UMOUNT_NOFOLLOW)
			if err == unix.EBUSY {
				err = unix.Unmount(mp, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
			}
			if err != nil && err != unix.EINVAL && err != unix.ENOENT {
				errs = append(errs, &os.PathError{Op: "umount", Path: mp, Err: err})
			}
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
	}
	mps, err := Under(dir)
	if err == nil && len(mps) > 0 {
		return fmt.Errorf("mounts left under %s: %v", dir, mps)
	}
	return err
}
