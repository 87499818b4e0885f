package deb

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/discovery"
	"github.com/rkt-ng/rkt/internal/atomicfile"
	"github.com/rkt-ng/rkt/internal/untar"
	"github.com/rkt-ng/rkt/manifests"
)

// BuildOptions describe an image built from Debian packages.
type BuildOptions struct {
	// Packages are the requests, NAME[:ARCH][=VERSION].
	Packages []string
	// Name is the image name; empty means "debian.org/" plus the first
	// package's name.
	Name string
	// Version is the version label; empty means the first package's
	// resolved version plus a digest of the whole package set.
	Version string
	// Exec, User, Group, WorkingDir, Env (NAME=VALUE) and Ports
	// (NAME:PROTOCOL:PORT) make the image's app; without Exec the image
	// has none.
	Exec                    []string
	User, Group, WorkingDir string
	Env, Ports              []string
	// ModTime, if set, is every entry's mtime: the same package set gives
	// the same bytes.
	ModTime *time.Time
	// Overwrite replaces an existing output file.
	Overwrite bool
	// Log gets progress; nil discards it.
	Log *slog.Logger
	// Base, if set, is the manifest of the image being rebuilt: the new
	// manifest is a copy with the new record and version label, and Name,
	// Exec and the other app options are not used.
	Base *schema.ImageManifest
}

// RebuildOptions returns the options that rebuild the image of manifest
// base: the packages it was requested with, without version pins, so
// that apt picks the newest.
func RebuildOptions(base *schema.ImageManifest) (BuildOptions, error) {
	req, ok := base.Annotations.Get(RequestAnnotation)
	if _, err := Recorded(base); err != nil || !ok || strings.TrimSpace(req) == "" {
		return BuildOptions{}, ErrNoRecord
	}
	o := BuildOptions{Base: base}
	for _, s := range strings.Fields(req) {
		name, _, _ := strings.Cut(s, "=")
		if err := CheckSpec(name); err != nil {
			return BuildOptions{}, fmt.Errorf("annotation %s: %w", RequestAnnotation, err)
		}
		o.Packages = append(o.Packages, name)
	}
	return o, nil
}

