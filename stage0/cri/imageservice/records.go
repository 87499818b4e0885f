package imageservice

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/rkt-ng/rkt/internal/atomicfile"
)

// record is what the CRI knows of one image beyond the store: the names
// the kubelet pulled it under. It lives in <dir>/cri/images/<hex>.json,
// <hex> being that of its ID, so that rkt-cri finds it again after a
// restart.
type record struct {
	// ID is "sha256:" and the hex digest of the image's config: the same
	// image pulled under other names or from other registries has the
	// same ID (the CRI asks it).
	ID string `json:"id"`
	// StoreIDs are the store images (sha512-...) holding it, most
	// recent last (two manifests can share a config).
	StoreIDs []string `json:"storeIDs"`
	// RepoTags are "REGISTRY/REPO:TAG", RepoDigests "REGISTRY/REPO@DIGEST".
	RepoTags    []string  `json:"repoTags,omitempty"`
	RepoDigests []string  `json:"repoDigests,omitempty"`
	Pulled      time.Time `json:"pulled"`
}

var idRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// recordDir is where records live below the data directory.
func recordDir(dataDir string) string { return filepath.Join(dataDir, "cri", "images") }

func (s *Service) recordPath(id string) string {
	return filepath.Join(s.dir, strings.TrimPrefix(id, "sha256:")+".json")
}

// load reads every record; a file that does not decode is skipped (and
// logged): it cannot name an image.
func (s *Service) load() ([]*record, error) {
	ents, err := os.ReadDir(s.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*record
	for _, e := range ents {
		hex, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !idRE.MatchString("sha256:"+hex) {
			continue // atomicfile temporaries
		}
		r, err := s.read("sha256:" + hex)
		if err != nil {
			s.log.Warn("image record unreadable", "file", e.Name(), "err", err)
			continue
		}
		if r != nil {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *record) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// read returns the record of id, or nil when there is none.
func (s *Service) read(id string) (*record, error) {
	b, err := os.ReadFile(s.recordPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r := &record{}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, err
	}
	if r.ID != id {
		return nil, fmt.Errorf("record names %q", r.ID)
	}
	return r, nil
}

func (s *Service) write(r *record) error {
	slices.Sort(r.RepoTags)
	slices.Sort(r.RepoDigests)
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(s.recordPath(r.ID), b, 0o600)
}

func (s *Service) delete(id string) error {
	err := os.Remove(s.recordPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
