package store

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/flock"
	"github.com/rkt-ng/rkt/internal/pausepoint"
	"github.com/rkt-ng/rkt/internal/untar"
)

// Tree is a rendered image: the image and its dependencies laid down in
// one root filesystem.
type Tree struct {
	// ID is "deps-sha512-<hex>", the sha512 of the image IDs in render order.
	ID string
	// Rootfs is the rendered root filesystem, cas/tree/<ID>/rootfs; empty
	// for an OCI image.
	Rootfs string
	// Layers are the unpacked layers of an OCI image, base first, with
	// overlayfs whiteouts: they are meant to be mounted as lower
	// directories (see Lowers), never rendered into one tree.
	Layers []string
}

// maxDeps bounds the flattened dependency list: diamonds repeat images, and
// a hostile chain of them would otherwise grow exponentially.
const maxDeps = 1024

// Files inside cas/tree/<treeID>/ besides rootfs.
const (
	renderedFile = "rendered" // empty marker; always present in a visible tree
	imageFile    = "image"    // the top image ID
	depsFile     = "deps"     // the image IDs in render order, one per line
)

// depNode is one image of the flattened dependency list.
type depNode struct {
	img    Image
	im     *schema.ImageManifest
	parent *depNode // the image that depends on it; nil for the top image
}

// Render returns the tree of image id with its dependencies, rendering it
// if it is not in the store yet. Dependencies must be in the store; a
// dependency's imageID, if given, must name an image with the dependency's
// name and labels, and its size, if given, must match.
//
// The render order is acirenderer's: dependencies depth-first, each image
// after its dependencies, so for A->[B,C] and C->[D] the order is B, D, C, A;
// later images override earlier paths. A file of an image is kept only if
// it is in the image's pathWhitelist and in those of all images depending
// on it (empty whitelists allow everything); directories are always kept.
//
// Render does not hold the tree: garbage collection may remove it as soon
// as Render returns. A caller that uses the tree calls Acquire instead.
func (s *Store) Render(ctx context.Context, id string) (Tree, error) {
	t, h, err := s.Acquire(ctx, id)
	h.Release()
	return t, err
}

// treeOf is the tree of a render order.
func treeOf(s *Store, order []*depNode) Tree {
	h := sha512.New()
	for _, n := range order {
		h.Write([]byte(n.img.ID))
	}
	t := Tree{ID: treePrefix + hex.EncodeToString(h.Sum(nil))}
	t.Rootfs = filepath.Join(s.treeDir(t.ID), "rootfs")
	return t
}

