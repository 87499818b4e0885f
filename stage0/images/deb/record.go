package deb

import (
	"errors"
	"fmt"
	"strings"

	"github.com/appc/spec/schema"
)

const (
	// RecordAnnotation holds the image's packages, one "name:arch=version"
	// a line, sorted.
	RecordAnnotation = "rkt-ng.io/deb-packages"
	// RequestAnnotation holds the package requests the image was built
	// from, separated by spaces.
	RequestAnnotation = "rkt-ng.io/deb-request"
)

// ErrNoRecord means an image records no Debian packages.
var ErrNoRecord = errors.New("image records no Debian packages (not built with --from-deb)")

// EncodeRecord is the value of RecordAnnotation for pkgs.
func EncodeRecord(pkgs []Package) string {
	lines := make([]string, 0, len(pkgs))
	for _, p := range sortedPackages(pkgs) {
		lines = append(lines, p.String())
	}
	return strings.Join(lines, "\n")
}

// Recorded returns the packages an image's manifest records.
func Recorded(im *schema.ImageManifest) ([]Package, error) {
	v, ok := im.Annotations.Get(RecordAnnotation)
	if !ok || strings.TrimSpace(v) == "" {
		return nil, ErrNoRecord
	}
	var pkgs []Package
	for _, l := range strings.Split(v, "\n") {
		m := recordRe.FindStringSubmatch(l)
		if m == nil {
			return nil, fmt.Errorf("annotation %s: bad entry %q", RecordAnnotation, l)
		}
		pkgs = append(pkgs, Package{Name: m[1], Arch: m[2], Version: m[3]})
	}
	return pkgs, nil
}
