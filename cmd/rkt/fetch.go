package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rkt-ng/rkt/stage0"
)

func newFetchCmd(g *globalFlags) *cobra.Command {
	var sig, pull string
	var full bool
	cmd := &cobra.Command{
		Use:   "fetch IMAGE...",
		Short: "Fetch images into the store and verify their signatures",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			s, err := c.Store()
			if err != nil {
				return err
			}
			for _, ref := range args {
				id, err := c.FetchImage(cmd.Context(), s, ref, stage0.FetchOptions{Signature: sig, PullPolicy: pull})
				if err != nil {
					return err
				}
				if !full {
					id = stage0.ShortID(id)
				}
				fmt.Println(id)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&sig, "signature", "", "local signature file of the image")
	cmd.Flags().StringVar(&pull, "pull-policy", "update", "when to fetch: new, update or never")
	cmd.Flags().BoolVar(&full, "full", true, "print the full image ID")
	return cmd
}
