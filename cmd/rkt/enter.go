package main

import (
	"github.com/spf13/cobra"
)

func newEnterCmd(g *globalFlags) *cobra.Command {
	var app string
	cmd := &cobra.Command{
		Use:   "enter [--app=NAME] POD [CMD [ARGS...]]",
		Short: "Run a command inside a running app, confined like the app",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			return c.Enter(cmd.Context(), args[0], app, args[1:])
		},
	}
	cmd.Flags().StringVar(&app, "app", "", "name of the app to enter")
	cmd.Flags().SetInterspersed(false)
	return cmd
}
