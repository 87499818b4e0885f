package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/rkt-ng/rkt/stage0"
)

func newLogsCmd(g *globalFlags) *cobra.Command {
	var o stage0.LogOptions
	cmd := &cobra.Command{
		Use:   "logs [--app=NAME] [--follow] [--since=DUR] [--tail=N] POD",
		Short: "Print an app's output, while the pod runs or after it exited",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			return c.Logs(cmd.Context(), args[0], o, os.Stdout)
		},
	}
	cmd.Flags().StringVar(&o.App, "app", "", "name of the app")
	cmd.Flags().BoolVarP(&o.Follow, "follow", "f", false, "keep printing new output until the pod exits")
	cmd.Flags().DurationVar(&o.Since, "since", 0, "only output written within this duration")
	cmd.Flags().IntVar(&o.Tail, "tail", -1, "only the last N lines")
	return cmd
}

func newKillCmd(g *globalFlags) *cobra.Command {
	var sig, app string
	cmd := &cobra.Command{
		Use:   "kill [--signal=SIG] [--app=NAME] POD",
		Short: "Send a signal to the apps of a running pod",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			return c.Kill(cmd.Context(), args[0], app, sig)
		},
	}
	cmd.Flags().StringVarP(&sig, "signal", "s", "SIGTERM", "signal to send (name or number)")
	cmd.Flags().StringVar(&app, "app", "", "only this app (default: every app's main process)")
	return cmd
}
