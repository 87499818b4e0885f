package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rkt-ng/rkt/stage0"
)

func newListCmd(g *globalFlags) *cobra.Command {
	var full, noLegend bool
	var format string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List pods",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			list, err := c.List()
			if err != nil {
				return err
			}
			switch format {
			case "json", "json-pretty":
				enc := json.NewEncoder(os.Stdout)
				if format == "json-pretty" {
					enc.SetIndent("", "\t")
				}
				if list == nil {
					list = []stage0.PodStatus{}
				}
				return enc.Encode(list)
			case "":
			default:
				return &usageError{fmt.Errorf("--format %q: want json or json-pretty", format)}
			}
			return printPodTable(list, full, noLegend)
		},
	}
	cmd.Flags().BoolVar(&full, "full", false, "use long output format")
	cmd.Flags().BoolVar(&noLegend, "no-legend", false, "suppress a legend with the list")
	cmd.Flags().StringVar(&format, "format", "", "output format: json or json-pretty")
	return cmd
}

func printPodTable(list []stage0.PodStatus, full, noLegend bool) error {
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	tw := tabwriter.NewWriter(out, 0, 8, 1, '\t', 0)
	for _, r := range stage0.PodListTable(list, full, noLegend, time.Now()) {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}
