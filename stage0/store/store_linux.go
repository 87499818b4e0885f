package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"github.com/rkt-ng/rkt/internal/atomicfile"
	"github.com/rkt-ng/rkt/internal/flock"
	"github.com/rkt-ng/rkt/internal/rktgroup"
	"github.com/rkt-ng/rkt/manifests"
)

var (
	// ErrNotFound means no image or tree matches the reference.
	ErrNotFound = errors.New("not found")
	// ErrAmbiguous means an image ID prefix matches several images.
	ErrAmbiguous = errors.New("ambiguous")
	// ErrTooLarge means an image's decompressed bytes (an ACI's tar, or an
	// OCI layer's tar) exceed the store's size limit.
	ErrTooLarge = errors.New("image too large")
	// ErrInUse means an image is held (see Hold) or recorded as used by
	// its caller's check, so it was not removed.
	ErrInUse = errors.New("in use")
)

// DefaultMaxImageSize is the limit on an image's decompressed size (each
// ACI, each OCI layer) when none is given: large enough for real images,
// small enough that a tiny compressed bomb cannot fill a disk.
const DefaultMaxImageSize int64 = 16 << 30

// Image kinds.
const (
	KindACI = "aci"
	KindOCI = "oci"
)

// Image is an image's index row, cas/images/<id>.json.
type Image struct {
	ID         string       `json:"id"`
	Name       string       `json:"name"`
	Labels     types.Labels `json:"labels,omitempty"`
	ImportTime time.Time    `json:"importTime"`
	LastUsed   time.Time    `json:"lastUsed"`
	// Size is the size in bytes of the stored (uncompressed) blob.
	Size int64  `json:"size"`
	Kind string `json:"kind"`
}

// Store is an image store directory. Its methods may be called from many
// goroutines and processes at once.
type Store struct {
	dir string
	// maxSize bounds the decompressed bytes of one ACI or one OCI layer.
	maxSize int64
	// noSync skips fsync and syncfs, for fuzz targets only: durability
	// across a crash is not what they test, and a sync per input is what
	// made them run a few inputs a minute.
	noSync bool
}

func (s *Store) fsync(f *os.File) error {
	if s.noSync {
		return nil
	}
	return f.Sync()
}

func (s *Store) syncDir(dir string) error {
	if s.noSync {
		return nil
	}
	return atomicfile.SyncDir(dir)
}

func (s *Store) syncfs(dir string) error {
	if s.noSync {
		return nil
	}
	return syncfs(dir)
}

// writeFile replaces path atomically; durably unless noSync.
func (s *Store) writeFile(path string, b []byte, mode os.FileMode) error {
	if s.noSync {
		return atomicfile.Replace(path, b, mode)
	}
	return atomicfile.WriteFile(path, b, mode)
}

// Option configures a Store.
type Option func(*Store)

// WithMaxImageSize sets the limit on the decompressed size of an imported
// ACI and of each OCI layer; n <= 0 keeps DefaultMaxImageSize. An import
// over the limit fails with ErrTooLarge and leaves nothing behind.
func WithMaxImageSize(n int64) Option {
	return func(s *Store) {
		if n > 0 {
			s.maxSize = n
		}
	}
}

const (
	idPrefix   = "sha512-"
	treePrefix = "deps-sha512-"
	hexLen     = 128
	// MinPrefix is the shortest image ID prefix (hex digits after
	// "sha512-") that Resolve accepts: rkt 1.30 took any prefix from
	// "sha512-aa" on (an ambiguous one is refused with the matches).
	MinPrefix = 2
)

// DirMode is the mode of the store directory and of every directory in it
// that the store makes: root only (with the host group rkt, the store
// directory, images/ and manifest/ are root:rkt 2750 instead; see
// internal/rktgroup). Rendered trees keep their owners, setuid
// bits, device nodes and file capabilities, which they need inside pods; a
// local user who could reach them could run a stored setuid-root binary or
// open a device node (the class of CVE-2021-41091). Nothing outside rkt
// needs to look into the store.
const DirMode = 0o700

