package deb

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/appc/spec/schema"
)

// Update is a recorded package that apt now offers at a newer version.
type Update struct {
	Package
	Candidate string `json:"candidate"`
	// Security says an archive whose suite names "security"
	// (bookworm-security) offers the candidate.
	Security bool `json:"security"`
}

// Outdated compares pkgs with the candidates of the host's apt lists (as
// of the user's last `apt-get update`) and returns those with a newer
// candidate, in the order of pkgs. Packages apt no longer knows are left
// out.
func Outdated(ctx context.Context, pkgs []Package) ([]Update, error) {
	work, err := os.MkdirTemp("", "rkt-deb-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	a, err := newApt(ctx, work)
	if err != nil {
		return nil, err
	}
	cands, err := a.policy(ctx, pkgs)
	if err != nil {
		return nil, err
	}
	var ups []Update
	for _, p := range pkgs {
		c, ok := cands[p.Name+":"+p.Arch]
		if !ok || c.Version == "" || CompareVersions(c.Version, p.Version) <= 0 {
			continue
		}
		ups = append(ups, Update{Package: p, Candidate: c.Version, Security: c.Security})
	}
	return ups, nil
}

// Image is an image to check: how the user named it and its manifest.
type Image struct {
	Ref      string
	Manifest *schema.ImageManifest
}

// Report lists an image's packages that have newer versions.
type Report struct {
	Image   string   `json:"image"`
	Updates []Update `json:"updates"`
}

// CheckImages runs Outdated on the packages each image records. An image
// that records none is an error (ErrNoRecord) unless skipUnrecorded.
func CheckImages(ctx context.Context, imgs []Image, skipUnrecorded bool) ([]Report, error) {
	var reps []Report
	for _, img := range imgs {
		pkgs, err := Recorded(img.Manifest)
		if errors.Is(err, ErrNoRecord) && skipUnrecorded {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Ref, err)
		}
		ups, err := Outdated(ctx, pkgs)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Ref, err)
		}
		reps = append(reps, Report{Image: img.Ref, Updates: ups})
	}
	return reps, nil
}

// OutdatedError says images have packages with newer versions, Security of
// them from a security archive.
type OutdatedError struct {
	Packages, Security int
}

func (e *OutdatedError) Error() string {
	return fmt.Sprintf("rebuild due: %d package(s) have newer versions, %d from a security archive", e.Packages, e.Security)
}

// Due returns an *OutdatedError when reps list any update, else nil.
func Due(reps []Report) error {
	e := &OutdatedError{}
	for _, r := range reps {
		for _, u := range r.Updates {
			e.Packages++
			if u.Security {
				e.Security++
			}
		}
	}
	if e.Packages == 0 {
		return nil
	}
	return e
}
