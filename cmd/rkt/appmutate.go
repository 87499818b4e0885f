package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rkt-ng/rkt/stage0"
)

func newAppAddCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:                "add POD [--pod flags] IMAGE [--app flags] [-- ARGS]",
		Short:              "Add an app to a sandbox (created, not started)",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := pflag.NewFlagSet("app add", pflag.ContinueOnError)
			fs.SetInterspersed(false)
			fs.AddFlagSet(cmd.InheritedFlags())
			var pf podFlags
			fs.StringArrayVar(&pf.setEnv, "set-env", nil, "environment variable to set for the app (NAME=VALUE)")
			fs.StringVar(&pf.setEnvFile, "set-env-file", "", "file of NAME=VALUE lines to set for the app")
			fs.BoolVar(&pf.inheritEnv, "inherit-env", false, "the app inherits the environment of rkt")
			fs.StringVar(&pf.pullPolicy, "pull-policy", "new", "when to fetch the image: new, update or never")
			criLog := fs.String("cri-log-path", "", "also write the app's output to this host file in the CRI log format")
			stdin := fs.Bool("stdin", false, "keep the app's stdin open for attach clients (the CRI server's attach)")
			stdinOnce := fs.Bool("stdin-once", false, "with --stdin: close the app's stdin when the first attach client's stdin ends")
			tty := fs.Bool("tty", false, "give the app a pseudo-terminal (for attach clients, the CRI server's tty)")
			help := fs.BoolP("help", "h", false, "help")
			if err := fs.Parse(args); err != nil {
				return &usageError{err}
			}
			if *help {
				return cmd.Help()
			}
			rest := fs.Args()
			if len(rest) < 2 {
				return &usageError{fmt.Errorf("app add: want POD IMAGE")}
			}
			pod := rest[0]
			if err := fs.Parse(rest[1:]); err != nil {
				return &usageError{err}
			}
			apps, err := parseApps(fs.Args(), stage0.AppSpec{}, nil)
			if err != nil {
				return err
			}
			if len(apps) != 1 {
				return &usageError{fmt.Errorf("app add: want exactly one image, got %d", len(apps))}
			}
			c, err := g.config()
			if err != nil {
				return err
			}
			apps[0].CRILogPath = *criLog
			if *stdinOnce && !*stdin {
				return &usageError{fmt.Errorf("app add: --stdin-once needs --stdin")}
			}
			apps[0].Stdin, apps[0].StdinOnce, apps[0].TTY = *stdin, *stdinOnce, *tty
			env := stage0.EnvSources{Inherit: pf.inheritEnv, File: pf.setEnvFile, Set: pf.setEnv}
			name, err := c.AppAdd(cmd.Context(), pod, apps[0], env, pf.pullPolicy)
			if err != nil {
				return err
			}
			fmt.Println(name)
			return nil
		},
	}
}

// appVerb is `rkt app start|stop|rm POD --app=NAME`.
func appVerb(g *globalFlags, use, short string, run func(c *stage0.Config, cmd *cobra.Command, pod, app string, force bool) error) *cobra.Command {
	var app string
	var force bool
	cmd := &cobra.Command{
		Use:   use + " POD --app=NAME",
		Short: short,
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if app == "" {
				return &usageError{fmt.Errorf("app %s: --app is required", use)}
			}
			c, err := g.config()
			if err != nil {
				return err
			}
			return run(c, cmd, args[0], app, force)
		},
	}
	cmd.Flags().StringVar(&app, "app", "", "name of the app")
	if use == "stop" {
		cmd.Flags().BoolVar(&force, "force", false, "kill the app at once (SIGKILL)")
	}
	return cmd
}

func newAppStartCmd(g *globalFlags) *cobra.Command {
	return appVerb(g, "start", "Start an app of a sandbox", func(c *stage0.Config, cmd *cobra.Command, pod, app string, _ bool) error {
		return c.AppStart(cmd.Context(), pod, app)
	})
}

func newAppStopCmd(g *globalFlags) *cobra.Command {
	return appVerb(g, "stop", "Stop an app of a sandbox (its stop signal, then SIGKILL after the stop timeout)",
		func(c *stage0.Config, cmd *cobra.Command, pod, app string, force bool) error {
			return c.AppStop(cmd.Context(), pod, app, force)
		})
}

func newAppRmCmd(g *globalFlags) *cobra.Command {
	return appVerb(g, "rm", "Remove an app from a sandbox, stopping it first; its logs stay",
		func(c *stage0.Config, cmd *cobra.Command, pod, app string, _ bool) error {
			return c.AppRm(cmd.Context(), pod, app)
		})
}

func newAppReopenLogCmd(g *globalFlags) *cobra.Command {
	return appVerb(g, "reopen-log", "Have a sandbox write an app's CRI log (--cri-log-path) to a new file at its path, after it was rotated",
		func(c *stage0.Config, cmd *cobra.Command, pod, app string, _ bool) error {
			return c.AppReopenLog(cmd.Context(), pod, app)
		})
}