// storeDirs are the store's own directories, relative to its root, made at
// Open and chmodded there when an older rkt made them searchable.
var storeDirs = []string{
	"blob", "blob/sha512", "images", "manifest", "tree", "locks", "tmp",
	"layers", layersDir, ociDir, "remote", "remote/names", "local",
}

// Open opens the store rooted at dir (normally $DATA/cas), creating its
// directories if needed, and makes it root-only (DirMode), fixing up a
// store that an older version left world-searchable.
func Open(dir string, opts ...Option) (*Store, error) {
	s := &Store{dir: dir, maxSize: DefaultMaxImageSize}
	for _, o := range opts {
		o(s)
	}
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	// The root first: once it is closed, what lies below is unreachable
	// whatever its own mode.
	if err := rktgroup.Fix(dir, DirMode, true); err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	if os.Geteuid() != 0 {
		// Another user (a member of the rkt group) only reads the index
		// and manifests, and cannot even look at the rest.
		return s, nil
	}
	for _, d := range storeDirs {
		p := filepath.Join(dir, d)
		if err := os.MkdirAll(p, DirMode); err != nil {
			return nil, fmt.Errorf("open image store: %w", err)
		}
		if err := rktgroup.Fix(p, DirMode, groupDirs[d]); err != nil {
			return nil, fmt.Errorf("open image store: %w", err)
		}
	}
	return s, nil
}

// groupDirs are the store directories the rkt group may read, when the host
// has it (internal/rktgroup): the index rows and image manifests that
// `rkt image list` and `rkt image cat-manifest` show. Blobs, trees, layers,
// locks, temporary files and the HTTP cache stay root-only.
var groupDirs = map[string]bool{"images": true, "manifest": true}

// Dir is the store's root directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) blobPath(id string) string {
	return filepath.Join(s.dir, "blob", "sha512", strings.TrimPrefix(id, idPrefix))
}
func (s *Store) rowPath(id string) string      { return filepath.Join(s.dir, "images", id+".json") }
func (s *Store) manifestPath(id string) string { return filepath.Join(s.dir, "manifest", id) }
func (s *Store) treeDir(treeID string) string  { return filepath.Join(s.dir, "tree", treeID) }

// validID reports whether id is a full image ID; ids become file names, so
// nothing else may reach a path.
func validID(id string) bool {
	h, ok := strings.CutPrefix(id, idPrefix)
	return ok && len(h) == hexLen && isHex(h)
}

