// Command rkt-cri is rkt-ng's CRI server for the kubelet: sandboxes are
// `rkt app sandbox` pods and containers their apps (package stage0/cri).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0+dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "rkt-cri: %v\n", err)
		os.Exit(exitCode(err))
	}
}
