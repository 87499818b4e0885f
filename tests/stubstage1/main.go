// Command stubstage1 is a minimal third-party stage1 for tests: it
// implements rkt's stage1 ABI (docs/design.md, "Stage1 ABI" and "Pod
// directory") with as little machinery as honesty allows, so that the
// conformance suite (tests/stage1test) has a second implementation besides
// stage1/ns, and stage0's handling of foreign stage1s (interface versions,
// dropped arguments) is tested against a real program.
//
// One binary is copied to the four entrypoints (/run-stub, /enter-stub,
// /gc-stub, /stop-stub) and tells them apart by its own file name.
//
//   - run checks RKT_LOCK_FD (an open fd of the pod directory, the working
//     directory, holding a flock), writes `pid` (its own PID), prints
//     "stub stage1 ran: UUID" and "stub stage1 args: ARGS", and runs every
//     app of the pod manifest. Each app runs in a mount namespace of its own:
//     a re-exec of this binary (argv[0] "stub-app-exec", its config as JSON
//     on fd 3, setup errors back on fd 4) makes the host's mounts slaves,
//     chroots into stage1/rootfs/opt/stage2/APP/rootfs (which stage0 laid
//     down), mounts /proc, binds the app's volumes, takes the app's user,
//     group and working directory, and execs the app. Output goes to rkt's
//     stdout and stderr and to rkt/logs/APP; exit codes go to
//     rkt/status/APP (decimal, 128+N for a signal), with -started and
//     -stopped markers and rkt/supervisor-status -> ready. The first app
//     that fails (not one the stub stopped) stops the others and decides
//     the exit code; an app that cannot be set up is rkt's own error, 254.
//     SIGTERM or SIGINT stop every app (SIGKILL after stopTimeout of
//     stage1-options.json, default 10s).
//   - stop sends SIGTERM (--force: SIGKILL) to the run process, or, with
//     --signal=N [--app=A], signal N to the apps' main processes.
//   - enter chroots into /proc/PID/root of the app's main process and execs
//     the command as root with the app's environment.
//   - gc kills app processes that outlived their run (there are none unless
//     it was SIGKILLed) and is idempotent.
//
// Limits, deliberately: no PID, network, UTS or IPC namespace (only
// --net=host is accepted; any other network is refused with exit 254
// instead of silently sharing the host's), no cgroups or isolators, no
// capability or seccomp restriction, no /dev in the app, no --interactive
// terminal, no event handlers, no user namespaces. `rkt enter` runs in the
// app's filesystem but not in its other namespaces. Main processes are
// recorded as "PID STARTTIME" in rkt/stub/APP so that stop, enter and gc
// never signal a recycled PID. It is Linux-only, and never shipped.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// appExecArg0 is the argv[0] of the hidden per-app helper (the runc init
// model): checked before anything else runs.
const appExecArg0 = "stub-app-exec"

func init() {
	if os.Args[0] == appExecArg0 {
		// The helper changes credentials and execs from this goroutine; the
		// parent-death signal it re-arms is per thread, so the main
		// goroutine stays on the main thread for the helper's whole life.
		runtime.LockOSThread()
	}
}

func main() {
	if os.Args[0] == appExecArg0 {
		os.Exit(appExec())
	}
	entry := "run"
	if exe, err := os.Executable(); err == nil {
		entry = strings.TrimSuffix(filepath.Base(exe), "-stub")
	}
	args := os.Args[1:]
	switch entry {
	case "enter":
		os.Exit(enter(args))
	case "stop":
		os.Exit(stop(args))
	case "gc":
		os.Exit(gc(args))
	default:
		os.Exit(run(args))
	}
}

// fail reports an error of the stub itself: exit status 254, as rkt's own
// errors.
func fail(format string, a ...any) int {
	fmt.Fprintf(os.Stderr, "stub stage1: "+format+"\n", a...)
	return 254
}

// lastArg is the pod UUID, which every entrypoint but enter gets last.
func lastArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[len(args)-1]
}

// flagValue returns the value of --name=V in args.
func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if a == "--" {
			break
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--"+name || a == "--"+name+"=true" {
			return true
		}
	}
	return false
}