// renderLocked renders tree t of image id under the images' shared locks
// and the tree's exclusive lock, unless it is rendered already.
func (s *Store) renderLocked(ctx context.Context, id string, t Tree, order []*depNode) error {
	// Lock order: images, then the tree (Remove takes an image, then trees).
	var ids []string
	for _, n := range order {
		ids = append(ids, n.img.ID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var locks []*flock.Lock
	defer func() {
		for _, l := range locks {
			l.Close()
		}
	}()
	for _, id := range ids {
		l, err := s.lock(ctx, id, false)
		if err != nil {
			return err
		}
		locks = append(locks, l)
		if _, err := s.Get(id); err != nil {
			return fmt.Errorf("render tree %s: %w", t.ID, err) // removed meanwhile
		}
	}
	l, err := s.lock(ctx, t.ID, true)
	if err != nil {
		return err
	}
	locks = append(locks, l)
	if s.rendered(t.ID) {
		return nil // another process rendered it while we waited
	}
	if err := s.render(ctx, t.ID, order); err != nil {
		return fmt.Errorf("render tree %s of image %s: %w", t.ID, id, err)
	}
	return nil
}

func (s *Store) rendered(treeID string) bool {
	_, err := os.Lstat(filepath.Join(s.treeDir(treeID), renderedFile))
	return err == nil
}

// render lays order down in tree/.tmp-<treeID> and renames it into place.
// The caller holds the tree lock, so the temporary name is its own.
func (s *Store) render(ctx context.Context, treeID string, order []*depNode) (err error) {
	final := s.treeDir(treeID)
	tmp := filepath.Join(s.dir, "tree", ".tmp-"+treeID)
	if err := os.RemoveAll(tmp); err != nil { // left by a crashed render
		return err
	}
	if _, err := os.Lstat(final); err == nil { // a tree without marker: incomplete
		if err := s.discardTree(treeID); err != nil {
			return err
		}
	}
	rootfs := filepath.Join(tmp, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	keepOwners := os.Geteuid() == 0
	var ids []string
	for _, n := range order {
		if err := s.extract(ctx, n, rootfs, keepOwners); err != nil {
			return err
		}
		ids = append(ids, n.img.ID)
	}
	top := order[len(order)-1].img.ID
	if err := s.writeDigest(ctx, tmp); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, imageFile), []byte(top), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, depsFile), []byte(strings.Join(ids, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	// One syncfs instead of an fsync per file: the tree must be whole on
	// disk before the rename makes it visible.
	if err := s.syncfs(tmp); err != nil {
		return err
	}
	if err := s.writeFile(filepath.Join(tmp, renderedFile), nil, 0o644); err != nil {
		return err
	}
	if err := pausepoint.Reach(ctx, pausepoint.TreeRendering); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	return s.syncDir(filepath.Dir(final))
}

func (s *Store) extract(ctx context.Context, n *depNode, rootfs string, keepOwners bool) error {
	f, err := os.Open(s.blobPath(n.img.ID))
	if err != nil {
		return fmt.Errorf("image %s: blob: %w", n.img.ID, err)
	}
	defer f.Close()
	// The blob is hashed as it is read: a corrupt blob is never rendered
	// (docs/reliability.md).
	h := sha512.New()
	r := io.TeeReader(f, h)
	err = untar.Extract(ctx, r, rootfs, untar.Options{
		StripPrefix:      "rootfs/",
		Keep:             keepFunc(n),
		KeepOwners:       keepOwners,
		RejectDuplicates: true,
	})
	if err != nil {
		return fmt.Errorf("image %s: %w", n.img.ID, err)
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("image %s: blob: %w", n.img.ID, err)
	}
	if got := idPrefix + hex.EncodeToString(h.Sum(nil)); got != n.img.ID {
		return fmt.Errorf("image %s: blob: %w: it hashes to %.23s…; run rkt image verify --repair and fetch it again", n.img.ID, ErrCorrupt, got)
	}
	return nil
}

func syncfs(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return &os.PathError{Op: "syncfs", Path: dir, Err: err}
	}
	return nil
}

// keepFunc is the pathWhitelist filter of n: its own whitelist and those of
// every image above it, the non-empty ones.
func keepFunc(n *depNode) func(string) bool {
	var sets []map[string]struct{}
	for a := n; a != nil; a = a.parent {
		if len(a.im.PathWhitelist) == 0 {
			continue
		}
		set := make(map[string]struct{}, len(a.im.PathWhitelist))
		for _, p := range a.im.PathWhitelist {
			set[path.Clean("/"+p)] = struct{}{}
		}
		sets = append(sets, set)
	}
	if len(sets) == 0 {
		return nil
	}
	return func(name string) bool {
		p := "/" + name
		for _, set := range sets {
			if _, ok := set[p]; !ok {
				return false
			}
		}
		return true
	}
}

// renderOrder flattens the dependencies of image id as acirenderer does and
// returns them in render order, the top image last.
func (s *Store) renderOrder(id string) ([]*depNode, error) {
	img, err := s.Get(id)
	if err != nil {
		return nil, err
	}
	im, err := s.Manifest(id)
	if err != nil {
		return nil, err
	}
	// acirenderer's list: each image followed by its dependencies, the
	// dependencies in reverse order (it inserts each right after the image).
	list := []*depNode{{img: img, im: im}}
	for i := 0; i < len(list); i++ {
		n := list[i]
		var ins []*depNode
		for _, d := range n.im.Dependencies {
			dimg, dim, err := s.resolveDep(d)
			if err != nil {
				return nil, err
			}
			for a := n; a != nil; a = a.parent {
				if a.img.ID == dimg.ID {
					return nil, fmt.Errorf("dependency %s of %s: dependency cycle", d.ImageName, n.im.Name)
				}
			}
			ins = append(ins, &depNode{img: dimg, im: dim, parent: n})
		}
		slices.Reverse(ins)
		list = slices.Insert(list, i+1, ins...)
		if len(list) > maxDeps {
			return nil, fmt.Errorf("more than %d dependencies", maxDeps)
		}
	}
	slices.Reverse(list)
	return list, nil
}

// resolveDep finds the stored image of a dependency.
func (s *Store) resolveDep(d types.Dependency) (Image, *schema.ImageManifest, error) {
	var img Image
	var err error
	if d.ImageID != nil && !d.ImageID.Empty() {
		img, err = s.Resolve(d.ImageID.String())
	} else {
		img, err = s.findByName(d.ImageName, d.Labels)
	}
	if err != nil {
		return Image{}, nil, fmt.Errorf("dependency %s: %w", d.ImageName, err)
	}
	im, err := s.Manifest(img.ID)
	if err != nil {
		return Image{}, nil, fmt.Errorf("dependency %s: %w", d.ImageName, err)
	}
	if im.Name != d.ImageName {
		return Image{}, nil, fmt.Errorf("dependency %s: image %s is named %s", d.ImageName, img.ID, im.Name)
	}
	if !hasLabels(im.Labels, d.Labels) {
		return Image{}, nil, fmt.Errorf("dependency %s: image %s does not have labels %v", d.ImageName, img.ID, d.Labels)
	}
	if d.Size != 0 && int64(d.Size) != img.Size {
		return Image{}, nil, fmt.Errorf("dependency %s: image %s has size %d, want %d", d.ImageName, img.ID, img.Size, d.Size)
	}
	return img, im, nil
}

// Trees lists the rendered trees.
func (s *Store) Trees() ([]Tree, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, "tree"))
	if err != nil {
		return nil, fmt.Errorf("list trees: %w", err)
	}
	var trees []Tree
	for _, e := range ents {
		if validTreeID(e.Name()) && s.rendered(e.Name()) {
			trees = append(trees, Tree{ID: e.Name(), Rootfs: filepath.Join(s.treeDir(e.Name()), "rootfs")})
		}
	}
	return trees, nil
}

