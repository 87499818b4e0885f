package deb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNoLists means the host's apt has no package lists to resolve from.
var ErrNoLists = errors.New("apt has no package lists (run apt-get update)")

// listsOverride, when set by a test, replaces apt's lists directory.
var listsOverride string

// haveLists says whether apt's lists directory (Dir::State::lists, so
// APT_CONFIG is honoured) holds a Packages index, which `apt-get update`
// writes.
func haveLists(ctx context.Context) bool {
	dir := listsOverride
	if dir == "" {
		dir = "/var/lib/apt/lists/"
		cmd := exec.CommandContext(ctx, "apt-config", "shell", "LISTS", "Dir::State::lists/d")
		if out, err := cmd.Output(); err == nil {
			v := strings.TrimSpace(string(out))
			if v, ok := strings.CutPrefix(v, "LISTS='"); ok && strings.HasSuffix(v, "'") {
				dir = strings.TrimSuffix(v, "'")
			}
		}
	}
	m, _ := filepath.Glob(filepath.Join(dir, "*_Packages*"))
	return len(m) > 0
}

// Package is one Debian binary package at one version.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
}

// String is the package as apt takes it: name:arch=version.
func (p Package) String() string { return p.Name + ":" + p.Arch + "=" + p.Version }

var (
	nameRe    = `[a-z0-9][a-z0-9+.-]+`
	versionRe = `[A-Za-z0-9.+~:-]+`
	specRe    = regexp.MustCompile(`^` + nameRe + `(:[a-z0-9-]+)?(=` + versionRe + `)?$`)
	recordRe  = regexp.MustCompile(`^(` + nameRe + `):([a-z0-9-]+)=(` + versionRe + `)$`)
	// instRe matches a line of `apt-get -s install`:
	// Inst libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64])
	instRe = regexp.MustCompile(`^Inst (` + nameRe + `)(?::[a-z0-9-]+)? (?:\[[^]]*\] )?\((` + versionRe + `) .*\[([a-z0-9-]+)\]\)`)
)

// CheckSpec checks a package request PKG[:ARCH][=VERSION].
func CheckSpec(spec string) error {
	if !specRe.MatchString(spec) {
		return fmt.Errorf("package %q: want NAME[:ARCH][=VERSION] with a Debian package name", spec)
	}
	return nil
}

// apt runs the host's apt-get and apt-cache against the host's package
// lists, sources and keys but with a private, empty dpkg status in dir:
// the host's installed packages are neither consulted nor changed, and
// apt's binary caches are kept in memory so that the host's are left alone.
type apt struct {
	dir string
}

func newApt(ctx context.Context, dir string) (*apt, error) {
	if !haveLists(ctx) {
		return nil, ErrNoLists
	}
	if err := os.WriteFile(filepath.Join(dir, "dpkg-status"), nil, 0o644); err != nil {
		return nil, err
	}
	return &apt{dir: dir}, nil
}

