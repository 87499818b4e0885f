package seccomp

import "slices"

// Group names accepted in a syscall set. They are the names rkt accepted in
// the os/linux/seccomp-{retain,remove}-set isolators (Documentation/seccomp-guide.md).
const (
	GroupAll             = "@appc.io/all"   // every syscall of the architecture (appc)
	GroupEmpty           = "@appc.io/empty" // no syscall (appc)
	GroupRktWhitelist    = "@rkt/default-whitelist"
	GroupRktBlacklist    = "@rkt/default-blacklist"
	GroupDockerWhitelist = "@docker/default-whitelist"
	GroupDockerBlacklist = "@docker/default-blacklist"
)

// group returns the syscall names of a group for arch, and whether the group
// exists. Names the architecture lacks are left in: the caller skips them.
func group(name, arch string) ([]string, bool) {
	switch name {
	case GroupAll:
		all := make([]string, 0, len(sysnums[arch]))
		for n := range sysnums[arch] {
			all = append(all, n)
		}
		return all, true
	case GroupEmpty:
		return nil, true
	case GroupRktWhitelist:
		l := slices.Concat(rktWhitelist, rktWhitelistSince)
		if arch == "arm64" {
			l = append(l, rktWhitelistARM...)
		}
		return l, true
	case GroupRktBlacklist:
		return rktBlacklist, true
	case GroupDockerWhitelist:
		return dockerWhitelist(arch), true
	case GroupDockerBlacklist:
		// Docker's profile has no deny list: its default action denies
		// everything it does not allow. For a container with the default
		// capabilities that is exactly the complement of the allow list.
		allow := dockerWhitelist(arch)
		var deny []string
		for n := range sysnums[arch] {
			if !slices.Contains(allow, n) {
				deny = append(deny, n)
			}
		}
		return deny, true
	}
	return nil, false
}

// dockerWhitelist is what Docker's default profile allows a container that
// has the default capability set (the same 14 as appc's) on arch. Docker's
// argument filters cannot be expressed by a name list; those syscalls are
// allowed unconditionally, as rkt did.
func dockerWhitelist(arch string) []string {
	l := slices.Concat(dockerAllow,
		// Allowed with argument filters (socket: not AF_VSOCK; personality:
		// a few personas; clone: no namespace flags without CAP_SYS_ADMIN).
		[]string{"socket", "personality", "clone"},
		// Allowed with "minKernel": "4.8", older than any kernel rkt-ng runs on.
		[]string{"process_vm_readv", "process_vm_writev", "ptrace"},
		// Allowed with CAP_SYS_CHROOT, which is in the default set.
		[]string{"chroot"},
	)
	switch arch {
	case "amd64":
		l = append(l, "arch_prctl", "modify_ldt")
	case "arm64":
		l = append(l, "arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls")
	}
	return l
}

// rktWhitelist is rkt's RktDefaultSeccompWhitelist (stage1/init/common/seccomp_wildcards.go,
// rkt v1.30.0), itself Docker's default allowlist of 2016, in rkt's order.
var rktWhitelist = []string{
	"accept", "accept4", "access", "alarm", "bind", "brk", "capget", "capset", "chdir", "chmod",
	"chown", "chown32", "clock_getres", "clock_gettime", "clock_nanosleep", "close", "connect",
	"copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl",
	"epoll_ctl_old", "epoll_pwait", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve",
	"execveat", "exit", "exit_group", "faccessat", "fadvise64", "fadvise64_64", "fallocate",
	"fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown", "fchown32", "fchownat", "fcntl",
	"fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr",
	"fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64",
	"futex", "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32",
	"geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer",
	"getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid",
	"getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage", "getsid",
	"getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32",
	"getxattr", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel",
	"ioctl", "io_destroy", "io_getevents", "ioprio_get", "ioprio_set", "io_setup", "io_submit", "ipc",
	"kill", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr",
	"_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise", "memfd_create",
	"mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2",
	"mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedsend",
	"mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall",
	"munmap", "nanosleep", "newfstatat", "_newselect", "open", "openat", "pause", "personality",
	"pipe", "pipe2", "poll", "ppoll", "prctl", "pread64", "preadv", "prlimit64", "pselect6",
	"pwrite64", "pwritev", "read", "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom",
	"recvmmsg", "recvmsg", "remap_file_pages", "removexattr", "rename", "renameat", "renameat2",
	"restart_syscall", "rmdir", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
	"rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo", "sched_getaffinity",
	"sched_getattr", "sched_getparam", "sched_get_priority_max", "sched_get_priority_min",
	"sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity", "sched_setattr",
	"sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget",
	"semop", "semtimedop", "send", "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto",
	"setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups",
	"setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32", "setresgid",
	"setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit",
	"set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid",
	"setuid32", "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack",
	"signalfd", "signalfd4", "sigreturn", "socket", "socketcall", "socketpair", "splice", "stat",
	"stat64", "statfs", "statfs64", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs",
	"sysinfo", "syslog", "tee", "tgkill", "time", "timer_create", "timer_delete", "timerfd_create",
	"timerfd_gettime", "timerfd_settime", "timer_getoverrun", "timer_gettime", "timer_settime",
	"times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat",
	"utime", "utimensat", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write",
	"writev", "arch_prctl", "modify_ldt", "chroot", "clone",
}

