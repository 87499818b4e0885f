package main

import (
	"encoding/json"
	"os"

	"github.com/spf13/cobra"
)

func newConfigCmd(g *globalFlags) *cobra.Command {
	var pretty bool
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the configuration in effect as JSON (without credentials)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			d, err := c.DumpConfig()
			if err != nil {
				return err
			}
			enc := json.NewEncoder(os.Stdout)
			if pretty {
				enc.SetIndent("", "\t")
			}
			return enc.Encode(d)
		},
	}
	cmd.Flags().BoolVar(&pretty, "pretty-print", true, "apply indent to format the output")
	return cmd
}