// Build resolves o.Packages with the host's apt, downloads the resolved
// set (apt checks every file against its archive's signed Release), unpacks
// each package's data.tar into a fresh rootfs without running any
// maintainer script, records the set in the image (see RecordAnnotation and
// StatusPath) and writes the ACI to out atomically. It returns the
// packages, in apt's install order.
func Build(ctx context.Context, out string, o BuildOptions) ([]Package, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := o.Check(); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(out); err == nil && !o.Overwrite {
		return nil, fmt.Errorf("%s exists (use --overwrite)", out)
	}
	work, err := os.MkdirTemp("", "rkt-deb-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	a, err := newApt(ctx, work)
	if err != nil {
		return nil, err
	}
	pkgs, err := a.resolve(ctx, o.Packages)
	if err != nil {
		return nil, err
	}
	log.Info("packages resolved", "count", len(pkgs))
	// The download directory is apart from work: apt's sandbox user
	// must write it, and must not reach the rootfs.
	dl, err := os.MkdirTemp("", "rkt-deb-download-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dl)
	debs := filepath.Join(work, "debs")
	if err := os.Mkdir(debs, 0o700); err != nil {
		return nil, err
	}
	files, err := a.download(ctx, pkgs, dl, debs)
	if err != nil {
		return nil, err
	}
	rootfs := filepath.Join(work, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return nil, err
	}
	root := os.Geteuid() == 0
	for i, f := range files {
		if err := unpack(ctx, f, rootfs, root); err != nil {
			return nil, fmt.Errorf("unpack %s: %w", pkgs[i], err)
		}
		log.Debug("package unpacked", "package", pkgs[i].String())
	}
	if err := writeStatus(rootfs, pkgs); err != nil {
		return nil, err
	}
	im, err := o.manifest(pkgs)
	if err != nil {
		return nil, err
	}
	err = atomicfile.Write(out, 0o644, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		bo := manifests.BuildOptions{ModTime: o.ModTime, OwnerRoot: !root}
		if err := manifests.WriteACI(bw, im, rootfs, bo); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", out, err)
	}
	return pkgs, nil
}

// Check checks the package requests and the manifest options without
// asking apt anything.
func (o BuildOptions) Check() error {
	if len(o.Packages) == 0 {
		return errors.New("no package given")
	}
	for _, s := range o.Packages {
		if err := CheckSpec(s); err != nil {
			return err
		}
	}
	_, err := o.manifest(nil)
	return err
}

// unpack extracts the data.tar of the .deb f into rootfs through the
// hostile-safe extractor. Only the host's dpkg-deb reads the .deb; nothing
// of the package runs.
func unpack(ctx context.Context, f, rootfs string, keepOwners bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", f)
	cmd.Cancel = func() error { return cmd.Process.Signal(unix.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	r, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	xerr := untar.Extract(ctx, r, rootfs, untar.Options{KeepOwners: keepOwners})
	if xerr != nil {
		cancel()
	}
	werr := cmd.Wait()
	if xerr != nil {
		return xerr
	}
	if werr != nil {
		return fmt.Errorf("dpkg-deb: %w: %s", werr, firstLine(strings.TrimSpace(stderr.String())))
	}
	return nil
}

// StatusPath is the dpkg status file written into the rootfs: one stanza
// per package with Status "install ok unpacked", since no maintainer
// script ran.
const StatusPath = "var/lib/dpkg/status"

func writeStatus(rootfs string, pkgs []Package) error {
	var b strings.Builder
	for _, p := range sortedPackages(pkgs) {
		fmt.Fprintf(&b, "Package: %s\nStatus: install ok unpacked\nArchitecture: %s\nVersion: %s\n\n", p.Name, p.Arch, p.Version)
	}
	r, err := os.OpenRoot(rootfs)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.MkdirAll(filepath.Dir(StatusPath), 0o755); err != nil {
		return fmt.Errorf("record packages: %w", err)
	}
	_ = r.Remove(StatusPath)
	if err := r.WriteFile(StatusPath, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("record packages: %w", err)
	}
	return nil
}

func sortedPackages(pkgs []Package) []Package {
	s := append([]Package(nil), pkgs...)
	sort.Slice(s, func(i, j int) bool {
		if s[i].Name != s[j].Name {
			return s[i].Name < s[j].Name
		}
		return s[i].String() < s[j].String()
	})
	return s
}

// manifest makes the image manifest; with pkgs nil it only checks the
// options.
func (o BuildOptions) manifest(pkgs []Package) (*schema.ImageManifest, error) {
	first, _, _ := strings.Cut(o.Packages[0], "=")
	first, _, _ = strings.Cut(first, ":")
	if o.Base != nil {
		return o.rebuiltManifest(first, pkgs)
	}
	name := o.Name
	if name == "" {
		name = "debian.org/" + strings.ReplaceAll(first, "+", "-")
	}
	n, err := types.NewACIdentifier(name)
	if err != nil {
		return nil, fmt.Errorf("--name %q: %w", name, err)
	}
	im := schema.BlankImageManifest()
	im.Name = *n
	version := o.Version
	if version == "" && pkgs != nil {
		version = defaultVersion(first, pkgs)
	}
	labels := map[types.ACIdentifier]string{
		"os":   "linux",
		"arch": discovery.AppcArch(runtime.GOARCH),
	}
	if version != "" {
		labels["version"] = version
	}
	for k, v := range labels {
		im.Labels = append(im.Labels, types.Label{Name: k, Value: v})
	}
	sort.Slice(im.Labels, func(i, j int) bool { return im.Labels[i].Name < im.Labels[j].Name })
	if pkgs != nil {
		im.Annotations.Set(RecordAnnotation, EncodeRecord(pkgs))
		im.Annotations.Set(RequestAnnotation, strings.Join(o.Packages, " "))
	}
	if len(o.Exec) > 0 {
		app, err := o.app()
		if err != nil {
			return nil, err
		}
		im.App = app
	} else if o.User != "" || o.Group != "" || o.WorkingDir != "" || len(o.Env) > 0 || len(o.Ports) > 0 {
		return nil, errors.New("--user, --group, --working-dir, --env and --port need --exec")
	}
	b, err := im.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return manifests.DecodeImage(b)
}

func (o BuildOptions) app() (*types.App, error) {
	if !filepath.IsAbs(o.Exec[0]) {
		return nil, fmt.Errorf("--exec %q: the command must be an absolute path", o.Exec[0])
	}
	if o.WorkingDir != "" && !filepath.IsAbs(o.WorkingDir) {
		return nil, fmt.Errorf("--working-dir %q: want an absolute path", o.WorkingDir)
	}
	app := &types.App{Exec: types.Exec(o.Exec), User: o.User, Group: o.Group, WorkingDirectory: o.WorkingDir}
	if app.User == "" {
		app.User = "0"
	}
	if app.Group == "" {
		app.Group = "0"
	}
	for _, e := range o.Env {
		k, v, ok := strings.Cut(e, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--env %q: want NAME=VALUE", e)
		}
		app.Environment.Set(k, v)
	}
	for _, p := range o.Ports {
		f := strings.Split(p, ":")
		if len(f) != 3 {
			return nil, fmt.Errorf("--port %q: want NAME:PROTOCOL:PORT", p)
		}
		n, err := types.NewACName(f[0])
		if err != nil {
			return nil, fmt.Errorf("--port %q: %w", p, err)
		}
		num, err := strconv.ParseUint(f[2], 10, 16)
		if err != nil || num == 0 {
			return nil, fmt.Errorf("--port %q: bad port number", p)
		}
		if f[1] != "tcp" && f[1] != "udp" {
			return nil, fmt.Errorf("--port %q: protocol must be tcp or udp", p)
		}
		app.Ports = append(app.Ports, types.Port{Name: *n, Protocol: f[1], Port: uint(num), Count: 1})
	}
	return app, nil
}

// defaultVersion is the resolved version of the first requested package
// and a digest of the whole set, so that a new set is a new version.
func defaultVersion(first string, pkgs []Package) string {
	v := ""
	for _, p := range pkgs {
		if p.Name == first {
			v = p.Version
			break
		}
	}
	sum := sha256.Sum256([]byte(EncodeRecord(pkgs)))
	d := hex.EncodeToString(sum[:4])
	if v == "" {
		return d
	}
	return v + "-" + d
}

// rebuiltManifest is a copy of o.Base with the record of pkgs and a new
// version label.
func (o BuildOptions) rebuiltManifest(first string, pkgs []Package) (*schema.ImageManifest, error) {
	b, err := o.Base.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	im, err := manifests.DecodeImage(b)
	if err != nil {
		return nil, err
	}
	if pkgs == nil {
		return im, nil
	}
	version := o.Version
	if version == "" {
		version = defaultVersion(first, pkgs)
	}
	var labels types.Labels
	for _, l := range im.Labels {
		if l.Name != "version" {
			labels = append(labels, l)
		}
	}
	im.Labels = append(labels, types.Label{Name: "version", Value: version})
	sort.Slice(im.Labels, func(i, j int) bool { return im.Labels[i].Name < im.Labels[j].Name })
	im.Annotations.Set(RecordAnnotation, EncodeRecord(pkgs))
	im.Annotations.Set(RequestAnnotation, strings.Join(o.Packages, " "))
	if b, err = im.MarshalJSON(); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return manifests.DecodeImage(b)
}
