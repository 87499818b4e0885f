package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/rkt-ng/rkt/stage1"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0+dev"

func newVersionCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and exit",
		Args:  exactArgs(0),
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Printf("rkt Version: %s\nappc Version: 0.8.11\nGo Version: %s\nGo OS/Arch: %s/%s\nFeatures: -TPM +SDJOURNAL=false +OVERLAY\nStage1 interface version: %d\n",
				version, runtime.Version(), runtime.GOOS, runtime.GOARCH, stage1.InterfaceVersion)
		},
	}
}
