package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rkt-ng/rkt/stage0"
	"github.com/rkt-ng/rkt/stage0/images"
)

func newImageCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Operate on images in the store"}
	cmd.AddCommand(newImageListCmd(g), newImageRmCmd(g), newImageCatManifestCmd(g), newImageBuildCmd(g), newImageSignCmd(), newFetchCmd(g),
		newImageGCCmd(g), newImageOutdatedCmd(g), newImageExportCmd(g), newImageExtractCmd(g, false), newImageExtractCmd(g, true), newImageVerifyCmd(g),
		newImagePushCmd(g))
	return cmd
}

func newImageListCmd(g *globalFlags) *cobra.Command {
	var o stage0.ImageListOptions
	var noLegend bool
	var format, order string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List images in the store",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "" && format != "json" && format != "json-pretty" {
				return &usageError{fmt.Errorf("--format %q: want json or json-pretty", format)}
			}
			if order != "asc" && order != "desc" {
				return &usageError{fmt.Errorf("--order %q: want asc or desc", order)}
			}
			o.Descending = order == "desc"
			if err := o.Check(); err != nil {
				return &usageError{err}
			}
			c, err := g.config()
			if err != nil {
				return err
			}
			imgs, err := c.ImageList(o)
			if err != nil {
				return err
			}
			if format != "" {
				enc := json.NewEncoder(os.Stdout)
				if format == "json-pretty" {
					enc.SetIndent("", "\t")
				}
				return enc.Encode(imgs)
			}
			rows, err := stage0.ImageListTable(imgs, o, noLegend, time.Now())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 8, 1, '\t', 0)
			for _, r := range rows {
				fmt.Fprintln(tw, strings.Join(r, "\t"))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&o.Full, "full", false, "use long output format")
	cmd.Flags().BoolVar(&noLegend, "no-legend", false, "suppress a legend with the list")
	cmd.Flags().StringVar(&format, "format", "", "output format: json or json-pretty")
	cmd.Flags().StringVar(&o.Fields, "fields", "id,name,size,importtime,lastused", "comma-separated list of fields to display: id, name, size, importtime, lastused")
	cmd.Flags().StringVar(&o.Sort, "sort", "importtime", "sort the output by this comma-separated list of fields: name, importtime, lastused, size")
	cmd.Flags().StringVar(&order, "order", "asc", "sorting order: asc or desc")
	return cmd
}

func newImageRmCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rm IMAGE...",
		Short: "Remove images from the store",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			return c.Images().Remove(cmd.Context(), args, os.Stdout)
		},
	}
}

func newImageCatManifestCmd(g *globalFlags) *cobra.Command {
	var pretty bool
	cmd := &cobra.Command{
		Use:   "cat-manifest IMAGE",
		Short: "Print the manifest of an image",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			im, err := c.Images().Manifest(args[0])
			if err != nil {
				return err
			}
			b, err := im.MarshalJSON()
			if err != nil {
				return err
			}
			return printJSON(b, pretty)
		},
	}
	cmd.Flags().BoolVar(&pretty, "pretty-print", true, "apply indent to format the output")
	return cmd
}

func newImageBuildCmd(g *globalFlags) *cobra.Command {
	var overwrite bool
	var mtime int64
	var d *debFlags
	cmd := &cobra.Command{
		Use:   "build DIR OUT.aci | build --from-deb PKG[=VERSION]... OUT.aci | build --from-deb --rebuild IMAGE OUT.aci",
		Short: "Build an ACI from a directory holding manifest and rootfs/, or from Debian packages",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := d.check(cmd, args); err != nil {
				return err
			}
			var mt *time.Time
			if cmd.Flags().Changed("mtime") {
				t := time.Unix(mtime, 0)
				mt = &t
			}
			if d.fromDeb {
				return d.build(cmd, g, args, mt, overwrite)
			}
			if len(args) != 2 {
				return &usageError{fmt.Errorf("accepts 2 arg(s), received %d", len(args))}
			}
			return images.Build(args[0], args[1], mt, overwrite)
		},
	}
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "replace OUT if it exists")
	cmd.Flags().Int64Var(&mtime, "mtime", 0, "set every entry's mtime to this Unix time (reproducible builds)")
	d = addDebFlags(cmd)
	return cmd
}

func newImageSignCmd() *cobra.Command {
	var key, out, passFile string
	cmd := &cobra.Command{
		Use:   "sign --key SECRET.asc IMAGE.aci",
		Short: "Write an armored detached signature IMAGE.aci.asc",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if key == "" {
				return &usageError{fmt.Errorf("--key is required")}
			}
			var pass []byte
			if passFile != "" {
				b, err := os.ReadFile(passFile)
				if err != nil {
					return fmt.Errorf("--passphrase-file: %w", err)
				}
				pass = []byte(strings.TrimRight(string(b), "\r\n"))
			}
			return images.Sign(args[0], key, pass, out)
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "armored secret key file")
	cmd.Flags().StringVar(&out, "output", "", "signature file (default IMAGE.asc)")
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "file holding the key's passphrase")
	return cmd
}
