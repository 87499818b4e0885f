package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// newAppCmd is `rkt app`: mutable pods whose apps come and go.
func newAppCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "app",
		Short: "Run a sandbox pod and add, start, stop and remove its apps",
	}
	cmd.AddCommand(newAppSandboxCmd(g), newAppListCmd(g), newAppStatusCmd(g),
		newAppAddCmd(g), newAppStartCmd(g), newAppStopCmd(g), newAppRmCmd(g), newAppReopenLogCmd(g))
	return cmd
}

func newAppSandboxCmd(g *globalFlags) *cobra.Command {
	var pf podFlags
	var annotations, userAnnotations, userLabels, sysctls []string
	cmd := &cobra.Command{
		Use:   "sandbox [--pod flags]",
		Short: "Run a pod with no apps that stays until stopped",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			pc := pf.prepareConfig(nil)
			var err error
			if pc.Annotations, err = kvMap("annotation", annotations); err != nil {
				return err
			}
			if pc.UserAnnotations, err = kvMap("user-annotation", userAnnotations); err != nil {
				return err
			}
			if pc.UserLabels, err = kvMap("user-label", userLabels); err != nil {
				return err
			}
			if pc.Sysctls, err = kvMap("sysctl", sysctls); err != nil {
				return err
			}
			c, err := g.config()
			if err != nil {
				return err
			}
			return c.AppSandbox(cmd.Context(), pc, pf.runOptions(c))
		},
	}
	pf.register(cmd.Flags(), true)
	cmd.Flags().StringArrayVar(&annotations, "annotation", nil, "set a pod annotation (NAME=VALUE)")
	cmd.Flags().StringArrayVar(&userAnnotations, "user-annotation", nil, "set a pod user annotation (NAME=VALUE)")
	cmd.Flags().StringArrayVar(&userLabels, "user-label", nil, "set a pod user label (NAME=VALUE)")
	cmd.Flags().StringArrayVar(&sysctls, "sysctl", nil, "set a namespaced net.* sysctl of the pod (NAME=VALUE)")
	// A sandbox has no app whose port a forward could name: rkt's
	// sandbox format names the pod port itself.
	cmd.Flags().Lookup("port").Usage = "forward a host port to a pod port: NAME:PROTOCOL:PODPORT:HOSTIP:HOSTPORT (HOSTIP 0.0.0.0 for all)"
	return cmd
}

func newAppListCmd(g *globalFlags) *cobra.Command {
	var format string
	var noLegend bool
	cmd := &cobra.Command{
		Use:   "list POD",
		Short: "List the apps of a sandbox",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			apps, err := c.AppList(args[0])
			if err != nil {
				return err
			}
			if format != "" {
				return printAppJSON(apps, format)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 8, 1, '\t', 0)
			if !noLegend {
				fmt.Fprintln(tw, "NAME\tSTATE\tIMAGE NAME\tEXIT CODE")
			}
			for _, a := range apps {
				code := ""
				if a.ExitCode != nil {
					code = fmt.Sprint(*a.ExitCode)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Name, a.State, a.Image, code)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "output format: json or json-pretty")
	cmd.Flags().BoolVar(&noLegend, "no-legend", false, "suppress a legend with the list")
	return cmd
}

func newAppStatusCmd(g *globalFlags) *cobra.Command {
	var format, app string
	cmd := &cobra.Command{
		Use:   "status POD --app=NAME",
		Short: "Show the status of an app of a sandbox",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if app == "" {
				return &usageError{fmt.Errorf("app status: --app is required")}
			}
			c, err := g.config()
			if err != nil {
				return err
			}
			a, err := c.AppStatus(args[0], app)
			if err != nil {
				return err
			}
			if format != "" {
				return printAppJSON(a, format)
			}
			fmt.Printf("name=%s\nstate=%s\n", a.Name, a.State)
			fmt.Printf("created=%s\nstarted=%s\nfinished=%s\n", fmtTime(a.Created), fmtTime(a.Started), fmtTime(a.Finished))
			if a.ExitCode != nil {
				fmt.Printf("exit_code=%d\n", *a.ExitCode)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&app, "app", "", "name of the app")
	cmd.Flags().StringVar(&format, "format", "", "output format: json or json-pretty")
	return cmd
}

// printAppJSON prints v as --format json or json-pretty.
func printAppJSON(v any, format string) error {
	enc := json.NewEncoder(os.Stdout)
	switch format {
	case "json":
	case "json-pretty":
		enc.SetIndent("", "\t")
	default:
		return &usageError{fmt.Errorf("--format %q: want json or json-pretty", format)}
	}
	return enc.Encode(v)
}
