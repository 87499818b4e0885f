package seccomp

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// run executes prog on a seccomp_data with the given arch and nr the way the
// kernel does, for the subset of classic BPF that seccomp accepts. It fails
// on anything the kernel's checker (seccomp_check_filter, bpf_check_classic)
// would refuse: jumps out of range, unknown opcodes, loads outside
// seccomp_data, falling off the end.
func run(prog []unix.SockFilter, arch, nr uint32) (uint32, error) {
	if len(prog) == 0 || len(prog) > maxInsns {
		return 0, fmt.Errorf("program length %d", len(prog))
	}
	var acc uint32
	for pc := 0; ; pc++ {
		if pc >= len(prog) {
			return 0, fmt.Errorf("pc %d: fell off the end", pc)
		}
		in := prog[pc]
		target := func(off uint32) (int, error) {
			t := pc + 1 + int(off)
			if t >= len(prog) {
				return 0, fmt.Errorf("pc %d: jump to %d out of range (len %d)", pc, t, len(prog))
			}
			return t - 1, nil // the loop increments
		}
		var err error
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			switch in.K {
			case 0:
				acc = nr
			case 4:
				acc = arch
			default:
				return 0, fmt.Errorf("pc %d: load of seccomp_data offset %d", pc, in.K)
			}
		case unix.BPF_RET | unix.BPF_K:
			return in.K, nil
		case unix.BPF_JMP | unix.BPF_JA:
			pc, err = target(in.K)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K,
			unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K, unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			// Both branches must be in range, taken or not.
			if _, err := target(uint32(in.Jt)); err != nil {
				return 0, err
			}
			if _, err := target(uint32(in.Jf)); err != nil {
				return 0, err
			}
			var cond bool
			switch in.Code &^ (unix.BPF_JMP | unix.BPF_K) {
			case unix.BPF_JEQ:
				cond = acc == in.K
			case unix.BPF_JGE:
				cond = acc >= in.K
			case unix.BPF_JGT:
				cond = acc > in.K
			case unix.BPF_JSET:
				cond = acc&in.K != 0
			}
			off := in.Jf
			if cond {
				off = in.Jt
			}
			pc, err = target(uint32(off))
		default:
			return 0, fmt.Errorf("pc %d: opcode %#x not used by seccomp filters", pc, in.Code)
		}
		if err != nil {
			return 0, err
		}
	}
}

