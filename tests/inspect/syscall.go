package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A probe makes one syscall. It returns that syscall's error (nil when the
// call succeeded), or setupErr when it could not prepare the call.
type probe func() (callErr, setupErr error)

// probes are the syscalls --syscall can try, chosen to be harmless whether or
// not they are allowed. Each comment says what "allowed" looks like when the
// call cannot succeed by design.
var probes = map[string]probe{
	// mkdir(2) itself where the architecture has it (amd64), else mkdirat.
	"mkdir":   func() (error, error) { return withTempPath(mkdirProbe) },
	"mkdirat": func() (error, error) { return withTempPath(mkdiratProbe) },
	// chroot to the current root changes nothing.
	"chroot": func() (error, error) { return unix.Chroot("/"), nil },
	// PTRACE_PEEKDATA of a process we do not trace: ESRCH when allowed.
	"ptrace": func() (error, error) {
		var word uintptr
		_, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_PEEKDATA, 1, 0, uintptr(unsafe.Pointer(&word)), 0, 0)
		return errnoErr(e), nil
	},
	// a tmpfs on a fresh directory, unmounted at once.
	"mount": func() (error, error) {
		return withTempDir(func(d string) error {
			if err := unix.Mount("inspect-probe", d, "tmpfs", 0, ""); err != nil {
				return err
			}
			return unix.Unmount(d, unix.MNT_DETACH)
		})
	},
	// umount2 of a directory that is not a mount point: EINVAL when allowed.
	"umount2": func() (error, error) {
		return withTempDir(func(d string) error { return unix.Unmount(d, 0) })
	},
	// set the hostname to what it already is.
	"sethostname": func() (error, error) {
		h, err := hostname()
		if err != nil {
			return nil, err
		}
		return unix.Sethostname([]byte(h)), nil
	},
	// chown(2) (amd64; else fchownat) of a file we own to its own owner.
	"chown": func() (error, error) {
		f, err := os.CreateTemp("", "inspect-probe-")
		if err != nil {
			return nil, err
		}
		f.Close()
		defer os.Remove(f.Name())
		return chownProbe(f.Name(), unix.Geteuid(), unix.Getegid()), nil
	},
	"socket": func() (error, error) {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			unix.Close(fd)
		}
		return err, nil
	},
	"openat": func() (error, error) {
		fd, err := unix.Openat(unix.AT_FDCWD, "/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == nil {
			unix.Close(fd)
		}
		return err, nil
	},
	"uname": func() (error, error) {
		var u unix.Utsname
		return unix.Uname(&u), nil
	},
	"getpid": func() (error, error) {
		_, _, e := unix.RawSyscall(unix.SYS_GETPID, 0, 0, 0)
		return errnoErr(e), nil
	},
	// personality(0xffffffff) only queries the persona.
	"personality": func() (error, error) {
		_, _, e := unix.Syscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0)
		return errnoErr(e), nil
	},
	// kexec_load with invalid flags: EINVAL when allowed (and CAP_SYS_BOOT).
	"kexec_load": func() (error, error) {
		_, _, e := unix.Syscall6(unix.SYS_KEXEC_LOAD, 0, 0, 0, 0xffff0000, 0, 0)
		return errnoErr(e), nil
	},
	// bpf with an invalid command: EINVAL when allowed.
	"bpf": func() (error, error) {
		_, _, e := unix.Syscall(unix.SYS_BPF, 0xffff, 0, 0)
		return errnoErr(e), nil
	},
	// unshare(CLONE_NEWUTS) on a thread that then dies with its namespace.
	"unshare": func() (error, error) {
		res := make(chan error, 1)
		go func() {
			// Locked and never unlocked: the runtime ends this thread when the
			// goroutine returns, so no other goroutine runs in the new UTS
			// namespace.
			runtime.LockOSThread()
			res <- unix.Unshare(unix.CLONE_NEWUTS)
		}()
		return <-res, nil
	},
}

func trySyscall(name string) (string, error) {
	p, ok := probes[name]
	if !ok {
		var names []string
		for n := range probes {
			names = append(names, n)
		}
		slices.Sort(names)
		return "", fmt.Errorf("syscall %q: unknown, want one of %v", name, names)
	}
	callErr, setupErr := p()
	if setupErr != nil {
		return "", fmt.Errorf("syscall %s: %w", name, setupErr)
	}
	if callErr == nil {
		return "OK", nil
	}
	return errnoString(callErr), nil
}

func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

var probeSeq int

// withTempPath gives f a path that does not exist yet in the temp dir, and
// removes whatever f created there.
func withTempPath(f func(string) error) (error, error) {
	probeSeq++
	p := filepath.Join(os.TempDir(), "inspect-probe-"+strconv.Itoa(os.Getpid())+"-"+strconv.Itoa(probeSeq))
	defer os.Remove(p)
	return f(p), nil
}

func withTempDir(f func(string) error) (error, error) {
	d, err := os.MkdirTemp("", "inspect-probe-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(d)
	return f(d), nil
}

func mkdiratProbe(p string) error { return unix.Mkdirat(unix.AT_FDCWD, p, 0o700) }

// pathCall makes syscall trap with a path first argument.
func pathCall(trap uintptr, p string, a1, a2 uintptr) error {
	b, err := unix.BytePtrFromString(p)
	if err != nil {
		return err
	}
	_, _, e := unix.Syscall(trap, uintptr(unsafe.Pointer(b)), a1, a2)
	runtime.KeepAlive(b)
	return errnoErr(e)
}