// rktWhitelistARM is rkt's RktDefaultSeccompArmWhitelist, added on arm and arm64.
var rktWhitelistARM = []string{
	"arm_fadvise64_64", "arm_sync_file_range", "breakpoint", "cacheflush", "set_tls",
	"sync_file_range2",
}

// rktWhitelistSince are the syscalls Docker's default profile allows unconditionally today
// that post-date rkt's list (rkt followed Docker: "rkt tries not to diverge from docker here").
// Without them a current libc dies at startup under a SIGSYS filter (rseq since glibc 2.35,
// statx, faccessat2, close_range...). adjtimex, clock_adjtime and
// name_to_handle_at stay out because rkt's blacklist names them.
var rktWhitelistSince = []string{
	"cachestat", "clock_getres_time64", "clock_gettime64", "clock_nanosleep_time64", "close_range",
	"epoll_pwait2", "faccessat2", "fchmodat2", "futex_requeue", "futex_time64", "futex_wait",
	"futex_waitv", "futex_wake", "getxattrat", "io_pgetevents", "io_pgetevents_time64",
	"landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "listmount",
	"listxattrat", "map_shadow_stack", "membarrier", "memfd_secret", "mq_timedreceive_time64",
	"mq_timedsend_time64", "mseal", "openat2", "pidfd_open", "pidfd_send_signal", "pkey_alloc",
	"pkey_free", "pkey_mprotect", "ppoll_time64", "preadv2", "process_mrelease", "pselect6_time64",
	"pwritev2", "recvmmsg_time64", "removexattrat", "riscv_hwprobe", "rseq", "rt_sigtimedwait_time64",
	"sched_rr_get_interval_time64", "semtimedop_time64", "setxattrat", "sigprocmask", "statmount",
	"statx", "timer_gettime64", "timer_settime64", "timerfd_gettime64", "timerfd_settime64",
	"uretprobe", "utimensat_time64",
}

// rktBlacklist is rkt's RktDefaultSeccompBlacklist (= its DockerDefaultSeccompBlacklist).
var rktBlacklist = []string{
	"acct", "add_key", "adjtimex", "bpf", "clock_adjtime", "clock_settime", "create_module",
	"delete_module", "finit_module", "get_kernel_syms", "get_mempolicy", "init_module", "ioperm",
	"iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind", "mount",
	"move_pages", "name_to_handle_at", "nfsservctl", "open_by_handle_at", "perf_event_open",
	"pivot_root", "process_vm_readv", "process_vm_writev", "ptrace", "query_module", "quotactl",
	"reboot", "request_key", "set_mempolicy", "setns", "settimeofday", "stime", "swapon", "swapoff",
	"sysfs", "_sysctl", "umount", "umount2", "unshare", "uselib", "userfaultfd", "ustat", "vm86",
	"vm86old",
}

// dockerAllow is the unconditional SCMP_ACT_ALLOW entry of Docker's default profile
// (moby/profiles seccomp/default.json, 2025).
var dockerAllow = []string{
	"accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget",
	"capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64",
	"clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
	"clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat", "dup",
	"dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
	"epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat",
	"exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
	"fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat",
	"fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr",
	"fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
	"ftruncate64", "futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv",
	"futex_wake", "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32",
	"geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer",
	"getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid",
	"getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage", "getsid",
	"getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32",
	"getxattr", "getxattrat", "inotify_add_watch", "inotify_init", "inotify_init1",
	"inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents", "io_pgetevents",
	"io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup", "io_submit", "ipc", "kill",
	"landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32",
	"lgetxattr", "link", "linkat", "listen", "listmount", "listxattr", "listxattrat", "llistxattr",
	"_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise",
	"map_shadow_stack", "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat",
	"mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr",
	"mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend",
	"mq_timedsend_time64", "mq_unlink", "mremap", "mseal", "msgctl", "msgget", "msgrcv", "msgsnd",
	"msync", "munlock", "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat",
	"_newselect", "open", "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe",
	"pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl",
	"pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6", "pselect6_time64",
	"pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recv",
	"recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr",
	"removexattrat", "rename", "renameat", "renameat2", "restart_syscall", "riscv_hwprobe", "rmdir",
	"rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
	"rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo",
	"sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
	"sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval",
	"sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam",
	"sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget", "semop",
	"semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg", "sendmsg",
	"sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups",
	"setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32", "setresgid",
	"setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit",
	"set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid",
	"setuid32", "setxattr", "setxattrat", "shmat", "shmctl", "shmdt", "shmget", "shutdown",
	"sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair",
	"splice", "stat", "stat64", "statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat",
	"sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create",
	"timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
	"timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
	"timerfd_settime64", "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname",
	"unlink", "unlinkat", "uretprobe", "utime", "utimensat", "utimensat_time64", "utimes", "vfork",
	"vmsplice", "wait4", "waitid", "waitpid", "write", "writev",
}