// wellFormed checks every instruction statically, as the kernel does at load
// time (every path, not only the paths some input takes).
func wellFormed(prog []unix.SockFilter) error {
	if len(prog) == 0 || len(prog) > maxInsns {
		return fmt.Errorf("program length %d", len(prog))
	}
	if c := prog[len(prog)-1].Code; c != unix.BPF_RET|unix.BPF_K {
		return fmt.Errorf("last instruction %#x is not a ret", c)
	}
	for pc, in := range prog {
		check := func(off uint32) error {
			if t := pc + 1 + int(off); t >= len(prog) {
				return fmt.Errorf("pc %d: jump to %d out of range (len %d)", pc, t, len(prog))
			}
			return nil
		}
		var err error
		switch {
		case in.Code == unix.BPF_JMP|unix.BPF_JA:
			err = check(in.K)
		case in.Code&0x07 == unix.BPF_JMP:
			err = errors.Join(check(uint32(in.Jt)), check(uint32(in.Jf)))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// model is the expected verdict for a syscall, computed from the package
// documentation without the BPF compiler.
func model(t testing.TB, arch string, mode Mode, names []string, errno string) map[string]uint32 {
	t.Helper()
	blocked := uint32(unix.SECCOMP_RET_KILL_PROCESS)
	if errno != "" {
		e, err := parseErrno(errno)
		if err != nil {
			t.Fatal(err)
		}
		blocked = unix.SECCOMP_RET_ERRNO | uint32(e)
	}
	in := map[string]bool{}
	for _, n := range names {
		if g, ok := group(n, arch); ok {
			for _, m := range g {
				in[m] = true
			}
		} else {
			in[n] = true
		}
	}
	want := map[string]uint32{}
	for name := range sysnums[arch] {
		allowed := in[name] == (mode == Retain) || slices.Contains(essential, name)
		switch {
		case allowed:
			want[name] = unix.SECCOMP_RET_ALLOW
		case name == "clone3":
			want[name] = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
		default:
			want[name] = blocked
		}
	}
	return want
}

// checkFilter checks that f is well formed and gives every syscall of arch
// the verdict the model predicts, and that foreign and x32 calls are refused.
func checkFilter(t testing.TB, f *Filter, arch string, mode Mode, names []string, errno string) {
	t.Helper()
	prog := f.Program()
	if len(prog) == 0 {
		// Only "allow everything" compiles to no program.
		for name, v := range model(t, arch, mode, names, errno) {
			if v != unix.SECCOMP_RET_ALLOW {
				t.Fatalf("empty program, but %s should get %#x", name, v)
			}
		}
		return
	}
	if err := wellFormed(prog); err != nil {
		t.Fatalf("malformed program: %v", err)
	}
	info := arches[arch]
	for name, want := range model(t, arch, mode, names, errno) {
		got, err := run(prog, info.audit, sysnums[arch][name])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got != want {
			t.Fatalf("%s %v %q errno=%q: syscall %s (%d) got %#x, want %#x",
				arch, mode, names, errno, name, sysnums[arch][name], got, want)
		}
	}
	for _, foreign := range []uint32{unix.AUDIT_ARCH_I386, unix.AUDIT_ARCH_ARM, 0} {
		if foreign == info.audit {
			continue
		}
		if got, err := run(prog, foreign, 0); err != nil || got != unix.SECCOMP_RET_KILL_PROCESS {
			t.Fatalf("arch %#x: got %#x, %v; want kill", foreign, got, err)
		}
	}
	if info.x32 {
		for _, nr := range []uint32{x32Bit, x32Bit + 83, ^uint32(0)} {
			if got, err := run(prog, info.audit, nr); err != nil || got != retErrno(unix.ENOSYS) {
				t.Fatalf("x32 nr %#x: got %#x, %v; want ENOSYS", nr, got, err)
			}
		}
	}
}

func TestBuildVerdicts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		mode  Mode
		names []string
		errno string
	}{
		{"remove mkdirat eperm", Remove, []string{"mkdirat"}, "EPERM"},
		{"remove mkdirat kill", Remove, []string{"mkdirat", "unlinkat"}, ""},
		{"remove clone3", Remove, []string{"clone3"}, "EPERM"},
		{"retain rkt whitelist", Retain, []string{GroupRktWhitelist}, ""},
		{"retain docker whitelist enotsup", Retain, []string{GroupDockerWhitelist}, "ENOTSUP"},
		{"remove rkt blacklist", Remove, []string{GroupRktBlacklist}, "EPERM"},
		{"remove docker blacklist", Remove, []string{GroupDockerBlacklist}, ""},
		{"retain empty", Retain, []string{GroupEmpty}, ""},
		{"retain tiny", Retain, []string{"getpid", "read"}, "EACCES"},
		{"remove all", Remove, []string{GroupAll}, "EPERM"},
		{"retain all", Retain, []string{GroupAll, "mkdirat"}, ""},
		{"remove empty", Remove, []string{GroupEmpty}, ""},
		{"group and duplicates", Retain, []string{GroupRktWhitelist, "mount", "mount", GroupEmpty}, "EPERM"},
	}
	for _, tc := range tests {
		for arch := range arches {
			t.Run(tc.name+"/"+arch, func(t *testing.T) {
				t.Parallel()
				f, err := build(arch, tc.mode, tc.names, tc.errno)
				if err != nil {
					t.Fatal(err)
				}
				checkFilter(t, f, arch, tc.mode, tc.names, tc.errno)
			})
		}
	}
}

func TestBuildNoFilter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode      Mode
		names     []string
		wantEmpty bool
	}{
		{Retain, []string{GroupAll}, true},
		{Retain, []string{"mkdir", GroupAll}, true},
		{Remove, []string{GroupEmpty}, true},
		{Remove, []string{GroupEmpty, GroupRktBlacklist}, false},
		{Retain, []string{GroupEmpty}, false},
	} {
		f, err := build("amd64", tc.mode, tc.names, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := len(f.Program()) == 0; got != tc.wantEmpty {
			t.Errorf("%v %q: program length %d, want empty=%v", tc.mode, tc.names, len(f.Program()), tc.wantEmpty)
		}
	}
	// Installing an allow-everything filter does nothing, so it needs no
	// privilege and works in any test process.
	if err := (&Filter{}).Install(); err != nil {
		t.Errorf("Install of empty filter: %v", err)
	}
}

