package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/rkt-ng/rkt/stage0"
	"github.com/rkt-ng/rkt/stage0/cri"
	"github.com/rkt-ng/rkt/stage0/cri/imageservice"
)

// rktBinary is the name of rkt's binary, looked for beside rkt-cri.
const rktBinary = "rkt"

// usageError is a bad command line: exit code 2.
type usageError struct{ error }

func exitCode(err error) int {
	var u *usageError
	if errors.As(err, &u) {
		return 2
	}
	return 254
}

// run parses the flags, builds the server and serves until ctx is done.
func run(ctx context.Context, args []string) error {
	fs := pflag.NewFlagSet("rkt-cri", pflag.ContinueOnError)
	listen := fs.String("listen", cri.DefaultSocket, "unix socket to serve CRI on")
	dir := fs.String("dir", "/var/lib/rkt", "rkt data directory")
	rkt := fs.String("rkt", "", "rkt binary that runs the sandboxes (default: rkt beside rkt-cri)")
	config := fs.String("config", cri.DefaultConfigPath, "configuration file (JSON); absent means the defaults")
	streamAddr := fs.String("stream-address", "127.0.0.1:0", "address of the streaming server (exec, attach, port-forward)")
	debug := fs.Bool("debug", false, "log every call")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return &usageError{err}
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if os.Geteuid() != 0 {
		return errors.New("rkt-cri must run as root")
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := cri.LoadConfig(*config)
	if err != nil {
		return err
	}
	if *rkt == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		*rkt = filepath.Join(filepath.Dir(exe), rktBinary)
	}
	s0 := &stage0.Config{Dir: *dir, LocalConfig: cfg.LocalConfig(), SystemConfig: "/usr/lib/rkt", Debug: *debug, Log: log}
	srv, err := cri.New(cri.Options{Stage0: s0, Rkt: *rkt, Config: cfg, Version: version, Log: log, StreamAddress: *streamAddr})
	if err != nil {
		return err
	}
	is, err := imageservice.New(s0, cfg.RegistryMirrors, log)
	if err != nil {
		return err
	}
	srv.SetImageService(is)
	l, err := cri.Listen(*listen)
	if err != nil {
		return err
	}
	defer os.Remove(*listen)
	return srv.Serve(ctx, l)
}
