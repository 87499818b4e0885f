package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rkt-ng/rkt/stage0"
)

// globalFlags are rkt's flags valid for every command.
type globalFlags struct {
	dir, localConfig, systemConfig, userConfig string
	insecure                                   string
	debug, trustKeysFromHTTPS                  bool
	logFormat                                  string
	maxImageSize                               string
	// flags are the global flags themselves, to see which were given.
	flags *pflag.FlagSet
}

// config builds the stage0 configuration from the global flags.
func (g *globalFlags) config() (*stage0.Config, error) {
	in, err := stage0.ParseInsecure(g.insecure)
	if err != nil {
		return nil, &usageError{fmt.Errorf("--insecure-options: %w", err)}
	}
	maxSize, err := stage0.ParseSize(g.maxImageSize)
	if err != nil {
		return nil, &usageError{fmt.Errorf("--max-image-size: %w", err)}
	}
	level := slog.LevelWarn
	if g.debug {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if g.logFormat == "json" {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	c := &stage0.Config{
		Dir: g.dir, LocalConfig: g.localConfig, SystemConfig: g.systemConfig, UserConfig: g.userConfig,
		Insecure: in, Debug: g.debug, Log: slog.New(h), TrustKeysFromHTTPS: g.trustKeysFromHTTPS,
		MaxImageSize: maxSize,
	}
	if err := c.ApplyConfigFiles(g.flags != nil && g.flags.Changed("dir")); err != nil {
		return nil, err
	}
	return c, nil
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "rkt",
		Short:         "rkt-ng: a daemonless pod runner",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Every command but those reading pod and image information needs
		// root, as in rkt.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return stage0.CheckUser(cmd.CommandPath()) },
	}
	pf := root.PersistentFlags()
	g.flags = pf
	pf.StringVar(&g.dir, "dir", "/var/lib/rkt", "rkt data directory")
	pf.StringVar(&g.localConfig, "local-config", "/etc/rkt", "local configuration directory")
	pf.StringVar(&g.systemConfig, "system-config", "/usr/lib/rkt", "system configuration directory")
	pf.StringVar(&g.userConfig, "user-config", "", "user configuration directory")
	pf.StringVar(&g.insecure, "insecure-options", "none", "comma-separated list of security features to disable: none,image,tls,http,pubkey,capabilities,paths,seccomp,all-fetch,all-run,all")
	pf.BoolVar(&g.debug, "debug", false, "print out more debug information to stderr")
	pf.BoolVar(&g.trustKeysFromHTTPS, "trust-keys-from-https", false, "automatically trust the keys an image's discovery announces over https when its signer is not trusted yet")
	pf.StringVar(&g.maxImageSize, "max-image-size", "16GiB", "largest decompressed size of an image (an ACI, or each OCI layer) that fetch imports; K, M, G, T suffixes")
	pf.StringVar(&g.logFormat, "log-format", "text", "format of log messages on stderr: text or json")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(
		newRunCmd(g), newPrepareCmd(g), newRunPreparedCmd(g),
		newFetchCmd(g), newTrustCmd(g), newGCCmd(g), newStatusCmd(g), newListCmd(g), newStopCmd(g), newRmCmd(g),
		newCatManifestCmd(g), newImageCmd(g), newVersionCmd(g), newEnterCmd(g),
		newExportCmd(g), newConfigCmd(g), newLogsCmd(g), newKillCmd(g), newAppCmd(g),
	)
	refuseUnknownCommands(root)
	return root
}

// refuseUnknownCommands makes every command that only groups subcommands
// refuse an unknown one (`rkt image bogus`) as a usage error instead of
// printing its help and exiting 0. Without arguments a group prints its
// help; the root then fails with rkt 1.30's "missing command" (exit 2).
func refuseUnknownCommands(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		refuseUnknownCommands(c)
	}
	if !cmd.HasSubCommands() || cmd.Runnable() {
		return
	}
	cmd.Args = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return &usageError{fmt.Errorf("unknown command %q for %q", args[0], c.CommandPath())}
		}
		return nil
	}
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if err := c.Help(); err != nil {
			return err
		}
		if !c.HasParent() {
			return &usageError{errors.New("missing command")}
		}
		return nil
	}
}

// exactArgs is cobra.ExactArgs with rkt's usage exit status.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return &usageError{err}
		}
		return nil
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.MinimumNArgs(n)(cmd, args); err != nil {
			return &usageError{err}
		}
		return nil
	}
}