// The docker deny list is defined as the complement of the allow list, so
// both build the same verdict for every known syscall.
func TestDockerGroupsComplement(t *testing.T) {
	t.Parallel()
	for arch := range arches {
		allow := model(t, arch, Retain, []string{GroupDockerWhitelist}, "EPERM")
		deny := model(t, arch, Remove, []string{GroupDockerBlacklist}, "EPERM")
		if diff := cmp.Diff(allow, deny); diff != "" {
			t.Errorf("%s: docker whitelist vs blacklist (-retain +remove):\n%s", arch, diff)
		}
	}
}

// otherArchSyscalls are syscalls that exist only on 32-bit or other
// architectures; the groups name them (they come from Docker's multi-arch
// lists) and Build skips them on amd64 and arm64.
var otherArchSyscalls = strings.Fields(`_llseek _newselect arm_fadvise64_64 arm_sync_file_range
	breakpoint cacheflush chown32 clock_adjtime64 clock_getres_time64 clock_gettime64
	clock_nanosleep_time64 fadvise64_64 fchown32 fcntl64 fstat64 fstatat64 fstatfs64 ftruncate64
	futex_time64 getegid32 geteuid32 getgid32 getgroups32 getresgid32 getresuid32 getuid32
	io_pgetevents_time64 ipc lchown32 lstat64 mmap2 mq_timedreceive_time64 mq_timedsend_time64
	ppoll_time64 pselect6_time64 recv recvmmsg_time64 riscv_hwprobe rt_sigtimedwait_time64
	sched_rr_get_interval_time64 semtimedop_time64 send sendfile64 set_tls setfsgid32 setfsuid32
	setgid32 setgroups32 setregid32 setresgid32 setresuid32 setreuid32 setuid32 sigprocmask
	sigreturn socketcall stat64 statfs64 stime sync_file_range2 timer_gettime64 timer_settime64
	timerfd_gettime64 timerfd_settime64 truncate64 ugetrlimit umount utimensat_time64 vm86
	vm86old waitpid`)

