package stage1

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// StopArgs are the stop entrypoint's arguments: `stop [--force] UUID`, and
// rkt-ng's `--signal=N [--app=NAME]` for `rkt kill`.
type StopArgs struct {
	Force  bool
	Signal int
	App    string
}

// ParseStopArgs parses the stop entrypoint's arguments, for every flavor.
func ParseStopArgs(args []string) (StopArgs, error) {
	var a StopArgs
	fs := flag.NewFlagSet("stop", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&a.Force, "force", false, "")
	fs.IntVar(&a.Signal, "signal", 0, "")
	fs.StringVar(&a.App, "app", "", "")
	if err := fs.Parse(args); err != nil {
		return a, fmt.Errorf("stop: %w", err)
	}
	return a, nil
}

// EnterArgs are the enter entrypoint's arguments:
// `enter --pid=N --appname=A -- CMD ARGS`.
type EnterArgs struct {
	App string
	Cmd []string
}

// ParseEnterArgs parses the enter entrypoint's arguments, for every flavor.
// The command may be empty; the flavor decides what that means.
func ParseEnterArgs(args []string) (EnterArgs, error) {
	var a EnterArgs
	fs := flag.NewFlagSet("enter", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Int("pid", 0, "")
	fs.StringVar(&a.App, "appname", "", "")
	if err := fs.Parse(args); err != nil {
		return a, fmt.Errorf("enter: %w", err)
	}
	a.Cmd = fs.Args()
	return a, nil
}

// GCArgs are the gc entrypoint's arguments:
// `gc [--debug] [--local-config=DIR] UUID`.
type GCArgs struct {
	LocalConfig string
	UUID        string
}

// ParseGCArgs parses the gc entrypoint's arguments, for every flavor.
func ParseGCArgs(args []string) (GCArgs, error) {
	var a GCArgs
	fs := flag.NewFlagSet("gc", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Bool("debug", false, "")
	fs.StringVar(&a.LocalConfig, "local-config", "", "")
	if err := fs.Parse(args); err != nil {
		return a, fmt.Errorf("gc: %w", err)
	}
	if fs.NArg() != 1 {
		return a, errors.New("gc: want exactly one pod UUID")
	}
	a.UUID = fs.Arg(0)
	return a, nil
}
