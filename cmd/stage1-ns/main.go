// Command stage1-ns is the namespace stage1. One static binary serves every
// entrypoint of the stage1 image, chosen by the name it is started as (/init,
// /gc, /stop, /enter, /app-add, /app-start, /app-stop, /app-rm,
// /app-reopen-log, /app-attach).
package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"

	"github.com/rkt-ng/rkt/stage1/ns"
)

func init() {
	// The run entrypoint's children have Pdeathsig set, which fires when the
	// creating thread exits: main stays on the initial thread, deliberately
	// for the process's whole life.
	runtime.LockOSThread()
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	args := os.Args[1:]
	var err error
	switch filepath.Base(os.Args[0]) {
	case "init", "run":
		for _, a := range args {
			if a == "--debug" {
				log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
			}
		}
		os.Exit(ns.Run(args, log))
	case "gc":
		err = ns.GC(args)
	case "stop":
		err = ns.Stop(args)
	case "app-add":
		err = ns.AppAdd(args, log)
	case "app-start":
		err = ns.AppStart(args, log)
	case "app-stop":
		err = ns.AppStop(args)
	case "app-rm":
		err = ns.AppRm(args)
	case "app-reopen-log":
		err = ns.AppReopenLog(args)
	case "app-attach":
		var code int
		if code, err = ns.AppAttach(args); err == nil {
			os.Exit(code)
		}
	case "enter":
		var code int
		if code, err = ns.Enter(args); err == nil {
			os.Exit(code)
		}
	default:
		err = fmt.Errorf("unknown entrypoint %q", os.Args[0])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "rkt: %v\n", err)
		os.Exit(ns.ExitFailed)
	}
}
