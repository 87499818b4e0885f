// Package depcheck lets a package's tests hold its dependency graph to
// what the binary it ends up in may link (go-containerregistry's crane
// keeps such a test): stage programs stay small, rkt stays free of the CRI
// server's modules.
package depcheck

import (
	"os/exec"
	"strings"
	"testing"
)

// Package is one dependency of the package under test.
type Package struct {
	Path     string
	Standard bool // in the standard library
}

// Deps lists the package in the test's directory and everything it
// imports, directly or not (go list -deps). The test is skipped without the
// go command.
func Deps(t *testing.T) []Package {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", ".").Output()
	if err != nil {
		t.Skipf("requires the go command: %v", err)
	}
	var deps []Package
	for line := range strings.Lines(string(out)) {
		path, std, _ := strings.Cut(strings.TrimSpace(line), " ")
		deps = append(deps, Package{Path: path, Standard: std == "true"})
	}
	return deps
}

// Under reports whether path is prefix or a package below it.
func Under(path, prefix string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// Forbid fails the test for every dependency that is, or is below, one of
// bad; what names the binary in the message.
func Forbid(t *testing.T, what string, bad ...string) {
	t.Helper()
	for _, d := range Deps(t) {
		for _, b := range bad {
			if Under(d.Path, b) {
				t.Errorf("%s depends on %s", what, d.Path)
			}
		}
	}
}
