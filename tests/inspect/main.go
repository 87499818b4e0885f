// Command inspect runs inside pods under test and reports what it sees, so
// the functional tests can check the environment that rkt gave an app. It is a
// static binary (CGO_ENABLED=0) with no files of its own, and it uses only the
// standard library and golang.org/x/sys/unix.
//
// Every flag is optional. The actions run in a fixed order, whatever the order
// on the command line:
//
//  1. signal setup (--silent-sigterm, --print-signals), so that they cover
//     everything below;
//  2. the --print-* reports, in the order of the flag list below, then
//     --try-escape (the hostile probe, escape.go);
//  3. --write-file (first, so that a read in the same run sees it),
//     --print-file, --read-file, --stat-file, --check-mknod, --syscall,
//     --resolve, --get-http;
//  4. --alloc and --fork-children, so a following --sleep can hold them;
//  5. --serve-http (blocks until killed), then --sleep;
//  6. --exit-code.
//
// Reports are lines "KEY=VALUE" on stdout (files are copied raw). A failing
// action prints "inspect: ..." on stderr and exits 1, except --print-file,
// which reports its error and goes on.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// listFlag is a string flag that may be given several times.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = append(*l, s)
	return nil
}

type options struct {
	printMsg        listFlag
	printEnv        listFlag
	printEnvAll     bool
	printUser       bool
	printGroups     bool
	printCwd        bool
	printHostname   bool
	printCaps       bool
	printNoNewPrivs bool
	printTTY        bool
	printMemLimit   bool
	printCPUQuota   bool
	printCPUShares  bool
	printMounts     bool
	printNetNS      bool
	printIPCNS      bool
	printPIDNS      bool
	printPID        bool
	printPPID       bool
	printIfaces     bool
	printRoutes     bool
	printFile       listFlag
	readFile        listFlag
	writeFile       string
	content         string
	statFile        listFlag
	checkMknod      string
	syscalls        listFlag
	resolve         listFlag
	getHTTP         string
	httpTimeout     time.Duration
	alloc           string
	forkChildren    int
	serveHTTP       string
	sleep           string
	silentSigterm   bool
	printSignals    bool
	exitCode        int

	// spawnSleepers is the hidden mode of the intermediate child of
	// --fork-children.
	spawnSleepers int
	flood         string
	tryEscape     bool
	// chrootEscape is the hidden mode of --try-escape's child.
	chrootEscape bool
}

