// Command stage2 is the pod's init (PID 1 of the pod's PID namespace): as
// `stage2 pod-setup` it first builds the pod's root from stage1's plan; as
// `stage2 exec-app`, it is the launcher that confines and execs one app.
package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime"

	"github.com/rkt-ng/rkt/stage1/podsetup"
	"github.com/rkt-ng/rkt/stage2"
)

func init() {
	// The launcher sets per-thread state (capabilities, no_new_privs, seccomp)
	// and must exec from the same thread, and pod-setup joins the pod's
	// network namespace on this thread, from which the init then starts
	// every app: keep main on the initial thread, deliberately for the
	// process's whole life.
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
	if len(os.Args) > 1 && os.Args[1] == podsetup.Command {
		// The pod's first process: build the pod's root, then be its init.
		log.Debug("pod setup started")
		c, err := podsetup.Read()
		if err == nil {
			log.Debug("pod setup plan read")
			err = podsetup.Run(c)
		}
		if err == nil {
			err = podsetup.Handoff()
		}
		log.Debug("pod root ready")
		if err != nil {
			fmt.Fprintf(os.Stderr, "rkt: pod setup: %v\n", err)
			os.Exit(stage2.ExitLaunchFailed)
		}
	}
	// A mutable pod's init mounts the apps added later (rkt app).
	os.Exit(stage2.Init(log, stage2.WithAppMounts(
		func(plan json.RawMessage, fds []int) error { return podsetup.MountAddedFds(plan, fds) },
		podsetup.UnmountAdded)))
}
