package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
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
	if !noLegend {
		fmt.Fprintln(tw, "UUID\tAPP\tIMAGE NAME\tSTATE\tCREATED\tSTARTED\tNETWORKS")
	}
	for _, st := range list {
		uuid := st.UUID
		if !full {
			uuid = uuid[:8]
		}
		created, started := fmtTime(st.Created), fmtTime(st.Started)
		if !full {
			created, started = ago(st.Created), ago(st.Started)
		}
		apps := st.Apps
		if len(apps) == 0 {
			apps = []stage0.AppStatus{{}}
		}
		for i, a := range apps {
			img := a.Image
			if full && a.ImageID != "" {
				img += " (" + a.ImageID + ")"
			}
			if i == 0 {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", uuid, a.Name, img, st.State, created, started, stage0.FormatNetworks(st.Networks))
			} else {
				fmt.Fprintf(tw, "\t%s\t%s\t\t\t\t\n", a.Name, img)
			}
		}
	}
	return tw.Flush()
}

// ago renders a time relative to now, as rkt's list does.
func ago(t *time.Time) string {
	if t == nil {
		return ""
	}
	d := time.Since(*t).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d seconds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d minutes ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}
