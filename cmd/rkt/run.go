package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func newRunCmd(g *globalFlags) *cobra.Command {
	var pf podFlags
	return withPodFlagsHelp(&cobra.Command{
		Use:                "run [--pod flags] [--app flags] IMAGE [--app flags] [-- ARGS] [--- IMAGE ...]",
		Short:              "Run images in a new pod",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			apps, helped, err := parsePodCommand(cmd, args, &pf, true)
			if err != nil || helped {
				return err
			}
			c, err := g.config()
			if err != nil {
				return err
			}
			ro := pf.runOptions(c)
			return c.Run(cmd.Context(), pf.prepareConfig(apps), ro)
		},
	}, true)
}

func newPrepareCmd(g *globalFlags) *cobra.Command {
	var pf podFlags
	return withPodFlagsHelp(&cobra.Command{
		Use:                "prepare [--pod flags] [--app flags] IMAGE [--app flags] [-- ARGS] [--- IMAGE ...]",
		Short:              "Prepare a pod to run later with run-prepared",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			apps, helped, err := parsePodCommand(cmd, args, &pf, false)
			if err != nil || helped {
				return err
			}
			c, err := g.config()
			if err != nil {
				return err
			}
			p, err := c.Prepare(cmd.Context(), pf.prepareConfig(apps))
			if err != nil {
				return err
			}
			if err := p.ToPrepared(); err != nil {
				return err
			}
			if !pf.quiet {
				fmt.Fprint(os.Stderr, "prepared pod: ")
			}
			fmt.Println(p.UUID)
			return nil
		},
	}, false)
}

func newRunPreparedCmd(g *globalFlags) *cobra.Command {
	var pf podFlags
	cmd := &cobra.Command{
		Use:   "run-prepared UUID",
		Short: "Run a prepared pod",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			ro := pf.runOptions(c)
			ro.DNS = pf.dnsFlags()
			return c.RunPrepared(cmd.Context(), args[0], ro)
		},
	}
	pf.registerRun(cmd.Flags())
	pf.registerDNS(cmd.Flags())
	cmd.Flags().BoolVar(&pf.mdsRegister, "mds-register", true, "serve the appc metadata service to the pod")
	return cmd
}
