package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/rkt-ng/rkt/internal/flock"
)

// CleanTemp removes what interrupted renders and removals left in the tree
// store (tree/.tmp-<id> and tree/.rm-<id>), in cas/layers and in cas/tmp,
// and the files of imports killed before their row was written: a render holds
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
		path := filepath.Join(treeDir, e.Name())
		errs = append(errs, s.ifUnlocked(id, func() error { return os.RemoveAll(path) }))
	}
	errs = append(errs, s.cleanLayerTemp(), s.cleanImportTemp(), s.cleanOrphans())
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
		path := filepath.Join(dir, e.Name())
		errs = append(errs, s.ifUnlocked(key, func() error { return os.RemoveAll(path) }))
	}
	return errors.Join(errs...)
}

// cleanImportTemp removes the aci-* files in cas/tmp when no ACI import is
// running: every import holds the imports lock (shared) while it has one,
// so when the exclusive lock can be taken they were all left by killed
// imports. Otherwise they wait for a later gc.
func (s *Store) cleanImportTemp() error {
	l, err := flock.Open(filepath.Join(s.dir, "locks", importsLock))
	if err != nil {
		return err
	}
	defer l.Close()
	if err := l.TryExclusive(); err != nil {
		if errors.Is(err, flock.ErrLocked) {
			return nil
		}
		return err
	}
	dir := filepath.Join(s.dir, "tmp")
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var errs []error
	for _, e := range ents {
		// Only the store's own temporaries: cas/tmp also keeps partial
		// downloads (dl-*) across runs on purpose, to resume them.
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), importTempPrefix) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// cleanOrphans removes blobs, manifests and OCI layer lists that have no
// index row: an import killed after moving them into place and before
// writing the row left them (an image exists exactly when its row does).
// Imports and removals hold the image's exclusive lock while those files
// and the row disagree, so an orphan whose lock can be taken is one.
func (s *Store) cleanOrphans() error {
	ids := map[string]bool{}
	if ents, err := os.ReadDir(filepath.Join(s.dir, "blob", "sha512")); err == nil {
		for _, e := range ents {
			ids[idPrefix+e.Name()] = true
		}
	}
	if ents, err := os.ReadDir(filepath.Join(s.dir, "manifest")); err == nil {
		for _, e := range ents {
			ids[e.Name()] = true
		}
	}
	if ents, err := os.ReadDir(filepath.Join(s.dir, ociDir)); err == nil {
		for _, e := range ents {
			if id, ok := strings.CutSuffix(e.Name(), ".json"); ok {
				ids[id] = true
			}
		}
	}
	var errs []error
	for id := range ids {
		if !validID(id) {
			continue
		}
		if _, err := os.Lstat(s.rowPath(id)); err == nil {
			continue
		}
		errs = append(errs, s.ifUnlocked(id, func() error {
			if _, err := os.Lstat(s.rowPath(id)); !errors.Is(err, os.ErrNotExist) {
				return nil
			}
			var errs []error
			for _, p := range []string{s.blobPath(id), s.manifestPath(id), s.ociPath(id)} {
				if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		}))
	}
	return errors.Join(errs...)
}

// ifUnlocked runs remove when the store lock named key can be taken
// exclusively without waiting, that is when no live process holds it: what
// it guards was left by a process that died. A held lock is not an error.
func (s *Store) ifUnlocked(key string, remove func() error) error {
	l, err := flock.Open(filepath.Join(s.dir, "locks", key))
	if err != nil {
		return err
	}
	defer l.Close()
	if l.TryExclusive() != nil {
		return nil
	}
	return remove()
}
