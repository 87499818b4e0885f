package main

import (
	"github.com/spf13/cobra"

	"github.com/rkt-ng/rkt/stage0"
)

func newExportCmd(g *globalFlags) *cobra.Command {
	var o stage0.ExportOptions
	cmd := &cobra.Command{
		Use:   "export [--app=NAME] [--overwrite] POD OUT.aci",
		Short: "Export an app of an exited pod as an ACI",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			return c.Export(cmd.Context(), args[0], args[1], o)
		},
	}
	cmd.Flags().StringVar(&o.App, "app", "", "name of the app to export (needed when the pod has several)")
	cmd.Flags().BoolVar(&o.Overwrite, "overwrite", false, "replace OUT.aci if it exists")
	return cmd
}
