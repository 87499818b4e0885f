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
// taken without waiting belongs to a process that died. The same holds for
// the OCI layers' temporaries in cas/layers/sha256.
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
	errs = append(errs, s.cleanLayerTemp())
	return errors.Join(errs...)
}

// cleanLayerTemp removes what interrupted layer unpacks (.tmp-<hex>, under
// the layer's unpack lock) and layer removals (.rm-<hex>, under its use
// lock) left in cas/layers/sha256.
func (s *Store) cleanLayerTemp() error {
	dir := filepath.Join(s.dir, layersDir)
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var errs []error
	for _, e := range ents {
		var key string
		if h, ok := strings.CutPrefix(e.Name(), ".tmp-"); ok && validHex64(h) {
			key = "layer-sha256-" + h
		} else if h, ok := strings.CutPrefix(e.Name(), ".rm-"); ok && validHex64(h) {
			key = layerUseKey(h)
		} else {
			continue
		}
		l, err := flock.Open(filepath.Join(s.dir, "locks", key))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if l.TryExclusive() == nil {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
		l.Close()
	}
	return errors.Join(errs...)
}
