package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/rkt-ng/rkt/stage0/images"
)

func newImageGCCmd(g *globalFlags) *cobra.Command {
	var o images.GCOptions
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove unused rendered trees and OCI layers, and images not used within the grace period",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			return c.Images().GC(cmd.Context(), o, os.Stdout)
		},
	}
	cmd.Flags().DurationVar(&o.GracePeriod, "grace-period", 24*time.Hour, "keep images used more recently than this")
	return cmd
}

func newImageExportCmd(g *globalFlags) *cobra.Command {
	var overwrite bool
	var format string
	cmd := &cobra.Command{
		Use:   "export [--format=aci|oci|oci-bundle] IMAGE OUT",
		Short: "Write an image of the store as an uncompressed ACI, an OCI image layout or an OCI runtime bundle directory",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			switch format {
			case "aci":
				return c.Images().Export(cmd.Context(), args[0], args[1], overwrite)
			case "oci":
				return c.Images().ExportOCI(cmd.Context(), args[0], args[1], overwrite)
			case "oci-bundle":
				return c.Images().ExportBundle(cmd.Context(), args[0], args[1], images.BundleOptions{Overwrite: overwrite}, bundleConfig)
			}
			return &usageError{fmt.Errorf("--format %q: want aci, oci or oci-bundle", format)}
		},
	}
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "replace OUT if it exists")
	cmd.Flags().StringVar(&format, "format", "aci", "what to write: aci (a file), oci (an OCI image layout directory, for registries and docker/podman) or oci-bundle (a directory with config.json and rootfs/ for runc or crun)")
	return cmd
}

// newImageExtractCmd builds `image extract` (the image's own files) and
// `image render` (with its dependencies, as a pod sees it).
func newImageExtractCmd(g *globalFlags, render bool) *cobra.Command {
	var o images.ExtractOptions
	use, short := "extract IMAGE DIR", "Extract an image's own manifest and rootfs into DIR"
	if render {
		use, short = "render IMAGE DIR", "Render an image with its dependencies into DIR"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			if render {
				return c.Images().Render(cmd.Context(), args[0], args[1], o)
			}
			return c.Images().Extract(cmd.Context(), args[0], args[1], o)
		},
	}
	cmd.Flags().BoolVar(&o.RootfsOnly, "rootfs-only", false, "write only the root filesystem, into DIR itself")
	cmd.Flags().BoolVar(&o.Overwrite, "overwrite", false, "replace DIR if it exists")
	return cmd
}

func newImageVerifyCmd(g *globalFlags) *cobra.Command {
	var o images.VerifyOptions
	cmd := &cobra.Command{
		Use:   "verify [IMAGE...]",
		Short: "Re-hash stored images, OCI layers and rendered trees and report (or remove) what is corrupt",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			return c.Images().Verify(cmd.Context(), args, o, os.Stdout)
		},
	}
	cmd.Flags().BoolVar(&o.Repair, "repair", false, "remove corrupt entries that no pod uses; fetch or run the image again to restore them")
	return cmd
}
