package store

import (
	"context"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrCorrupt means stored bytes no longer match the digest they were
// stored under: an image blob its ID, a rendered tree or an unpacked OCI
// layer the digest recorded when it was written.
var ErrCorrupt = errors.New("corrupt")

// digestFile is the content digest of a rendered tree (cas/tree/<id>/digest)
// or an unpacked layer (cas/layers/sha256/<hex>/digest), written once when
// it is laid down (a render or a layer unpack happens once per image, not
// per pod) and checked by Verify.
const digestFile = "digest"

// dirDigest hashes the tree under root: for every entry in lexical order its
// path, type and permission bits, owner, and the sha512 of a regular file's
// content, a symlink's target or a device's number. Extended attributes
// (file capabilities) are not covered.
func dirDigest(ctx context.Context, root string) (string, error) {
	h := sha512.New()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return &os.PathError{Op: "lstat", Path: p, Err: err}
		}
		rel, _ := filepath.Rel(root, p)
		io.WriteString(h, rel)
		h.Write([]byte{0})
		var b [8 * 3]byte
		binary.LittleEndian.PutUint64(b[0:], uint64(st.Mode))
		binary.LittleEndian.PutUint64(b[8:], uint64(st.Uid))
		binary.LittleEndian.PutUint64(b[16:], uint64(st.Gid))
		h.Write(b[:])
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			return hashFile(h, p)
		case unix.S_IFLNK:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			io.WriteString(h, t)
		case unix.S_IFCHR, unix.S_IFBLK:
			binary.LittleEndian.PutUint64(b[0:], st.Rdev)
			h.Write(b[:8])
		}
		h.Write([]byte{0})
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hashFile(h hash.Hash, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	fh := sha512.New()
	if _, err := io.Copy(fh, f); err != nil {
		return err
	}
	h.Write(fh.Sum(nil))
	return nil
}

// writeDigest records the digest of dir/rootfs in dir/digest.
func (s *Store) writeDigest(ctx context.Context, dir string) error {
	d, err := dirDigest(ctx, filepath.Join(dir, "rootfs"))
	if err != nil {
		return fmt.Errorf("digest: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, digestFile), []byte(d+"\n"), 0o644)
}

// checkDigest compares dir/rootfs with dir/digest. A directory written
// before digests were recorded has none, and passes.
func checkDigest(ctx context.Context, dir string) error {
	want, err := os.ReadFile(filepath.Join(dir, digestFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	got, err := dirDigest(ctx, filepath.Join(dir, "rootfs"))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if got != strings.TrimSpace(string(want)) {
		return fmt.Errorf("%w: content digest is sha512:%.16s…, recorded sha512:%.16s…", ErrCorrupt, got, want)
	}
	return nil
}

// Fault is one corrupt entry that Verify found.
type Fault struct {
	// Kind is "image", "tree" or "layer".
	Kind string
	// ID is the image ID, tree ID or layer diff_id.
	ID  string
	Err error
}

// Verify re-hashes what the store holds for the images ids (all images if
// none): each ACI's blob against its ID, each OCI image's layer list and
// layers against the digests recorded when they were unpacked, and the
// rendered trees of the images against theirs. It returns what does not
// match; an error is returned only when the check itself cannot run.
func (s *Store) Verify(ctx context.Context, ids []string) ([]Fault, error) {
	if len(ids) == 0 {
		imgs, err := s.List()
		if err != nil {
			return nil, err
		}
		for _, img := range imgs {
			ids = append(ids, img.ID)
		}
	}
	var faults []Fault
	want := map[string]bool{}
	layersSeen := map[string]bool{}
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		img, err := s.Get(id)
		if err != nil {
			return nil, err
		}
		want[id] = true
		if img.Kind == KindOCI {
			rec, err := s.ociRecord(id)
			if err != nil {
				faults = append(faults, Fault{Kind: "image", ID: id, Err: fmt.Errorf("%w: %w", ErrCorrupt, err)})
				continue
			}
			for _, l := range rec.Layers {
				h, ok := strings.CutPrefix(l.DiffID, "sha256:")
				if !ok || !validHex64(h) {
					faults = append(faults, Fault{Kind: "image", ID: id, Err: fmt.Errorf("%w: layer list names %q", ErrCorrupt, l.DiffID)})
					continue
				}
				if layersSeen[h] {
					continue
				}
				layersSeen[h] = true
				if !s.hasLayer(h) {
					faults = append(faults, Fault{Kind: "layer", ID: l.DiffID, Err: fmt.Errorf("image %s: %w", id, ErrNotFound)})
					continue
				}
				if err := checkDigest(ctx, s.layerDir(h)); err != nil {
					faults = append(faults, Fault{Kind: "layer", ID: l.DiffID, Err: err})
				}
			}
			continue
		}
		if err := s.checkBlob(ctx, id); err != nil {
			faults = append(faults, Fault{Kind: "image", ID: id, Err: err})
		}
	}
	trees, err := s.Trees()
	if err != nil {
		return nil, err
	}
	for _, t := range trees {
		top, err := os.ReadFile(filepath.Join(s.treeDir(t.ID), imageFile))
		if err != nil || !want[strings.TrimSpace(string(top))] {
			continue
		}
		if err := checkDigest(ctx, s.treeDir(t.ID)); err != nil {
			faults = append(faults, Fault{Kind: "tree", ID: t.ID, Err: err})
		}
	}
	return faults, nil
}

// checkBlob re-hashes the blob of ACI image id.
func (s *Store) checkBlob(ctx context.Context, id string) error {
	f, err := os.Open(s.blobPath(id))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	defer f.Close()
	h := sha512.New()
	if _, err := io.Copy(h, ctxReader{ctx, f}); err != nil {
		return err
	}
	if got := idPrefix + hex.EncodeToString(h.Sum(nil)); got != id {
		return fmt.Errorf("%w: blob hashes to %.23s…", ErrCorrupt, got)
	}
	return nil
}

// RemoveLayer removes the unpacked layer diffID ("sha256:<hex>") unless
// something holds it; the images that use it fetch it again on their next
// fetch. It reports whether it removed the layer.
func (s *Store) RemoveLayer(diffID string) (bool, error) {
	h, ok := strings.CutPrefix(diffID, "sha256:")
	if !ok || !validHex64(h) {
		return false, fmt.Errorf("layer %q: invalid diff_id", diffID)
	}
	return s.removeLayer(h, false)
}
