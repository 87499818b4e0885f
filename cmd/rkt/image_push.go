package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newImagePushCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "push IMAGE docker://REGISTRY/REPO[:TAG]",
		Short: "Push an image of the store to a registry as an OCI image",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			digest, err := c.Images().Push(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			fmt.Println(args[1] + "@" + digest)
			return nil
		},
	}
}
