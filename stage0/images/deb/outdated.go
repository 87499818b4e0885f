package deb

import (
	"context"
	"os"
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
	a, err := newApt(work)
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