func main() {
	var o options
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.Var(&o.printMsg, "print-msg", "print `MSG` on a line (repeatable)")
	fs.Var(&o.printEnv, "print-env", "print NAME=VALUE of environment variable `NAME` (repeatable)")
	fs.BoolVar(&o.printEnvAll, "print-env-all", false, "print the whole environment")
	fs.BoolVar(&o.printUser, "print-user", false, "print UID, GID, EUID, EGID")
	fs.BoolVar(&o.printGroups, "print-groups", false, "print the supplementary groups")
	fs.BoolVar(&o.printCwd, "print-cwd", false, "print the working directory")
	fs.BoolVar(&o.printHostname, "print-hostname", false, "print the hostname")
	fs.BoolVar(&o.printCaps, "print-caps", false, "print the capability sets from /proc/self/status")
	fs.BoolVar(&o.printNoNewPrivs, "print-no-new-privs", false, "print NoNewPrivs from /proc/self/status")
	fs.BoolVar(&o.printTTY, "print-tty", false, "print TTY=yes|no (is stdin a terminal) and, on one, TTY_SIZE=ROWSxCOLS")
	fs.BoolVar(&o.printMemLimit, "print-memorylimit", false, "print MEMORY_LIMIT of the own cgroup (bytes or max)")
	fs.BoolVar(&o.printCPUQuota, "print-cpuquota", false, "print CPU_QUOTA of the own cgroup (millicores or max)")
	fs.BoolVar(&o.printCPUShares, "print-cpushares", false, "print CPU_SHARES (cgroup v1) or CPU_WEIGHT (cgroup v2)")
	fs.BoolVar(&o.printMounts, "print-mounts", false, "print one MOUNT line per entry of /proc/self/mountinfo")
	fs.BoolVar(&o.printNetNS, "print-netns", false, "print NETNS (readlink /proc/self/ns/net)")
	fs.BoolVar(&o.printIPCNS, "print-ipcns", false, "print IPCNS (readlink /proc/self/ns/ipc)")
	fs.BoolVar(&o.printPIDNS, "print-pidns", false, "print PIDNS (readlink /proc/self/ns/pid)")
	fs.BoolVar(&o.printPID, "print-pid", false, "print PID")
	fs.BoolVar(&o.printPPID, "print-ppid", false, "print PPID")
	fs.BoolVar(&o.printIfaces, "print-ifaces", false, "print IFACE and ADDR lines")
	fs.BoolVar(&o.printRoutes, "print-routes", false, "print ROUTE lines from /proc/net/route and /proc/net/ipv6_route")
	fs.Var(&o.printFile, "print-file", "copy file `PATH` to stdout; errors are reported and ignored (repeatable)")
	fs.Var(&o.readFile, "read-file", "copy file `PATH` to stdout; exit 1 on error (repeatable)")
	fs.StringVar(&o.writeFile, "write-file", "", "write --content to file `PATH`")
	fs.StringVar(&o.content, "content", "", "content for --write-file")
	fs.Var(&o.statFile, "stat-file", "print STAT=PATH mode=... uid=... gid=... (repeatable)")
	fs.StringVar(&o.checkMknod, "check-mknod", "", "try mknod of `[c|b:MAJOR:MINOR:]PATH` (default c:1:3) and print MKNOD, MKNOD_OPEN")
	fs.Var(&o.syscalls, "syscall", "try syscall `NAME` and print SYSCALL_<NAME>=OK|<errno> (repeatable)")
	fs.Var(&o.resolve, "resolve", "resolve host `NAME` and print RESOLVE=NAME ADDR... (repeatable)")
	fs.StringVar(&o.getHTTP, "get-http", "", "GET `URL` and print the body")
	fs.DurationVar(&o.httpTimeout, "http-timeout", 10*time.Second, "how long --get-http retries")
	fs.StringVar(&o.flood, "flood", "", "write `SIZE` bytes of 1 KiB lines to stdout, then print FLOODED")
	fs.StringVar(&o.alloc, "alloc", "", "allocate and touch `SIZE` bytes (K, M, G suffixes)")
	fs.IntVar(&o.forkChildren, "fork-children", 0, "leave `N` sleeping grandchildren and print CHILD_PID lines")
	fs.StringVar(&o.serveHTTP, "serve-http", "", "serve \"hello from <hostname>\" on `ADDR` until killed (listen-fds: the socket-activated fd 3)")
	fs.StringVar(&o.sleep, "sleep", "", "sleep `DURATION` (Go duration, seconds, or \"forever\")")
	fs.BoolVar(&o.silentSigterm, "silent-sigterm", false, "on SIGTERM print \"got SIGTERM\" and exit 0")
	fs.BoolVar(&o.printSignals, "print-signals", false, "print SIGNAL=NAME for every signal received")
	fs.IntVar(&o.exitCode, "exit-code", 0, "exit with `N`")
	fs.IntVar(&o.spawnSleepers, "internal-spawn-sleepers", 0, "internal: start N sleepers and exit")
	fs.BoolVar(&o.tryEscape, "try-escape", false, "try to break out of the pod (escape.go) and print ESCAPE_* lines")
	fs.BoolVar(&o.chrootEscape, "internal-chroot-escape", false, "internal: the chroot escape of --try-escape")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "inspect: unexpected arguments %q\n", fs.Args())
		os.Exit(2)
	}
	if err := run(&o); err != nil {
		fmt.Fprintf(os.Stderr, "inspect: %v\n", err)
		os.Exit(1)
	}
	os.Exit(o.exitCode)
}

