package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/rkt-ng/rkt/stage0"
)

const timeLayout = "2006-01-02 15:04:05.000 -0700 MST"

func fmtTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.Format(timeLayout)
}

// waitFlag is a duration flag that may be given bare (--wait = forever).
func waitFlag(cmd *cobra.Command, p *time.Duration, name, usage string) {
	cmd.Flags().DurationVar(p, name, 0, usage)
	cmd.Flags().Lookup(name).NoOptDefVal = "1000000h"
}

func newStatusCmd(g *globalFlags) *cobra.Command {
	var w stage0.WaitOptions
	var format, uuidFile string
	cmd := &cobra.Command{
		Use:   "status POD",
		Short: "Show the status of a pod",
		RunE: func(cmd *cobra.Command, args []string) error {
			refs, err := podRefs(args, uuidFile)
			if err != nil {
				return err
			}
			if len(refs) != 1 {
				return &usageError{fmt.Errorf("status takes one pod")}
			}
			c, err := g.config()
			if err != nil {
				return err
			}
			st, err := c.Status(cmd.Context(), refs[0], w)
			if err != nil {
				return err
			}
			return printStatus(st, format)
		},
	}
	waitFlag(cmd, &w.Exit, "wait", "wait for the pod to exit (optionally at most this long)")
	waitFlag(cmd, &w.Ready, "wait-ready", "wait for the pod to be ready (optionally at most this long)")
	cmd.Flags().StringVar(&format, "format", "", "output format: json or json-pretty")
	cmd.Flags().StringVar(&uuidFile, "uuid-file", "", "read the pod UUID from this file")
	return cmd
}

func printStatus(st stage0.PodStatus, format string) error {
	switch format {
	case "json", "json-pretty":
		enc := json.NewEncoder(os.Stdout)
		if format == "json-pretty" {
			enc.SetIndent("", "\t")
		}
		return enc.Encode(st)
	case "":
	default:
		return &usageError{fmt.Errorf("--format %q: want json or json-pretty", format)}
	}
	fmt.Printf("state=%s\n", st.State)
	if st.PodName != "" {
		fmt.Printf("name=%s\n", st.PodName)
	}
	fmt.Printf("created=%s\n", fmtTime(st.Created))
	fmt.Printf("started=%s\n", fmtTime(st.Started))
	if len(st.Networks) > 0 {
		fmt.Printf("networks=%s\n", stage0.FormatNetworks(st.Networks))
	}
	if st.PID > 0 {
		fmt.Printf("pid=%d\n", st.PID)
	}
	fmt.Printf("exited=%v\n", st.HasExited())
	// What the stage1 reported (stage1.InfoFile), e.g. stage1-accelerator=tcg.
	for _, k := range slices.Sorted(maps.Keys(st.Stage1Info)) {
		fmt.Printf("stage1-%s=%s\n", k, st.Stage1Info[k])
	}
	for _, a := range st.Apps {
		if a.ExitCode != nil {
			fmt.Printf("app-%s=%d\n", a.Name, *a.ExitCode)
		}
		if a.StoppedByRkt {
			// The code above is the stop signal's, not a failure.
			fmt.Printf("app-%s-stopped-by=rkt\n", a.Name)
		}
	}
	return nil
}
