// Command rkt is the rkt-ng CLI (stage0): it fetches, verifies and stores
// images, prepares pods and execs their stage1.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	root := newRootCmd()
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "rkt: %v\n", err)
	}
	os.Exit(exitCode(err))
}
