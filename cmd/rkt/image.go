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
	cmd.AddCommand(newImageListCmd(g), newImageRmCmd(g), newImageCatManifestCmd(g), newImageBuildCmd(), newImageSignCmd(), newFetchCmd(g),
		newImageGCCmd(g), newImageExportCmd(g), newImageExtractCmd(g, false), newImageExtractCmd(g, true), newImageVerifyCmd(g))
	return cmd
}

func newImageListCmd(g *globalFlags) *cobra.Command {
	var full, noLegend bool
	var format, fields string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List images in the store",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			imgs, err := c.Images().List()
			if err != nil {
				return err
			}
			if format == "json" || format == "json-pretty" {
				enc := json.NewEncoder(os.Stdout)
				if format == "json-pretty" {
					enc.SetIndent("", "\t")
				}
				return enc.Encode(imgs)
			}
			cols := strings.Split(strings.ToLower(fields), ",")
			tw := tabwriter.NewWriter(os.Stdout, 0, 8, 1, '\t', 0)
			if !noLegend {
				fmt.Fprintln(tw, strings.ToUpper(strings.Join(cols, "\t")))
			}
			for _, im := range imgs {
				var row []string
				for _, col := range cols {
					switch col {
					case "id":
						id := im.ID
						if !full {
							id = stage0.ShortID(id)
						}
						row = append(row, id)
					case "name":
						n := im.Name
						if v, ok := im.Labels.Get("version"); ok {
							n += ":" + v
						}
						row = append(row, n)
					case "size":
						row = append(row, humanSize(im.Size, full))
					case "importtime":
						row = append(row, im.ImportTime.Format(time.RFC3339))
					case "lastused":
						row = append(row, im.LastUsed.Format(time.RFC3339))
					default:
						return &usageError{fmt.Errorf("--fields: unknown field %q", col)}
					}
				}
				fmt.Fprintln(tw, strings.Join(row, "\t"))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&full, "full", false, "use long output format")
	cmd.Flags().BoolVar(&noLegend, "no-legend", false, "suppress a legend with the list")
	cmd.Flags().StringVar(&format, "format", "", "output format: json or json-pretty")
	cmd.Flags().StringVar(&fields, "fields", "id,name,size,importtime,lastused", "comma-separated fields to print")
	return cmd
}

func humanSize(n int64, exact bool) string {
	if exact {
		return fmt.Sprint(n)
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f, i := float64(n), 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.1f%s", f, units[i])
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

func newImageBuildCmd() *cobra.Command {
	var overwrite bool
	var mtime int64
	cmd := &cobra.Command{
		Use:   "build DIR OUT.aci",
		Short: "Build an ACI from a directory holding manifest and rootfs/",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var mt *time.Time
			if cmd.Flags().Changed("mtime") {
				t := time.Unix(mtime, 0)
				mt = &t
			}
			return images.Build(args[0], args[1], mt, overwrite)
		},
	}
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "replace OUT if it exists")
	cmd.Flags().Int64Var(&mtime, "mtime", 0, "set every entry's mtime to this Unix time (reproducible builds)")
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
