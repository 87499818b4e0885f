package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rkt-ng/rkt/stage0"
)

// podFlagSet is the set of flags run or prepare accept anywhere on their
// command line, before and after images: the global flags and the pod flags
// (rkt 1.30 parsed every flag of the command between images).
func podFlagSet(cmd *cobra.Command, pf *podFlags, run bool) *pflag.FlagSet {
	fs := pflag.NewFlagSet(cmd.Name(), pflag.ContinueOnError)
	fs.AddFlagSet(cmd.InheritedFlags())
	pf.register(fs, run)
	pf.deprecated.register(fs)
	if !run {
		fs.BoolVar(&pf.quiet, "quiet", false, "print only the pod UUID")
	}
	return fs
}

// check validates the pod flags once the whole command line is parsed, so a
// mistake is reported before any image is fetched.
func (p *podFlags) check() error {
	var err error
	if p.pullPolicy, err = p.deprecated.pullPolicy(p.pullPolicy); err != nil {
		return err
	}
	o := stage0.Stage1Options{Path: p.stage1Path, URL: p.stage1URL, Name: p.stage1Name, Hash: p.stage1Hash, FromDir: p.stage1FromDir}
	if err := o.Check(); err != nil {
		return &usageError{err}
	}
	return nil
}

// withPodFlagsHelp lists the pod and app flags of run or prepare in the
// command's help. Their values are parsed by parsePodCommand (flag parsing
// is off for these commands: app flags are positional), so the flags
// registered here only describe them.
func withPodFlagsHelp(cmd *cobra.Command, run bool) *cobra.Command {
	var pf podFlags
	var af appFlags
	fs := cmd.Flags()
	pf.register(fs, run)
	pf.deprecated.register(fs)
	if !run {
		fs.BoolVar(&pf.quiet, "quiet", false, "print only the pod UUID")
	}
	af.register(fs)
	return cmd
}
