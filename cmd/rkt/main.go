// Command rkt is the rkt-ng CLI (stage0): it fetches, verifies and stores
// images, prepares pods and execs their stage1.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/stage0"
)

// hidden are rkt's internal entrypoints, checked before cobra runs.
var hidden = map[string]func(){
	// A process whose user namespace idmapped mounts borrow; it lives
	// until rkt closes its stdin.
	stage0.UsernsHolderCommand: func() { io.Copy(io.Discard, os.Stdin) },
}

func main() {
	if len(os.Args) > 1 {
		if f, ok := hidden[os.Args[1]]; ok {
			f()
			os.Exit(0)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	root := newRootCmd()
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "rkt: %v\n", err)
	}
	os.Exit(exitCode(err))
}
