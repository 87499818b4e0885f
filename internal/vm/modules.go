package vm

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/ulikunitz/xz"
)

// ErrBuiltin is returned by [ResolveModule] for a module built into the
// kernel: there is nothing to load.
var ErrBuiltin = errors.New("module is built into the kernel")

// ResolveModule returns the files of kernel module name and of the modules
// it depends on, from modules.dep in modDir (/lib/modules/<version>), in load
// order (dependencies first).
func ResolveModule(modDir, name string) ([]string, error) {
	want := normModName(name)
	if b, err := os.ReadFile(filepath.Join(modDir, "modules.builtin")); err == nil {
		for line := range strings.Lines(string(b)) {
			if modName(strings.TrimSpace(line)) == want {
				return nil, ErrBuiltin
			}
		}
	}
	f, err := os.Open(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	deps := map[string][]string{} // module name -> [file, deps...]
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		file, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		deps[modName(file)] = append([]string{file}, strings.Fields(rest)...)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read modules.dep: %w", err)
	}
	var out []string
	seen := map[string]bool{}
	var visit func(n string, depth int) error
	visit = func(n string, depth int) error {
		if seen[n] {
			return nil
		}
		if depth > 64 {
			return fmt.Errorf("module %s: dependency loop in modules.dep", name)
		}
		e, ok := deps[n]
		if !ok {
			return fmt.Errorf("module %s not in %s/modules.dep", n, modDir)
		}
		seen[n] = true
		for _, d := range e[1:] {
			if err := visit(modName(d), depth+1); err != nil {
				return err
			}
		}
		out = append(out, filepath.Join(modDir, e[0]))
		return nil
	}
	if err := visit(want, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// modName is the module name of a path in modules.dep: the base name without
// ".ko" and any compression suffix, with '-' as '_' (as modprobe compares).
func modName(file string) string {
	base := filepath.Base(file)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return normModName(base)
}

func normModName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// ReadModule returns the contents of a module file, decompressed
// (.ko, .ko.gz, .ko.xz; .ko.zst through the zstd command).
func ReadModule(file string) ([]byte, error) {
	switch {
	case strings.HasSuffix(file, ".ko"):
		return os.ReadFile(file)
	case strings.HasSuffix(file, ".ko.zst"):
		zstd, err := exec.LookPath("zstd")
		if err != nil {
			return nil, fmt.Errorf("module %s: zstd-compressed and no zstd command (apt-get install zstd): %w", file, err)
		}
		out, err := exec.Command(zstd, "-dc", file).Output()
		if err != nil {
			return nil, fmt.Errorf("module %s: zstd -dc: %w", file, err)
		}
		return out, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader
	switch {
	case strings.HasSuffix(file, ".ko.gz"):
		if r, err = gzip.NewReader(bufio.NewReader(f)); err != nil {
			return nil, fmt.Errorf("module %s: %w", file, err)
		}
	case strings.HasSuffix(file, ".ko.xz"):
		if r, err = xz.NewReader(bufio.NewReader(f)); err != nil {
			return nil, fmt.Errorf("module %s: %w", file, err)
		}
	default:
		return nil, fmt.Errorf("module %s: unknown compression", file)
	}
	var b bytes.Buffer
	if _, err := io.Copy(&b, r); err != nil {
		return nil, fmt.Errorf("module %s: decompress: %w", file, err)
	}
	return b.Bytes(), nil
}