func run(o *options) error {
	if o.spawnSleepers > 0 {
		return spawnSleepers(o.spawnSleepers)
	}
	if o.chrootEscape {
		chrootEscape()
		return nil
	}
	setupSignals(o)

	for _, m := range o.printMsg {
		fmt.Println(m)
	}
	for _, name := range o.printEnv {
		if v, ok := os.LookupEnv(name); ok {
			fmt.Printf("%s=%s\n", name, v)
		} else {
			fmt.Printf("%s is unset\n", name)
		}
	}
	if o.printEnvAll {
		for _, kv := range os.Environ() {
			fmt.Println(kv)
		}
	}
	if o.printUser {
		fmt.Printf("UID=%d\nGID=%d\nEUID=%d\nEGID=%d\n", unix.Getuid(), unix.Getgid(), unix.Geteuid(), unix.Getegid())
	}
	if o.printGroups {
		gids, err := unix.Getgroups()
		if err != nil {
			return os.NewSyscallError("getgroups", err)
		}
		s := make([]string, len(gids))
		for i, g := range gids {
			s[i] = strconv.Itoa(g)
		}
		fmt.Printf("GROUPS=%s\n", strings.Join(s, " "))
	}
	if o.printCwd {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		fmt.Printf("CWD=%s\n", wd)
	}
	if o.printHostname {
		h, err := hostname()
		if err != nil {
			return err
		}
		fmt.Printf("HOSTNAME=%s\n", h)
	}
	if o.printCaps {
		if err := printStatusFields("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"); err != nil {
			return err
		}
	}
	if o.printNoNewPrivs {
		if err := printStatusFields("NoNewPrivs"); err != nil {
			return err
		}
	}
	if o.printTTY {
		if ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ); err == nil {
			fmt.Printf("TTY=yes\nTTY_SIZE=%dx%d\n", ws.Row, ws.Col)
		} else {
			fmt.Println("TTY=no")
		}
	}
	if o.printMemLimit {
		v, err := memoryLimit()
		if err != nil {
			return err
		}
		fmt.Printf("MEMORY_LIMIT=%s\n", v)
	}
	if o.printCPUQuota {
		v, err := cpuQuota()
		if err != nil {
			return err
		}
		fmt.Printf("CPU_QUOTA=%s\n", v)
	}
	if o.printCPUShares {
		k, v, err := cpuShares()
		if err != nil {
			return err
		}
		fmt.Printf("%s=%s\n", k, v)
	}
	if o.printMounts {
		if err := printMounts(); err != nil {
			return err
		}
	}
	for _, ns := range []struct {
		on        bool
		key, name string
	}{{o.printNetNS, "NETNS", "net"}, {o.printIPCNS, "IPCNS", "ipc"}, {o.printPIDNS, "PIDNS", "pid"}} {
		if !ns.on {
			continue
		}
		l, err := os.Readlink("/proc/self/ns/" + ns.name)
		if err != nil {
			return err
		}
		fmt.Printf("%s=%s\n", ns.key, l)
	}
	if o.printPID {
		fmt.Printf("PID=%d\n", os.Getpid())
	}
	if o.printPPID {
		fmt.Printf("PPID=%d\n", os.Getppid())
	}
	if o.printIfaces {
		if err := printIfaces(); err != nil {
			return err
		}
	}
	if o.printRoutes {
		if err := printRoutes(); err != nil {
			return err
		}
	}
	if o.tryEscape {
		tryEscape()
	}

	if o.writeFile != "" {
		if err := os.WriteFile(o.writeFile, []byte(o.content), 0o644); err != nil {
			return err
		}
	}
	for _, p := range o.printFile {
		if err := catFile(p); err != nil {
			fmt.Fprintf(os.Stderr, "inspect: %v\n", err)
		}
	}
	for _, p := range o.readFile {
		if err := catFile(p); err != nil {
			return err
		}
	}
	for _, p := range o.statFile {
		if err := statFile(p); err != nil {
			return err
		}
	}
	if o.checkMknod != "" {
		if err := checkMknod(o.checkMknod); err != nil {
			return err
		}
	}
	for _, name := range o.syscalls {
		res, err := trySyscall(name)
		if err != nil {
			return err
		}
		fmt.Printf("SYSCALL_%s=%s\n", strings.ToUpper(name), res)
	}
	for _, name := range o.resolve {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		addrs, err := net.DefaultResolver.LookupHost(ctx, name)
		cancel()
		if err != nil {
			return fmt.Errorf("resolve %s: %w", name, err)
		}
		fmt.Printf("RESOLVE=%s %s\n", name, strings.Join(addrs, " "))
	}
	if o.getHTTP != "" {
		body, err := getHTTP(o.getHTTP, o.httpTimeout)
		if err != nil {
			return err
		}
		fmt.Print(body)
		if !strings.HasSuffix(body, "\n") {
			fmt.Println()
		}
	}

	var held [][]byte
	if o.alloc != "" {
		n, err := parseSize(o.alloc)
		if err != nil {
			return err
		}
		held = allocate(n)
		fmt.Printf("ALLOCATED=%d\n", n)
	}
	if o.flood != "" {
		n, err := parseSize(o.flood)
		if err != nil {
			return err
		}
		line := []byte(strings.Repeat("x", 1023) + "\n")
		w := bufio.NewWriterSize(os.Stdout, 64<<10)
		for ; n > 0; n -= int64(len(line)) {
			if _, err := w.Write(line); err != nil {
				return err
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
		fmt.Println("FLOODED")
	}
	if o.forkChildren > 0 {
		if err := forkChildren(o.forkChildren); err != nil {
			return err
		}
	}

	if o.serveHTTP != "" {
		if err := serveHTTP(o.serveHTTP); err != nil {
			return err
		}
	}
	if o.sleep != "" {
		if err := sleep(o.sleep); err != nil {
			return err
		}
	}
	runtime.KeepAlive(held)
	return nil
}

// setupSignals installs the handlers before any action, so a signal that
// arrives early is not lost to the default action.
func setupSignals(o *options) {
	if !o.silentSigterm && !o.printSignals {
		return
	}
	c := make(chan os.Signal, 32)
	if o.printSignals {
		signal.Notify(c) // every catchable signal
	} else {
		signal.Notify(c, unix.SIGTERM)
	}
	// The goroutine lives as long as the process: it exits the process on
	// SIGTERM with --silent-sigterm.
	go func() {
		for s := range c {
			sig, _ := s.(unix.Signal)
			if sig == unix.SIGURG {
				continue // the Go runtime's preemption signal
			}
			if o.printSignals {
				fmt.Printf("SIGNAL=%s\n", unix.SignalName(sig))
			}
			if sig == unix.SIGTERM && o.silentSigterm {
				fmt.Println("got SIGTERM")
				os.Exit(0)
			}
		}
	}()
}

func hostname() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", os.NewSyscallError("uname", err)
	}
	return unix.ByteSliceToString(u.Nodename[:]), nil
}