func validTreeID(id string) bool {
	h, ok := strings.CutPrefix(id, treePrefix)
	return ok && len(h) == hexLen && isHex(h)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// lock takes the flock of key (an image or tree ID), polling so that ctx can
// cancel the wait.
func (s *Store) lock(ctx context.Context, key string, exclusive bool) (*flock.Lock, error) {
	l, err := flock.Open(filepath.Join(s.dir, "locks", key))
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", key, err)
	}
	try := l.TryShared
	if exclusive {
		try = l.TryExclusive
	}
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		err := try()
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, flock.ErrLocked) {
			l.Close()
			return nil, fmt.Errorf("lock %s: %w", key, err)
		}
		select {
		case <-ctx.Done():
			l.Close()
			return nil, fmt.Errorf("lock %s: %w", key, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// Get returns the index row of the image with the full ID id.
func (s *Store) Get(id string) (Image, error) {
	if !validID(id) {
		return Image{}, fmt.Errorf("image ID %q: invalid: want sha512- and %d hex digits", id, hexLen)
	}
	b, err := os.ReadFile(s.rowPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return Image{}, fmt.Errorf("image %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Image{}, fmt.Errorf("image %s: %w", id, err)
	}
	var img Image
	if err := json.Unmarshal(b, &img); err != nil {
		return Image{}, fmt.Errorf("image %s: index row: %w", id, err)
	}
	return img, nil
}

// List returns every image, oldest import first.
func (s *Store) List() ([]Image, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, "images"))
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var imgs []Image
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !validID(id) {
			continue // atomicfile temporaries and strangers
		}
		img, err := s.Get(id)
		if errors.Is(err, ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, img)
	}
	slices.SortFunc(imgs, func(a, b Image) int {
		if c := a.ImportTime.Compare(b.ImportTime); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return imgs, nil
}

// Manifest returns the image manifest of image id.
func (s *Store) Manifest(id string) (*schema.ImageManifest, error) {
	if _, err := s.Get(id); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(s.manifestPath(id))
	if err != nil {
		return nil, fmt.Errorf("image %s: manifest: %w", id, err)
	}
	im, err := manifests.DecodeImage(b)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", id, err)
	}
	return im, nil
}

// OpenBlob opens the uncompressed ACI tar of image id.
func (s *Store) OpenBlob(id string) (io.ReadCloser, error) {
	if _, err := s.Get(id); err != nil {
		return nil, err
	}
	f, err := os.Open(s.blobPath(id))
	if err != nil {
		return nil, fmt.Errorf("image %s: blob: %w", id, err)
	}
	return f, nil
}

// Touch sets the LastUsed time of image id to now.
func (s *Store) Touch(ctx context.Context, id string) error {
	if !validID(id) {
		_, err := s.Get(id)
		return err
	}
	l, err := s.lock(ctx, id, true)
	if err != nil {
		return err
	}
	defer l.Close()
	img, err := s.Get(id)
	if err != nil {
		return err
	}
	img.LastUsed = time.Now().UTC()
	// LastUsed is a hint for image gc: it need not survive a crash, and
	// skipping the fsyncs keeps them off every pod start.
	b, err := json.Marshal(img)
	if err != nil {
		return fmt.Errorf("image %s: index row: %w", img.ID, err)
	}
	return atomicfile.Replace(s.rowPath(img.ID), b, 0o644)
}

func (s *Store) writeRow(img Image) error {
	b, err := json.Marshal(img)
	if err != nil {
		return fmt.Errorf("image %s: index row: %w", img.ID, err)
	}
	if err := s.writeFile(s.rowPath(img.ID), b, 0o644); err != nil {
		return fmt.Errorf("image %s: index row: %w", img.ID, err)
	}
	return nil
}

// Remove removes image id, its manifest and blob, and the trees rendered for
// it (as the top image). Trees of other images that use it as a dependency
// are kept: they are complete copies.
func (s *Store) Remove(ctx context.Context, id string) error {
	return s.RemoveUnused(ctx, id, nil)
}

// RemoveUnused is Remove, except that under the image's exclusive lock
// (which waits for every Hold of the image to end) it first asks inUse,
// if not nil, and removes nothing but returns ErrInUse if it says so, or if
// a HoldImage of the image is live (with a nil inUse, holds are ignored). A
// caller whose users record the image before they release their Hold (as
// pods do) thus never removes an image that one of them uses.
func (s *Store) RemoveUnused(ctx context.Context, id string, inUse func() (bool, error)) error {
	if !validID(id) {
		_, err := s.Get(id)
		return err
	}
	l, err := s.lock(ctx, id, true)
	if err != nil {
		return err
	}
	defer l.Close()
	if _, err := s.Get(id); err != nil {
		return err
	}
	if inUse != nil {
		// A HoldImage is a use not recorded yet: it is tried, not waited
		// for, since its holder may import or Touch the image meanwhile.
		held, err := s.imageHeld(id)
		if err != nil {
			return fmt.Errorf("remove image %s: %w", id, err)
		}
		if held {
			return fmt.Errorf("image %s: %w", id, ErrInUse)
		}
		used, err := inUse()
		if err != nil {
			return fmt.Errorf("remove image %s: %w", id, err)
		}
		if used {
			return fmt.Errorf("image %s: %w", id, ErrInUse)
		}
	}
	trees, err := s.Trees()
	if err != nil {
		return err
	}
	for _, t := range trees {
		top, err := os.ReadFile(filepath.Join(s.treeDir(t.ID), "image"))
		if err != nil || string(top) != id {
			continue
		}
		if err := s.RemoveTree(ctx, t.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("remove image %s: %w", id, err)
		}
	}
	// The row goes first: from here on the image does not exist.
	if err := os.Remove(s.rowPath(id)); err != nil {
		return fmt.Errorf("remove image %s: %w", id, err)
	}
	// An OCI image's layers stay: other images may share them.
	for _, p := range []string{s.manifestPath(id), s.blobPath(id), s.ociPath(id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove image %s: %w", id, err)
		}
	}
	return nil
}
