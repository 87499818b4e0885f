package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rkt-ng/rkt/stage0"
)

func newExportCmd(g *globalFlags) *cobra.Command {
	var o stage0.ExportOptions
	var format string
	cmd := &cobra.Command{
		Use:   "export [--app=NAME] [--overwrite] [--format=aci|oci-bundle] POD OUT",
		Short: "Export an app of an exited pod as an ACI, or of a prepared pod as an OCI runtime bundle",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			switch format {
			case "aci":
				return c.Export(cmd.Context(), args[0], args[1], o)
			case "oci-bundle":
				return c.ExportBundle(cmd.Context(), args[0], args[1], o, bundleConfig)
			}
			return &usageError{fmt.Errorf("--format %q: want aci or oci-bundle", format)}
		},
	}
	cmd.Flags().StringVar(&o.App, "app", "", "name of the app to export (needed when the pod has several)")
	cmd.Flags().BoolVar(&o.Overwrite, "overwrite", false, "replace OUT if it exists")
	cmd.Flags().StringVar(&format, "format", "aci", "what to write: aci (the app's rootfs as it was left, from an exited pod) or oci-bundle (a directory for runc or crun, from a prepared pod)")
	return cmd
}
