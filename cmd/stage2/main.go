// Command stage2 is the pod's init (PID 1 of the pod's PID namespace) and, as
// `stage2 exec-app`, the launcher that confines and execs one app process.
package main

import (
	"log/slog"
	"os"
	"runtime"

	"github.com/rkt-ng/rkt/stage2"
)

func init() {
	// The launcher sets per-thread state (capabilities, no_new_privs, seccomp)
	// and must exec from the same thread: keep main on the initial thread,
	// deliberately for the process's whole life.
	runtime.LockOSThread()
}

func main() {
	level := slog.LevelInfo
	if os.Getenv("RKT_STAGE2_DEBUG") == "1" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if len(os.Args) > 1 && os.Args[1] == stage2.LaunchCommand {
		stage2.Launch()
		os.Exit(stage2.ExitLaunchFailed)
	}
	os.Exit(stage2.Init(log))
}