// TestGroupNames catches typos in the group lists: every name must be a
// syscall of some architecture.
func TestGroupNames(t *testing.T) {
	t.Parallel()
	for _, g := range []string{GroupRktWhitelist, GroupRktBlacklist, GroupDockerWhitelist, GroupDockerBlacklist} {
		for arch := range arches {
			names, ok := group(g, arch)
			if !ok || len(names) < 40 {
				t.Fatalf("group %s on %s: %d names, ok=%v", g, arch, len(names), ok)
			}
			for _, n := range names {
				if !knownSyscall(n) && !slices.Contains(otherArchSyscalls, n) {
					t.Errorf("group %s: %q is no syscall", g, n)
				}
			}
		}
	}
	for _, n := range essential {
		if !knownSyscall(n) {
			t.Errorf("essential: %q is no syscall", n)
		}
	}
	// The facts the default profile rests on.
	rkt, _ := group(GroupRktWhitelist, "amd64")
	for _, n := range []string{"execve", "openat", "clone", "rseq", "statx", "chroot"} {
		if !slices.Contains(rkt, n) {
			t.Errorf("%s lacks %s", GroupRktWhitelist, n)
		}
	}
	for _, n := range []string{"mount", "umount2", "ptrace", "kexec_load", "unshare", "setns"} {
		if slices.Contains(rkt, n) {
			t.Errorf("%s allows %s", GroupRktWhitelist, n)
		}
		if !slices.Contains(rktBlacklist, n) {
			t.Errorf("%s lacks %s", GroupRktBlacklist, n)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		arch    string
		mode    Mode
		names   []string
		errno   string
		wantErr string
	}{
		{"unknown syscall", "amd64", Remove, []string{"mkdir", "frobnicate"}, "", `unknown syscall "frobnicate"`},
		{"empty name", "amd64", Retain, []string{""}, "", `unknown syscall ""`},
		{"unknown group", "amd64", Retain, []string{"@rkt/default-greylist"}, "", `unknown syscall group "@rkt/default-greylist"`},
		{"systemd group", "amd64", Retain, []string{"@systemd/clock"}, "", `unknown syscall group "@systemd/clock"`},
		{"other arch explicit", "arm64", Remove, []string{"open"}, "", `syscall "open" does not exist on arm64`},
		{"32-bit only explicit", "amd64", Retain, []string{"@rkt/default-whitelist", "chown32"}, "", `unknown syscall "chown32"`},
		{"unknown errno", "amd64", Remove, []string{"mkdir"}, "EFROB", `unknown errno "EFROB"`},
		{"lowercase errno", "amd64", Remove, []string{"mkdir"}, "eperm", `unknown errno "eperm"`},
		{"empty set", "amd64", Retain, nil, "", "seccomp retain set is empty (use @appc.io/empty)"},
		{"invalid mode", "amd64", Mode(0), []string{"mkdir"}, "", "seccomp: invalid mode 0"},
		{"remove essential", "amd64", Remove, []string{"mkdir", "execve"}, "EPERM", `cannot remove syscall "execve": it is needed to exec the app`},
		{"remove essential futex", "arm64", Remove, []string{"futex"}, "", `cannot remove syscall "futex": it is needed to exec the app`},
		{"unsupported arch", "riscv64", Retain, []string{"read"}, "", "seccomp: unsupported architecture riscv64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := build(tc.arch, tc.mode, tc.names, tc.errno)
			if err == nil {
				t.Fatalf("build(%s, %v, %q, %q) = %d instructions, want error %q",
					tc.arch, tc.mode, tc.names, tc.errno, len(f.Program()), tc.wantErr)
			}
			if err.Error() != tc.wantErr {
				t.Errorf("error = %q, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseErrno(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]unix.Errno{
		"EPERM": unix.EPERM, "ENOTSUP": unix.EOPNOTSUPP, "EOPNOTSUPP": unix.EOPNOTSUPP,
		"EACCES": unix.EACCES, "EAGAIN": unix.EAGAIN, "EDEADLOCK": unix.EDEADLK, "ENOSYS": unix.ENOSYS, "EWOULDBLOCK": unix.EAGAIN, "EHWPOISON": unix.EHWPOISON,
	} {
		got, err := parseErrno(name)
		if err != nil || got != want {
			t.Errorf("parseErrno(%q) = %d, %v; want %d", name, got, err, want)
		}
	}
}

// TestLongJumps builds the filter with the most comparisons (every other
// syscall), whose subtrees exceed the 255-instruction reach of conditional
// jumps, and checks every number around the table.
func TestLongJumps(t *testing.T) {
	t.Parallel()
	for arch, table := range sysnums {
		var names []string
		for name, nr := range table {
			if nr%2 == 0 && !slices.Contains(essential, name) {
				names = append(names, name)
			}
		}
		f, err := build(arch, Remove, names, "EPERM")
		if err != nil {
			t.Fatal(err)
		}
		prog := f.Program()
		if !slices.ContainsFunc(prog, func(in unix.SockFilter) bool { return in.Code == unix.BPF_JMP|unix.BPF_JA }) {
			t.Errorf("%s: %d instructions and no long jump; the test no longer exercises them", arch, len(prog))
		}
		checkFilter(t, f, arch, Remove, names, "EPERM")
		byNr := map[uint32]string{}
		for name, nr := range table {
			byNr[nr] = name
		}
		for nr := uint32(0); nr < 1024; nr++ {
			want := uint32(unix.SECCOMP_RET_ALLOW)
			if name, ok := byNr[nr]; ok && slices.Contains(names, name) {
				want = retErrno(unix.EPERM)
				if name == "clone3" {
					want = retErrno(unix.ENOSYS)
				}
			}
			got, err := run(prog, arches[arch].audit, nr)
			if err != nil || got != want {
				t.Fatalf("%s nr %d: got %#x, %v; want %#x", arch, nr, got, err, want)
			}
		}
	}
}

func TestSegments(t *testing.T) {
	t.Parallel()
	const a, b, c = 1, 2, 3
	tests := []struct {
		name   string
		except map[uint32]uint32
		want   []segment
	}{
		{"none", nil, []segment{{0, a}}},
		{"zero", map[uint32]uint32{0: b}, []segment{{0, b}, {1, a}}},
		{"run", map[uint32]uint32{3: b, 4: b, 5: b}, []segment{{0, a}, {3, b}, {6, a}}},
		{"adjacent different", map[uint32]uint32{3: b, 4: c}, []segment{{0, a}, {3, b}, {4, c}, {5, a}}},
		{"same as default", map[uint32]uint32{3: a, 7: b}, []segment{{0, a}, {7, b}, {8, a}}},
		{"max", map[uint32]uint32{^uint32(0): b}, []segment{{0, a}, {^uint32(0), b}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := segments(a, tc.except)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(segment{})); diff != "" {
				t.Errorf("segments mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzBuild compiles arbitrary sets (one name per line) and checks that every
// program the compiler emits is one the kernel would load and gives each
// syscall the documented verdict.
func FuzzBuild(f *testing.F) {
	f.Add("mkdir", true, "EPERM")
	f.Add("@rkt/default-whitelist\nmount", false, "")
	f.Add("@docker/default-blacklist", true, "ENOTSUP")
	f.Add("@appc.io/all", false, "")
	f.Add("read\nwrite\nclone3\nopenat", false, "EACCES")
	f.Add("execve", true, "")
	f.Add("@nope", false, "")
	f.Fuzz(func(t *testing.T, set string, remove bool, errno string) {
		if len(set) > 1<<14 || len(errno) > 32 {
			return
		}
		names := strings.Split(set, "\n")
		mode := Retain
		if remove {
			mode = Remove
		}
		for arch := range arches {
			fl, err := build(arch, mode, names, errno)
			if err != nil {
				if err.Error() == "" {
					t.Fatal("empty error message")
				}
				continue
			}
			checkFilter(t, fl, arch, mode, names, errno)
		}
	})
}

func TestAllowed(t *testing.T) {
	def, err := allowed("amd64", Retain, []string{GroupRktWhitelist})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		mode    Mode
		names   []string
		in, out []string // must be, must not be in the result
	}{
		{"default", Retain, []string{GroupRktWhitelist}, []string{"read", "execve"}, []string{"open_by_handle_at", "kexec_load"}},
		{"all", Retain, []string{GroupAll}, []string{"open_by_handle_at", "kexec_load"}, nil},
		{"tiny", Retain, []string{"read"}, []string{"read", "execve", "capset"}, []string{"mkdir", "open_by_handle_at"}},
		{"remove", Remove, []string{"mkdir", GroupRktBlacklist}, []string{"read", "execve", "io_uring_setup"}, []string{"mkdir", "open_by_handle_at"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := allowed("amd64", tc.mode, tc.names)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range tc.in {
				if !slices.Contains(got, n) {
					t.Errorf("%s not allowed", n)
				}
			}
			for _, n := range tc.out {
				if slices.Contains(got, n) {
					t.Errorf("%s allowed", n)
				}
			}
		})
	}
	if _, err := allowed("amd64", Retain, []string{"no_such_syscall"}); err == nil {
		t.Errorf("unknown syscall accepted")
	}
	if len(def) < 200 {
		t.Errorf("default whitelist has only %d syscalls", len(def))
	}
}
