package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rkt-ng/rkt/stage0"
	"github.com/rkt-ng/rkt/stage0/images"
)

func newFetchCmd(g *globalFlags) *cobra.Command {
	var sig, pull string
	var full bool
	var dep deprecatedFlags
	cmd := &cobra.Command{
		Use:   "fetch IMAGE...",
		Short: "Fetch images into the store and verify their signatures",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			if pull, err = dep.pullPolicy(pull); err != nil {
				return err
			}
			ic := c.Images()
			s, err := ic.Store()
			if err != nil {
				return err
			}
			for _, ref := range args {
				id, err := ic.Fetch(cmd.Context(), s, ref, images.FetchOptions{Signature: sig, PullPolicy: pull})
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
	dep.register(cmd.Flags())
	return cmd
}