// printStatusFields prints the named lines of /proc/self/status as KEY=VALUE.
func printStatusFields(keys ...string) error {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err
	}
	fields := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	for _, k := range keys {
		v, ok := fields[k]
		if !ok {
			return fmt.Errorf("/proc/self/status: no %s line", k)
		}
		fmt.Printf("%s=%s\n", k, v)
	}
	return nil
}

func catFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(os.Stdout, f); err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	return nil
}

func statFile(p string) error {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return &os.PathError{Op: "stat", Path: p, Err: err}
	}
	kind := "other"
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		kind = "file"
	case unix.S_IFDIR:
		kind = "dir"
	case unix.S_IFCHR:
		kind = "char"
	case unix.S_IFBLK:
		kind = "block"
	case unix.S_IFIFO:
		kind = "fifo"
	case unix.S_IFSOCK:
		kind = "socket"
	}
	fmt.Printf("STAT=%s type=%s mode=%04o uid=%d gid=%d\n", p, kind, st.Mode&0o7777, st.Uid, st.Gid)
	return nil
}

// checkMknod tries mknod(2) and, when that works, open(2) of the new node:
// the device cgroup may allow the one and refuse the other.
func checkMknod(spec string) error {
	typ, major, minor, p := uint32(unix.S_IFCHR), uint32(1), uint32(3), spec
	if parts := strings.SplitN(spec, ":", 4); len(parts) == 4 {
		switch parts[0] {
		case "c":
		case "b":
			typ = unix.S_IFBLK
		default:
			return fmt.Errorf("check-mknod %q: type must be c or b", spec)
		}
		ma, err1 := strconv.ParseUint(parts[1], 10, 32)
		mi, err2 := strconv.ParseUint(parts[2], 10, 32)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("check-mknod %q: bad major or minor", spec)
		}
		major, minor, p = uint32(ma), uint32(mi), parts[3]
	}
	if err := unix.Mknod(p, typ|0o666, int(unix.Mkdev(major, minor))); err != nil {
		fmt.Printf("MKNOD=%s\n", errnoString(err))
		return nil
	}
	fmt.Println("MKNOD=OK")
	fd, err := unix.Open(p, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		fmt.Printf("MKNOD_OPEN=%s\n", errnoString(err))
		return nil
	}
	unix.Close(fd)
	fmt.Println("MKNOD_OPEN=OK")
	return nil
}

