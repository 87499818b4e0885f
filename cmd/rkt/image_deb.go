package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/appc/spec/schema"
	"github.com/spf13/cobra"

	"github.com/rkt-ng/rkt/manifests"
	"github.com/rkt-ng/rkt/stage0"
	"github.com/rkt-ng/rkt/stage0/images/deb"
)

// debFlags are the flags of `rkt image build --from-deb`.
type debFlags struct {
	fromDeb bool
	rebuild string
	o       deb.BuildOptions
}

func addDebFlags(cmd *cobra.Command) *debFlags {
	d := &debFlags{}
	f := cmd.Flags()
	f.BoolVar(&d.fromDeb, "from-deb", false, "build from Debian packages: args are PKG[=VERSION]... OUT.aci")
	f.StringVar(&d.rebuild, "rebuild", "", "with --from-deb: rebuild IMAGE (store name or ID, or FILE.aci) from its packages at their newest versions; args are OUT.aci")
	f.StringArrayVar(&d.o.Exec, "exec", nil, "with --from-deb: one argument of the app's command line (repeat: --exec /bin/busybox --exec sh)")
	f.StringVar(&d.o.Name, "name", "", "with --from-deb: image name (default debian.org/FIRST-PACKAGE)")
	f.StringVar(&d.o.Version, "image-version", "", "with --from-deb: version label (default: first package's version and a digest of the package set)")
	f.StringVar(&d.o.User, "user", "", "with --from-deb: the app's user (default 0)")
	f.StringVar(&d.o.Group, "group", "", "with --from-deb: the app's group (default 0)")
	f.StringVar(&d.o.WorkingDir, "working-dir", "", "with --from-deb: the app's working directory")
	f.StringArrayVar(&d.o.Env, "env", nil, "with --from-deb: NAME=VALUE in the app's environment (repeatable)")
	f.StringArrayVar(&d.o.Ports, "port", nil, "with --from-deb: NAME:PROTOCOL:PORT the app listens on (repeatable)")
	return d
}

// check refuses deb-only flags without --from-deb, and manifest flags
// with --rebuild (the rebuilt image keeps its manifest).
func (d *debFlags) check(cmd *cobra.Command, args []string) error {
	for _, n := range []string{"rebuild", "exec", "name", "image-version", "user", "group", "working-dir", "env", "port"} {
		if !d.fromDeb && cmd.Flags().Changed(n) {
			return &usageError{fmt.Errorf("--%s needs --from-deb", n)}
		}
	}
	if d.rebuild == "" {
		if d.fromDeb && len(args) < 2 {
			return &usageError{fmt.Errorf("want PKG[=VERSION]... OUT.aci")}
		}
		return nil
	}
	for _, n := range []string{"exec", "name", "user", "group", "working-dir", "env", "port"} {
		if cmd.Flags().Changed(n) {
			return &usageError{fmt.Errorf("--%s: --rebuild keeps the image's manifest", n)}
		}
	}
	if len(args) != 1 {
		return &usageError{fmt.Errorf("--rebuild: want only OUT.aci as argument")}
	}
	return nil
}

func (d *debFlags) build(cmd *cobra.Command, g *globalFlags, args []string, mt *time.Time, overwrite bool) error {
	c, err := g.config()
	if err != nil {
		return err
	}
	o := d.o
	o.Packages = args[:len(args)-1]
	if d.rebuild != "" {
		im, err := readManifest(c, d.rebuild)
		if err != nil {
			return err
		}
		if o, err = deb.RebuildOptions(im); err != nil {
			return fmt.Errorf("--rebuild %s: %w", d.rebuild, err)
		}
		o.Version = d.o.Version
	}
	o.ModTime, o.Overwrite, o.Log = mt, overwrite, c.Log
	out := args[len(args)-1]
	if !strings.HasSuffix(out, ".aci") {
		return &usageError{fmt.Errorf("last argument %q: want the output file OUT.aci", out)}
	}
	if err := o.Check(); err != nil {
		return &usageError{err}
	}
	pkgs, err := deb.Build(cmd.Context(), out, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stdout, "%s: %d packages\n", out, len(pkgs))
	return nil
}

func newImageOutdatedCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "outdated [IMAGE|FILE.aci...]",
		Short: "List packages of images built with --from-deb that apt now has in newer versions (exit 1: rebuild due, 3: with security updates)",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.config()
			if err != nil {
				return err
			}
			var imgs []deb.Image
			all := len(args) == 0
			if all {
				list, err := c.Images().List()
				if err != nil {
					return err
				}
				for _, i := range list {
					args = append(args, i.ID)
				}
			}
			for _, ref := range args {
				im, err := readManifest(c, ref)
				if err != nil {
					return err
				}
				imgs = append(imgs, deb.Image{Ref: ref, Manifest: im})
			}
			reps, err := deb.CheckImages(cmd.Context(), imgs, all)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 8, 1, '\t', 0)
			fmt.Fprintln(tw, "IMAGE\tPACKAGE\tRECORDED\tAVAILABLE\tSECURITY")
			for _, r := range reps {
				for _, u := range r.Updates {
					sec := "no"
					if u.Security {
						sec = "yes"
					}
					fmt.Fprintf(tw, "%s\t%s:%s\t%s\t%s\t%s\n", r.Image, u.Name, u.Arch, u.Version, u.Candidate, sec)
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			return deb.Due(reps)
		},
	}
}

// readManifest reads the manifest of an .aci file, or of a store image by
// name or ID.
func readManifest(c *stage0.Config, ref string) (*schema.ImageManifest, error) {
	if !strings.HasSuffix(ref, ".aci") {
		return c.Images().Manifest(ref)
	}
	f, err := os.Open(ref)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	im, err := manifests.ReadACIManifest(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	return im, nil
}