// RemoveTree removes the rendered tree treeID.
func (s *Store) RemoveTree(ctx context.Context, treeID string) error {
	if !validTreeID(treeID) {
		return fmt.Errorf("tree ID %q: invalid: want %s and %d hex digits", treeID, treePrefix, hexLen)
	}
	l, err := s.lock(ctx, treeID, true)
	if err != nil {
		return err
	}
	defer l.Close()
	if _, err := os.Lstat(s.treeDir(treeID)); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("tree %s: %w", treeID, ErrNotFound)
	}
	if err := s.discardTree(treeID); err != nil {
		return fmt.Errorf("remove tree %s: %w", treeID, err)
	}
	return nil
}

// RemoveTreeUnused removes the rendered tree treeID unless it is held (see
// Hold) or inUse, called under the tree's exclusive lock, says that
// something records it. It reports whether it removed the tree; a held or
// missing tree is not an error.
func (s *Store) RemoveTreeUnused(ctx context.Context, treeID string, inUse func() (bool, error)) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if !validTreeID(treeID) {
		return false, fmt.Errorf("tree ID %q: invalid: want %s and %d hex digits", treeID, treePrefix, hexLen)
	}
	l, err := flock.Open(filepath.Join(s.dir, "locks", treeID))
	if err != nil {
		return false, fmt.Errorf("lock %s: %w", treeID, err)
	}
	defer l.Close()
	if err := l.TryExclusive(); errors.Is(err, flock.ErrLocked) {
		return false, nil // held, or being rendered
	} else if err != nil {
		return false, fmt.Errorf("lock %s: %w", treeID, err)
	}
	if _, err := os.Lstat(s.treeDir(treeID)); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	used, err := inUse()
	if err != nil || used {
		return false, err
	}
	if err := s.discardTree(treeID); err != nil {
		return false, fmt.Errorf("remove tree %s: %w", treeID, err)
	}
	return true, nil
}

// discardTree renames the tree out of sight, so that a half-removed tree is
// never used, then removes it. The caller holds the tree lock.
func (s *Store) discardTree(treeID string) error {
	trash := filepath.Join(s.dir, "tree", ".rm-"+treeID)
	if err := os.RemoveAll(trash); err != nil {
		return err
	}
	if err := os.Rename(s.treeDir(treeID), trash); err != nil {
		return err
	}
	return os.RemoveAll(trash)
}

// ValidTreeID reports whether id has the form of a tree ID
// ("deps-sha512-" and 128 lowercase hex digits), so that an ID read from a
// file can name nothing but a tree directory.
func ValidTreeID(id string) bool {
	h, ok := strings.CutPrefix(id, treePrefix)
	if !ok || len(h) != 128 {
		return false
	}
	for _, c := range h {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