// errnoString names an errno ("EPERM"), or returns the error text.
func errnoString(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) {
		if n := unix.ErrnoName(errno); n != "" {
			return n
		}
		return fmt.Sprintf("errno %d", int(errno))
	}
	return err.Error()
}

func getHTTP(url string, budget time.Duration) (string, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(budget)
	for {
		body, err := getOnce(client, url)
		if err == nil || time.Now().After(deadline) {
			return body, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func getOnce(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("read body of %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("get %s: %s", url, resp.Status)
	}
	return string(b), nil
}

func serveHTTP(addr string) error {
	h, err := hostname()
	if err != nil {
		return err
	}
	var ln net.Listener
	if addr == "listen-fds" {
		// Socket activation (sd_listen_fds(3)): the listener is fd 3 and
		// LISTEN_PID names this process.
		if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) || os.Getenv("LISTEN_FDS") != "1" {
			return fmt.Errorf("not socket-activated: LISTEN_PID=%q (pid %d) LISTEN_FDS=%q",
				os.Getenv("LISTEN_PID"), os.Getpid(), os.Getenv("LISTEN_FDS"))
		}
		ln, err = net.FileListener(os.NewFile(3, "listen-fd"))
	} else {
		ln, err = net.Listen("tcp", addr)
	}
	if err != nil {
		return err
	}
	fmt.Printf("SERVING=%s\n", ln.Addr())
	fmt.Printf("LISTEN_FDNAMES=%s\n", os.Getenv("LISTEN_FDNAMES"))
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "hello from %s", h)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(ln)
}

func sleep(s string) error {
	if s == "forever" || s == "inf" {
		for {
			time.Sleep(time.Hour)
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.Atoi(s)
		if nerr != nil {
			return fmt.Errorf("sleep %q: not a duration or a number of seconds", s)
		}
		d = time.Duration(n) * time.Second
	}
	time.Sleep(d)
	return nil
}

// parseSize reads "123", "64K", "100M", "1G" (binary units; "KiB", "MB" and
// the like are read the same way).
func parseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(s), "B"), "I")
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		}
		if mult != 1 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: want a number with an optional K, M or G suffix", s)
	}
	return n * mult, nil
}

// allocate returns n bytes in 1 MiB chunks with every page written, so the
// memory is charged to the cgroup.
func allocate(n int64) [][]byte {
	const chunk = 1 << 20
	pg := os.Getpagesize()
	var held [][]byte
	for n > 0 {
		sz := int64(chunk)
		if n < sz {
			sz = n
		}
		b := make([]byte, sz)
		for i := 0; i < len(b); i += pg {
			b[i] = 1
		}
		held = append(held, b)
		n -= sz
	}
	return held
}

// forkChildren starts an intermediate child that starts n sleepers and exits
// at once, so the sleepers are orphans that the pod's init must reap.
func forkChildren(n int) error {
	cmd := exec.Command("/proc/self/exe", "--internal-spawn-sleepers="+strconv.Itoa(n))
	cmd.Args[0] = os.Args[0]
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("fork children: %w", err)
	}
	return nil
}

func spawnSleepers(n int) error {
	for range n {
		// Stdio is /dev/null so that the orphans do not hold the pipes of
		// whoever reads this process's output.
		cmd := exec.Command("/proc/self/exe", "--sleep=forever")
		cmd.Args[0] = os.Args[0]
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start sleeper: %w", err)
		}
		fmt.Printf("CHILD_PID=%d\n", cmd.Process.Pid)
	}
	return nil
}
