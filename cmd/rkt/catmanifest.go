package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func newCatManifestCmd(g *globalFlags) *cobra.Command {
	var pretty bool
	var uuidFile string
	cmd := &cobra.Command{
		Use:   "cat-manifest POD",
		Short: "Print the pod manifest",
		RunE: func(cmd *cobra.Command, args []string) error {
			refs, err := podRefs(args, uuidFile)
			if err != nil {
				return err
			}
			c, err := g.config()
			if err != nil {
				return err
			}
			pd, err := c.Pods()
			if err != nil {
				return err
			}
			p, err := pd.Get(refs[0])
			if err != nil {
				return err
			}
			b, err := os.ReadFile(p.ManifestPath())
			if err != nil {
				return fmt.Errorf("pod %s: %w", p.UUID, err)
			}
			return printJSON(b, pretty)
		},
	}
	cmd.Flags().BoolVar(&pretty, "pretty-print", true, "apply indent to format the output")
	cmd.Flags().StringVar(&uuidFile, "uuid-file", "", "read the pod UUID from this file")
	return cmd
}

func printJSON(b []byte, pretty bool) error {
	if pretty {
		var out bytes.Buffer
		if err := json.Indent(&out, b, "", "\t"); err != nil {
			return err
		}
		b = out.Bytes()
	}
	_, err := fmt.Println(string(b))
	return err
}
