package main

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/rkt-ng/rkt/pods"
	"github.com/rkt-ng/rkt/stage0"
)

func newGCCmd(g *globalFlags) *cobra.Command {
	var o stage0.GCOptions
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Garbage collect pods that have exited",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			return c.GC(cmd.Context(), o, os.Stdout)
		},
	}
	cmd.Flags().DurationVar(&o.GracePeriod, "grace-period", 30*time.Minute, "time an exited pod is kept before removal")
	cmd.Flags().DurationVar(&o.ExpirePrepared, "expire-prepared", 24*time.Hour, "time a prepared pod is kept")
	cmd.Flags().BoolVar(&o.MarkOnly, "mark-only", false, "only mark exited pods as garbage, remove nothing")
	return cmd
}

func newStopCmd(g *globalFlags) *cobra.Command {
	var force bool
	var uuidFile string
	cmd := &cobra.Command{
		Use:   "stop POD...",
		Short: "Stop running pods",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			refs, err := podRefs(args, uuidFile)
			if err != nil {
				return err
			}
			return eachPod(refs, "stop", func(ref string) (*pods.Pod, error) { return c.Stop(cmd.Context(), ref, force) })
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "kill the pod instead of asking it to stop")
	cmd.Flags().StringVar(&uuidFile, "uuid-file", "", "read the pod UUID from this file")
	return cmd
}

func newRmCmd(g *globalFlags) *cobra.Command {
	var uuidFile string
	cmd := &cobra.Command{
		Use:   "rm POD...",
		Short: "Remove exited or prepared pods",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			refs, err := podRefs(args, uuidFile)
			if err != nil {
				return err
			}
			return eachPod(refs, "remove", func(ref string) (*pods.Pod, error) { return c.Remove(cmd.Context(), ref) })
		},
	}
	cmd.Flags().StringVar(&uuidFile, "uuid-file", "", "read the pod UUID from this file")
	return cmd
}

// podRefs returns the pods named on the command line or in --uuid-file.
func podRefs(args []string, uuidFile string) ([]string, error) {
	if uuidFile != "" {
		if len(args) > 0 {
			return nil, &usageError{fmt.Errorf("give pods either as arguments or with --uuid-file")}
		}
		b, err := os.ReadFile(uuidFile)
		if err != nil {
			return nil, fmt.Errorf("--uuid-file: %w", err)
		}
		return []string{string(bytes.TrimSpace(b))}, nil
	}
	if len(args) == 0 {
		return nil, &usageError{fmt.Errorf("no pod given")}
	}
	return args, nil
}

// eachPod applies fn to every pod reference, printing each pod's UUID as rkt
// does. One pod's error is the command's error; with several pods each
// failure is printed and the command fails at the end.
func eachPod(refs []string, verb string, fn func(ref string) (*pods.Pod, error)) error {
	var failed error
	for _, ref := range refs {
		p, err := fn(ref)
		if err != nil {
			if len(refs) == 1 {
				return err
			}
			fmt.Fprintf(os.Stderr, "rkt: %v\n", err)
			failed = fmt.Errorf("failed to %s some of %d pods", verb, len(refs))
			continue
		}
		fmt.Printf("%q\n", p.UUID)
	}
	return failed
}
