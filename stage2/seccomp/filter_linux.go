package seccomp

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Mode says whether a set lists the syscalls an app keeps or those it loses.
type Mode int

const (
	// Retain is os/linux/seccomp-retain-set: an allow list; every other
	// syscall is blocked.
	Retain Mode = iota + 1
	// Remove is os/linux/seccomp-remove-set: a deny list; every other
	// syscall is allowed.
	Remove
)

func (m Mode) String() string {
	switch m {
	case Retain:
		return "retain"
	case Remove:
		return "remove"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// essential are the syscalls that must keep working between Install and the
// exec of the app:
//   - execve: the exec itself; prlimit64: syscall.Exec restores RLIMIT_NOFILE
//     first; write: reporting a failed exec;
//   - exit, exit_group, restart_syscall, and the Go runtime's other threads:
//     futex, sched_yield, nanosleep, clock_nanosleep, clock_gettime (vDSO
//     fallback), epoll_pwait, epoll_wait (netpoller), mmap, munmap, madvise
//     (allocator and scavenger), clone, gettid, sigaltstack (new threads);
//   - signals, used for preemption and by syscall.AllThreadsSyscall: tgkill,
//     getpid, rt_sigreturn, rt_sigprocmask, rt_sigaction;
//   - caps.Apply: capget, capset, prctl, setresuid.
var essential = []string{
	"execve", "prlimit64", "write",
	"exit", "exit_group", "restart_syscall",
	"futex", "sched_yield", "nanosleep", "clock_nanosleep", "clock_gettime",
	"epoll_pwait", "epoll_wait", "mmap", "munmap", "madvise", "clone", "gettid", "sigaltstack",
	"tgkill", "getpid", "rt_sigreturn", "rt_sigprocmask", "rt_sigaction",
	"capget", "capset", "prctl", "setresuid",
}

// Essential returns the names of the syscalls every retain filter allows and
// no remove set may block, because the launcher needs them after Install
// (see the package documentation). Names the running architecture lacks
// (epoll_wait on arm64) are included; they are ignored.
func Essential() []string { return slices.Clone(essential) }

// archInfo describes one supported architecture.
type archInfo struct {
	audit uint32 // AUDIT_ARCH_* of native syscalls
	x32   bool   // syscall numbers >= x32Bit belong to the x32 ABI
}

var arches = map[string]archInfo{
	"amd64": {audit: unix.AUDIT_ARCH_X86_64, x32: true},
	"arm64": {audit: unix.AUDIT_ARCH_AARCH64},
}

// x32Bit is __X32_SYSCALL_BIT (arch/x86/include/uapi/asm/unistd.h).
const x32Bit = 0x40000000

// maxInsns is BPF_MAXINSNS (include/uapi/linux/bpf_common.h).
const maxInsns = 4096

// Filter is a compiled seccomp filter for the running architecture.
type Filter struct {
	// prog is empty when the filter allows everything (retain @appc.io/all,
	// or a remove set that blocks nothing); Install is then a no-op, as rkt
	// installed no filter in those cases.
	prog []unix.SockFilter
}

// Build compiles a syscall set for the running architecture. names is the
// isolator's set (syscall names and groups; it must not be empty) and errno
// the isolator's errno ("EPERM", "ENOTSUP", ...): blocked syscalls fail with
// it, or with errno "" kill the process with SIGSYS.
func Build(mode Mode, names []string, errno string) (*Filter, error) {
	return build(runtime.GOARCH, mode, names, errno)
}

func build(arch string, mode Mode, names []string, errno string) (*Filter, error) {
	info, ok := arches[arch]
	if !ok {
		return nil, fmt.Errorf("seccomp: unsupported architecture %s", arch)
	}
	if mode != Retain && mode != Remove {
		return nil, fmt.Errorf("seccomp: invalid mode %d", int(mode))
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("seccomp %s set is empty (use %s)", mode, GroupEmpty)
	}
	blocked := uint32(unix.SECCOMP_RET_KILL_PROCESS)
	if errno != "" {
		e, err := parseErrno(errno)
		if err != nil {
			return nil, err
		}
		blocked = retErrno(e)
	}
	table := sysnums[arch]
	set := map[uint32]bool{}
	all := false
	for _, name := range names {
		if strings.HasPrefix(name, "@") {
			members, ok := group(name, arch)
			if !ok {
				return nil, fmt.Errorf("unknown syscall group %q", name)
			}
			all = all || name == GroupAll
			for _, m := range members {
				if nr, ok := table[m]; ok {
					set[nr] = true
				}
			}
			continue
		}
		nr, ok := table[name]
		switch {
		case !ok && knownSyscall(name):
			return nil, fmt.Errorf("syscall %q does not exist on %s", name, arch)
		case !ok:
			return nil, fmt.Errorf("unknown syscall %q", name)
		case mode == Remove && slices.Contains(essential, name):
			return nil, fmt.Errorf("cannot remove syscall %q: it is needed to exec the app", name)
		}
		set[nr] = true
	}
	for _, name := range essential {
		if nr, ok := table[name]; ok {
			// Allowed in both modes: added to an allow list, taken out of a
			// deny list that got it from a group.
			set[nr] = mode == Retain
		}
	}

	// The verdict for every syscall number: def, except those in except.
	def := uint32(unix.SECCOMP_RET_ALLOW)
	except := map[uint32]uint32{}
	if mode == Retain {
		if all {
			return &Filter{}, nil
		}
		def = blocked
		for nr, in := range set {
			if in {
				except[nr] = unix.SECCOMP_RET_ALLOW
			}
		}
	} else {
		for nr, in := range set {
			if in {
				except[nr] = blocked
			}
		}
		if len(except) == 0 {
			return &Filter{}, nil
		}
	}
	if nr, ok := table["clone3"]; ok && verdict(def, except, nr) != unix.SECCOMP_RET_ALLOW {
		except[nr] = retErrno(unix.ENOSYS)
	}

	prog := []unix.SockFilter{
		// seccomp_data.arch: native calls only.
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, 4),
		jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, info.audit, 1, 0),
		stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_KILL_PROCESS),
		// seccomp_data.nr
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, 0),
	}
	if info.x32 {
		prog = append(prog,
			jump(unix.BPF_JMP|unix.BPF_JGE|unix.BPF_K, x32Bit, 0, 1),
			stmt(unix.BPF_RET|unix.BPF_K, retErrno(unix.ENOSYS)),
		)
	}
	prog = append(prog, tree(segments(def, except))...)
	if len(prog) > maxInsns {
		// At most 2*473 comparisons plus long jumps: cannot happen with the
		// generated tables, but the kernel would refuse it with EINVAL.
		return nil, fmt.Errorf("seccomp filter has %d instructions, more than the kernel's %d", len(prog), maxInsns)
	}
	return &Filter{prog: prog}, nil
}

