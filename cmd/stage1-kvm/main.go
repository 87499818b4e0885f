// Command stage1-kvm is the host side of the KVM stage1 (stage1/kvm). One
// static binary serves every entrypoint of the stage1 image, chosen by the
// name it is started as (/run, /gc, /stop, /enter).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"

	"github.com/rkt-ng/rkt/stage1/kvm"
)

func init() {
	// The run entrypoint starts qemu with Pdeathsig set, which fires when
	// the creating thread exits: main stays on the initial thread,
	// deliberately for the process's whole life.
	runtime.LockOSThread()
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	args := os.Args[1:]
	ctx := context.Background()
	var err error
	switch filepath.Base(os.Args[0]) {
	case "run":
		for _, a := range args {
			if a == "--debug" {
				log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
			}
		}
		os.Exit(kvm.Run(ctx, args, log))
	case "gc":
		err = kvm.GC(ctx, args)
	case "stop":
		err = kvm.Stop(args)
	case "enter":
		var code int
		if code, err = kvm.Enter(args); err == nil {
			os.Exit(code)
		}
	default:
		err = fmt.Errorf("unknown entrypoint %q", os.Args[0])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "rkt: stage1-kvm: %v\n", err)
		os.Exit(kvm.ExitFailed)
	}
}