func (a *apt) command(ctx context.Context, tool string, args ...string) *exec.Cmd {
	base := []string{"-q",
		"-o", "Dir::State::status=" + filepath.Join(a.dir, "dpkg-status"),
		"-o", "Dir::Cache::pkgcache=",
		"-o", "Dir::Cache::srcpkgcache=",
		"-o", "APT::Install-Recommends=false",
		"-o", "APT::Install-Suggests=false",
	}
	cmd := exec.CommandContext(ctx, tool, append(base, args...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
	cmd.Cancel = func() error { return cmd.Process.Signal(unix.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// run runs cmd and returns its stdout; on failure the error carries apt's
// first "E:" line.
func run(cmd *exec.Cmd) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		for _, l := range strings.Split(stderr.String(), "\n") {
			if msg, ok := strings.CutPrefix(l, "E: "); ok {
				return nil, errors.New(msg)
			}
		}
		if s := strings.TrimSpace(stderr.String()); s != "" {
			return nil, fmt.Errorf("%s: %w: %s", filepath.Base(cmd.Path), err, firstLine(s))
		}
		return nil, fmt.Errorf("%s: %w", filepath.Base(cmd.Path), err)
	}
	return stdout.Bytes(), nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// resolve returns specs and everything they depend on (no recommends), as
// apt would install them into an empty system, in apt's install order.
func (a *apt) resolve(ctx context.Context, specs []string) ([]Package, error) {
	for _, s := range specs {
		if err := CheckSpec(s); err != nil {
			return nil, err
		}
	}
	out, err := run(a.command(ctx, "apt-get", append([]string{"--simulate", "install"}, specs...)...))
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", strings.Join(specs, " "), err)
	}
	var pkgs []Package
	for _, l := range strings.Split(string(out), "\n") {
		if m := instRe.FindStringSubmatch(l); m != nil {
			pkgs = append(pkgs, Package{Name: m[1], Version: m[2], Arch: m[3]})
		}
	}
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("resolve %s: apt selected no package", strings.Join(specs, " "))
	}
	return pkgs, nil
}

// download fetches pkgs with `apt-get download`, which checks each file
// against the signed Release of its archive, into dl, a directory apt's
// sandbox user may write. Each file is then copied into priv, which only
// the caller can reach, and checked again against the size and SHA256 apt
// printed from its verified index: what is unpacked is exactly what the
// archive signed, whatever the sandbox user did to dl meanwhile. It returns
// the paths of the copies in the order of pkgs.
func (a *apt) download(ctx context.Context, pkgs []Package, dl, priv string) ([]string, error) {
	args := []string{"download"}
	for _, p := range pkgs {
		args = append(args, p.String())
	}
	uris, err := run(a.command(ctx, "apt-get", append([]string{"--print-uris", "download"}, args[1:]...)...))
	if err != nil {
		return nil, fmt.Errorf("download packages: %w", err)
	}
	want, err := parseURIs(string(uris))
	if err != nil {
		return nil, fmt.Errorf("download packages: %w", err)
	}
	if os.Geteuid() == 0 {
		// apt fetches as its sandbox user, which must be able to write dl.
		if u, err := user.Lookup("_apt"); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			if err := os.Chown(dl, uid, -1); err != nil {
				return nil, err
			}
		}
	}
	cmd := a.command(ctx, "apt-get", args...)
	cmd.Dir = dl
	if _, err := run(cmd); err != nil {
		return nil, fmt.Errorf("download packages: %w", err)
	}
	paths := make([]string, len(pkgs))
	for i, p := range pkgs {
		// apt names a file name_version_arch.deb, with ':' escaped.
		name := p.Name + "_" + strings.ReplaceAll(p.Version, ":", "%3a") + "_" + p.Arch + ".deb"
		w, ok := want[name]
		if !ok {
			return nil, fmt.Errorf("download %s: apt announced no file %s", p, name)
		}
		paths[i] = filepath.Join(priv, name)
		if err := copyChecked(filepath.Join(dl, name), paths[i], w); err != nil {
			return nil, fmt.Errorf("download %s: %w", p, err)
		}
	}
	return paths, nil
}

type fileSum struct {
	size   int64
	sha256 string
}

// parseURIs reads `apt-get download --print-uris`:
// 'URI' FILENAME SIZE SHA256:HEX.
func parseURIs(out string) (map[string]fileSum, error) {
	res := map[string]fileSum{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if len(f) != 4 {
			return nil, fmt.Errorf("unexpected apt output %q", l)
		}
		size, err := strconv.ParseInt(f[2], 10, 64)
		sum, ok := strings.CutPrefix(f[3], "SHA256:")
		if err != nil || !ok || len(sum) != 64 {
			return nil, fmt.Errorf("unexpected apt output %q (want a size and SHA256)", l)
		}
		res[f[1]] = fileSum{size: size, sha256: strings.ToLower(sum)}
	}
	return res, nil
}

// copyChecked copies the regular file src (never through a symlink) to
// the new file dst and fails unless the bytes have want's size and SHA256.
func copyChecked(src, dst string, want fileSum) error {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", filepath.Base(src))
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(in, want.size+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if n != want.size || hex.EncodeToString(h.Sum(nil)) != want.sha256 {
		return fmt.Errorf("%s: size or SHA256 differ from the archive's index", filepath.Base(src))
	}
	return nil
}

// Candidate is the version apt would install now, and whether an archive
// whose suite names "security" offers it.
type Candidate struct {
	Version  string
	Security bool
}

// policy returns the candidate of each of pkgs that apt knows, keyed by
// the package's name:arch.
func (a *apt) policy(ctx context.Context, pkgs []Package) (map[string]Candidate, error) {
	args := []string{"policy"}
	for _, p := range pkgs {
		args = append(args, p.Name+":"+p.Arch)
	}
	out, err := run(a.command(ctx, "apt-cache", args...))
	if err != nil {
		return nil, fmt.Errorf("apt-cache policy: %w", err)
	}
	return parsePolicy(string(out), nativeArch(pkgs)), nil
}

// nativeArch guesses the architecture apt-cache policy leaves out of its
// headers: the first one that is not "all".
func nativeArch(pkgs []Package) string {
	for _, p := range pkgs {
		if p.Arch != "all" {
			return p.Arch
		}
	}
	return ""
}

var policyVersionRe = regexp.MustCompile(`^ (?:\*\*\*| {3}) (\S+) -?\d+$`)

// parsePolicy reads `apt-cache policy` output. A header "name:" is a
// package of the native architecture (or "all"); "name:arch:" is explicit.
// Origins of the candidate are the lines under its entry in the version
// table: "500 http://deb.debian.org/debian-security bookworm-security/main
// amd64 Packages".
func parsePolicy(out, native string) map[string]Candidate {
	res := map[string]Candidate{}
	var names []string
	var cand Candidate
	inCand := false
	flush := func() {
		for _, n := range names {
			res[n] = cand
		}
	}
	for _, l := range strings.Split(out, "\n") {
		switch {
		case l == "":
		case l[0] != ' ' && strings.HasSuffix(l, ":"):
			flush()
			n := strings.TrimSuffix(l, ":")
			names = []string{n}
			if !strings.Contains(n, ":") {
				names = []string{n + ":" + native, n + ":all"}
			}
			cand, inCand = Candidate{}, false
		case strings.HasPrefix(l, "  Candidate: "):
			cand.Version = strings.TrimPrefix(l, "  Candidate: ")
			if cand.Version == "(none)" {
				cand.Version = ""
			}
		case policyVersionRe.MatchString(l):
			inCand = policyVersionRe.FindStringSubmatch(l)[1] == cand.Version
		case inCand && strings.HasPrefix(l, "        "):
			f := strings.Fields(l)
			if len(f) >= 3 {
				suite, _, _ := strings.Cut(f[2], "/")
				if strings.Contains(strings.ToLower(suite), "security") {
					cand.Security = true
				}
			}
		}
	}
	flush()
	return res
}
