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
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is one line of mountinfo.
type Mount struct {
	ID, Parent int
	Mountpoint string
	FSType     string
	Source     string
	Options    string
}

// unescape undoes the octal escapes mountinfo uses for space, tab, newline
// and backslash.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Read parses /proc/self/mountinfo.
func Read() ([]Mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Mount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		m, err := Parse(sc.Text())
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// Parse parses one mountinfo line.
func Parse(line string) (Mount, error) {
	var m Mount
	fields := strings.Fields(line)
	sep := -1
	for i, f := range fields {
		if f == "-" {
			sep = i
			break
		}
	}
	if len(fields) < 10 || sep < 6 || sep+3 > len(fields) {
		return m, fmt.Errorf("malformed mountinfo line %q", line)
	}
	if _, err := fmt.Sscan(fields[0], &m.ID); err != nil {
		return m, fmt.Errorf("malformed mountinfo line %q", line)
	}
	if _, err := fmt.Sscan(fields[1], &m.Parent); err != nil {
		return m, fmt.Errorf("malformed mountinfo line %q", line)
	}
	m.Mountpoint = unescape(fields[4])
	m.Options = fields[5]
	m.FSType = fields[sep+1]
	m.Source = unescape(fields[sep+2])
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
