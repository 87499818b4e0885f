package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// appExec is the helper that becomes one app. It starts in a new mount
// namespace (clone flags of its parent), reads its config from fd 3 and
// reports setup errors on fd 4, which closes when the app is exec'd.
func appExec() int {
	errPipe := os.NewFile(4, "errors")
	report := func(err error) int {
		fmt.Fprintf(errPipe, "%v\n", err)
		return 254
	}
	var c appConfig
	if err := json.NewDecoder(io.LimitReader(os.NewFile(3, "config"), 1<<20)).Decode(&c); err != nil {
		return report(fmt.Errorf("read config: %w", err))
	}
	unix.CloseOnExec(3)
	unix.CloseOnExec(4)
	if err := setupRoot(c); err != nil {
		return report(err)
	}
	if err := takeUser(c); err != nil {
		return report(err)
	}
	wd := c.WorkingDir
	if wd == "" {
		wd = "/"
	}
	if err := unix.Chdir(wd); err != nil {
		return report(fmt.Errorf("working directory %s: %w", wd, err))
	}
	// prctl(2): the parent-death signal is cleared when the effective
	// user or group changes, which takeUser may have done.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return report(os.NewSyscallError("prctl", err))
	}
	if os.Getppid() == 1 {
		return report(errors.New("the stage1 run process is gone"))
	}
	path, err := lookPath(c.Args[0], c.Env)
	if err != nil {
		return report(err)
	}
	err = unix.Exec(path, c.Args, c.Env)
	return report(fmt.Errorf("exec %s: %w", c.Args[0], err))
}

// setupRoot makes the app's root: our mounts stop propagating to the host,
// the volumes are bound (their sources opened on the host side, mounted
// through /proc/self/fd inside the rootfs, so no target path is resolved
// outside it), /proc is mounted, and the rootfs becomes our root.
func setupRoot(c appConfig) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return &os.PathError{Op: "make / a slave", Path: "/", Err: err}
	}
	srcs := make([]*os.File, len(c.Binds))
	for i, b := range c.Binds {
		fd, err := unix.Open(b.Source, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "open volume source", Path: b.Source, Err: err}
		}
		srcs[i] = os.NewFile(uintptr(fd), b.Source)
	}
	if err := unix.Chroot(c.Rootfs); err != nil {
		return &os.PathError{Op: "chroot", Path: c.Rootfs, Err: err}
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	if err := os.MkdirAll("/proc", 0o555); err != nil {
		return err
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return &os.PathError{Op: "mount proc", Path: "/proc", Err: err}
	}
	for i, b := range c.Binds {
		fi, err := srcs[i].Stat()
		if err != nil {
			return err
		}
		if err := makeTarget(b.Target, fi.IsDir()); err != nil {
			return fmt.Errorf("volume target %s: %w", b.Target, err)
		}
		src := fmt.Sprintf("/proc/self/fd/%d", srcs[i].Fd())
		if err := unix.Mount(src, b.Target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return &os.PathError{Op: "bind " + b.Source, Path: b.Target, Err: err}
		}
		if b.ReadOnly {
			if err := unix.Mount("", b.Target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
				return &os.PathError{Op: "remount read-only", Path: b.Target, Err: err}
			}
		}
		srcs[i].Close()
	}
	return nil
}

// makeTarget creates a mount target inside our root (chroot confines the
// image's symlinks to it).
func makeTarget(path string, dir bool) error {
	if dir {
		return os.MkdirAll(path, 0o755)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// takeUser switches to the app's user and groups, resolved in the app's
// /etc/passwd and /etc/group (we are already chrooted into its rootfs).
// Numeric IDs need no entry, and root always resolves.
func takeUser(c appConfig) error {
	uid, err := resolveID(c.User, "/etc/passwd", 2)
	if err != nil {
		return fmt.Errorf("user %q: %w", c.User, err)
	}
	gid, err := resolveID(c.Group, "/etc/group", 2)
	if err != nil {
		return fmt.Errorf("group %q: %w", c.Group, err)
	}
	// x/sys/unix's set*id change every thread of the process (Go ≥ 1.16).
	if err := unix.Setgroups(c.SupplementaryGIDs); err != nil {
		return os.NewSyscallError("setgroups", err)
	}
	if err := unix.Setresgid(gid, gid, gid); err != nil {
		return os.NewSyscallError("setresgid", err)
	}
	if err := unix.Setresuid(uid, uid, uid); err != nil {
		return os.NewSyscallError("setresuid", err)
	}
	return nil
}

// resolveID turns a name or number into an ID through a colon-separated
// database whose field (0-based) holds the ID.
func resolveID(name, db string, field int) (int, error) {
	if name == "" || name == "root" {
		return 0, nil
	}
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		return n, nil
	}
	f, err := os.Open(db)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for sc.Scan() {
		parts := strings.Split(sc.Text(), ":")
		if len(parts) > field && parts[0] == name {
			return strconv.Atoi(parts[field])
		}
	}
	return 0, fmt.Errorf("not found in %s", db)
}

// lookPath finds a command in the app's PATH when it is not absolute.
func lookPath(cmd string, env []string) (string, error) {
	if strings.Contains(cmd, "/") {
		return cmd, nil
	}
	path := defaultPath
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, cmd)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH %s", cmd, path)
}