// Program returns a copy of the filter's BPF instructions; it is empty when
// the filter allows everything.
func (f *Filter) Program() []unix.SockFilter { return slices.Clone(f.prog) }

// Install loads the filter into every thread of the calling process with
// seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC). The caller
// must have CAP_SYS_ADMIN or have set no_new_privs; see the package
// documentation for where Install goes relative to caps.Apply and unix.Exec.
// Filters stack: a second Install adds a filter, it never replaces one.
func (f *Filter) Install() error {
	if len(f.prog) == 0 {
		return nil
	}
	fprog := unix.SockFprog{Len: uint16(len(f.prog)), Filter: &f.prog[0]}
	tid, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(f)
	switch {
	case errno == unix.EACCES:
		return fmt.Errorf("install seccomp filter (needs CAP_SYS_ADMIN or no_new_privs): %w",
			os.NewSyscallError("seccomp", errno))
	case errno != 0:
		return fmt.Errorf("install seccomp filter: %w", os.NewSyscallError("seccomp", errno))
	case tid != 0:
		// seccomp(2): with TSYNC, a positive return is the ID of a thread
		// that could not be synchronized; no thread got the filter.
		return fmt.Errorf("install seccomp filter: thread %d has a diverging filter", tid)
	}
	return nil
}

// verdict is the return value for syscall nr.
func verdict(def uint32, except map[uint32]uint32, nr uint32) uint32 {
	if v, ok := except[nr]; ok {
		return v
	}
	return def
}

func retErrno(e unix.Errno) uint32 {
	return unix.SECCOMP_RET_ERRNO | uint32(e)&unix.SECCOMP_RET_DATA
}

// knownSyscall says whether name is a syscall of any supported architecture.
func knownSyscall(name string) bool {
	for _, t := range sysnums {
		if _, ok := t[name]; ok {
			return true
		}
	}
	return false
}

// errnoAliases pairs errno names of errno(3) that share a value; ErrnoName
// returns only one of each pair.
var errnoAliases = map[string]string{
	"ENOTSUP": "EOPNOTSUPP", "EOPNOTSUPP": "ENOTSUP",
	"EWOULDBLOCK": "EAGAIN", "EAGAIN": "EWOULDBLOCK",
	"EDEADLOCK": "EDEADLK", "EDEADLK": "EDEADLOCK",
}

// parseErrno resolves a symbolic errno name as used by the appc isolator.
func parseErrno(name string) (unix.Errno, error) {
	if name == "" {
		return 0, errors.New("empty errno name")
	}
	alias := errnoAliases[name]
	// Linux errno values are below 4096 (MAX_ERRNO); the named ones below 200.
	for e := unix.Errno(1); e < 4096; e++ {
		if n := unix.ErrnoName(e); n == name || (alias != "" && n == alias) {
			return e, nil
		}
	}
	return 0, fmt.Errorf("unknown errno %q", name)
}

// ParseErrno resolves the errno name of a seccomp isolator ("EPERM",
// "ENOTSUP", ...) as Build does.
func ParseErrno(name string) (unix.Errno, error) { return parseErrno(name) }
