package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/rkt-ng/rkt/internal/flock"
)

// CleanTemp removes what interrupted renders and removals left in the tree
// store (tree/.tmp-<id> and tree/.rm-<id>) and in cas/tmp: a render holds
// its tree's lock while it writes .tmp-<id>, so an entry whose lock can be
// taken without waiting belongs to a process that died.
func (s *Store) CleanTemp() error {
	var errs []error
	treeDir := filepath.Join(s.dir, "tree")
	ents, err := os.ReadDir(treeDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, e := range ents {
		id, ok := strings.CutPrefix(e.Name(), ".tmp-")
		if !ok {
			id, ok = strings.CutPrefix(e.Name(), ".rm-")
		}
		if !ok || !validTreeID(id) {
			continue
		}
		l, err := flock.Open(filepath.Join(s.dir, "locks", id))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if l.TryExclusive() == nil {
			if err := os.RemoveAll(filepath.Join(treeDir, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
		l.Close()
	}
	return errors.Join(errs...)
}
