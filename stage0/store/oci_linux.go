package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"

	"github.com/rkt-ng/rkt/internal/pausepoint"
	"github.com/rkt-ng/rkt/internal/untar"
)

// OCI images in the store (docs/design.md):
//
//	layers/sha256/<diff_id hex>/rootfs   one unpacked layer, named by its
//	                                     diff_id, with overlayfs whiteouts
//	oci/<id>.json                        the layer list and digests (ociRecord)
//
// The image ID is "sha512-" + the sha512 of the OCI manifest blob, so the
// same manifest always gets the same ID. Layers are shared between images
// and never squashed: a pod mounts them as overlayfs lower directories.
const (
	layersDir = "layers/sha256"
	ociDir    = "oci"
)

// maxConfigSize and maxManifestSize bound the JSON blobs of an OCI image.
const (
	maxOCIConfigSize = 8 << 20
	maxOCILayers     = 500
)

// ErrMediaType means an OCI manifest, config or layer has a media type that
// rkt-ng does not know.
var ErrMediaType = errors.New("unknown media type")

// ociRecord is cas/oci/<id>.json.
type ociRecord struct {
	ManifestDigest string          `json:"manifestDigest"`
	MediaType      string          `json:"mediaType"`
	ConfigDigest   string          `json:"configDigest"`
	Config         json.RawMessage `json:"config"`
	Layers         []ociLayer      `json:"layers"` // base first
}

type ociLayer struct {
	Digest    string `json:"digest"`
	DiffID    string `json:"diffID"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
}

// OCIOptions tune ImportOCI.
type OCIOptions struct {
	// Progress, if set, is called with the number of compressed layer bytes
	// read since the last call, from several goroutines at once; Total is
	// called once, before any download, with the bytes to be downloaded.
	Progress func(n int64)
	Total    func(n int64)
	// Concurrency bounds parallel layer downloads; 0 means 4.
	Concurrency int
}

func (s *Store) ociPath(id string) string { return filepath.Join(s.dir, ociDir, id+".json") }

// LayerDir is where the layer with the given diff_id hex is unpacked.
func (s *Store) layerDir(hexDiffID string) string {
	return filepath.Join(s.dir, layersDir, hexDiffID)
}

// ImportOCI stores the OCI image img (a single-platform image, as
// go-containerregistry's remote or layout gives it) under ref and returns
// its index row. Each layer not yet in the store is downloaded once,
// verified against its descriptor's digest and size and its config diff_id,
// and unpacked into its own directory; layers already present are not
// downloaded. On any error no image row is written and no partial layer is
// left behind.
func (s *Store) ImportOCI(ctx context.Context, img v1.Image, ref OCIRef, o OCIOptions) (Image, error) {
	im, err := s.importOCI(ctx, img, ref, o)
	if err != nil {
		return Image{}, fmt.Errorf("import OCI image %s: %w", ref.Original, err)
	}
	return im, nil
}

func (s *Store) importOCI(ctx context.Context, img v1.Image, ref OCIRef, o OCIOptions) (Image, error) {
	rawManifest, err := img.RawManifest()
	if err != nil {
		return Image{}, fmt.Errorf("manifest: %w", err)
	}
	mt, err := img.MediaType()
	if err != nil {
		return Image{}, fmt.Errorf("manifest: %w", err)
	}
	if mt != types.OCIManifestSchema1 && mt != types.DockerManifestSchema2 {
		return Image{}, fmt.Errorf("manifest: %w %q", ErrMediaType, mt)
	}
	sum := sha512.Sum512(rawManifest)
	id := idPrefix + hex.EncodeToString(sum[:])
	if img, err := s.Get(id); err == nil && s.ociComplete(id) {
		if _, err := s.OCILayers(id); err == nil {
			return img, nil
		}
		// A layer was removed (rkt image verify --repair): fetch it again.
	}
	m, err := v1.ParseManifest(bytes.NewReader(rawManifest))
	if err != nil {
		return Image{}, fmt.Errorf("manifest: %w", err)
	}
	manifestDigest := "sha256:" + hex.EncodeToString(sha256Sum(rawManifest))
	if m.Config.MediaType != types.OCIConfigJSON && m.Config.MediaType != types.DockerConfigJSON {
		return Image{}, fmt.Errorf("config %s: %w %q", m.Config.Digest, ErrMediaType, m.Config.MediaType)
	}
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return Image{}, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	if len(rawConfig) > maxOCIConfigSize {
		return Image{}, fmt.Errorf("config %s: larger than %d bytes", m.Config.Digest, maxOCIConfigSize)
	}
	if got := "sha256:" + hex.EncodeToString(sha256Sum(rawConfig)); m.Config.Digest.Algorithm != "sha256" || got != m.Config.Digest.String() {
		return Image{}, fmt.Errorf("config %s: digest mismatch: blob is %s", m.Config.Digest, got)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(rawConfig))
	if err != nil {
		return Image{}, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	if cfg.RootFS.Type != "layers" {
		return Image{}, fmt.Errorf("config %s: rootfs type %q, want \"layers\"", m.Config.Digest, cfg.RootFS.Type)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return Image{}, fmt.Errorf("config %s: %d diff_ids for %d layers", m.Config.Digest, len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	if len(m.Layers) > maxOCILayers {
		return Image{}, fmt.Errorf("manifest: %d layers, more than %d", len(m.Layers), maxOCILayers)
	}
	rec := ociRecord{ManifestDigest: manifestDigest, MediaType: string(mt), ConfigDigest: m.Config.Digest.String(), Config: rawConfig}
	var size, todo int64
	for i, d := range m.Layers {
		if _, err := decompressorFor(d.MediaType); err != nil {
			return Image{}, fmt.Errorf("layer %d (%s): %w", i, d.Digest, err)
		}
		diffID := cfg.RootFS.DiffIDs[i]
		if d.Digest.Algorithm != "sha256" || !validHex64(d.Digest.Hex) || diffID.Algorithm != "sha256" || !validHex64(diffID.Hex) {
			return Image{}, fmt.Errorf("layer %d: digest %s / diff_id %s: want sha256", i, d.Digest, diffID)
		}
		rec.Layers = append(rec.Layers, ociLayer{Digest: d.Digest.String(), DiffID: diffID.String(), MediaType: string(d.MediaType), Size: d.Size})
		size += d.Size
		if !s.hasLayer(diffID.Hex) {
			todo += d.Size
		}
	}
	if o.Total != nil {
		o.Total(todo)
	}

	// Hold every layer from before it is looked for until the image's row
	// and layer list are written, so that layer gc (CollectLayers) leaves
	// them alone meanwhile. These use locks are only ever taken exclusively
	// without waiting, so holding them while waiting for the image lock
	// below cannot deadlock.
	var keys []string
	for _, l := range rec.Layers {
		keys = append(keys, layerUseKey(strings.TrimPrefix(l.DiffID, "sha256:")))
	}
	slices.Sort(keys)
	hold, err := s.holdKeys(ctx, slices.Compact(keys))
	if err != nil {
		return Image{}, err
	}
	defer hold.Release()

	g, gctx := errgroup.WithContext(ctx)
	n := o.Concurrency
	if n <= 0 {
		n = 4
	}
	g.SetLimit(n)
	seen := map[string]bool{}
	for i, d := range m.Layers {
		diffID := cfg.RootFS.DiffIDs[i]
		if seen[diffID.Hex] {
			continue
		}
		seen[diffID.Hex] = true
		g.Go(func() error {
			if err := s.ensureLayer(gctx, img, d, diffID, o.Progress); err != nil {
				return fmt.Errorf("layer %d (%s): %w", i, d.Digest, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return Image{}, err
	}
	if err := pausepoint.Reach(ctx, pausepoint.OCILayersStored); err != nil {
		return Image{}, err
	}

	im, err := ManifestFromOCI(cfg, ref, manifestDigest, m.Config.Digest.String(), s.passwdGroup(rec.Layers))
	if err != nil {
		return Image{}, err
	}
	mb, err := im.MarshalJSON()
	if err != nil {
		return Image{}, err
	}
	rb, err := json.Marshal(rec)
	if err != nil {
		return Image{}, err
	}

	l, err := s.lock(ctx, id, true)
	if err != nil {
		return Image{}, err
	}
	defer l.Close()
	if img, err := s.Get(id); err == nil && s.ociComplete(id) {
		return img, nil
	}
	if err := os.MkdirAll(filepath.Join(s.dir, ociDir), DirMode); err != nil {
		return Image{}, err
	}
	if err := s.writeFile(s.ociPath(id), rb, 0o644); err != nil {
		return Image{}, fmt.Errorf("image %s: layer list: %w", id, err)
	}
	if err := s.writeFile(s.manifestPath(id), mb, 0o644); err != nil {
		os.Remove(s.ociPath(id))
		return Image{}, fmt.Errorf("image %s: manifest: %w", id, err)
	}
	now := time.Now().UTC()
	row := Image{ID: id, Name: im.Name.String(), Labels: im.Labels, ImportTime: now, LastUsed: now, Size: size, Kind: KindOCI}
	if err := s.writeRow(row); err != nil {
		os.Remove(s.ociPath(id))
		os.Remove(s.manifestPath(id))
		return Image{}, err
	}
	return row, nil
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func validHex64(h string) bool { return len(h) == 64 && isHex(h) }

// ociComplete reports whether the layer list of an OCI image row exists.
func (s *Store) ociComplete(id string) bool {
	_, err := os.Stat(s.ociPath(id))
	return err == nil
}

func (s *Store) hasLayer(hexDiffID string) bool {
	_, err := os.Lstat(filepath.Join(s.layerDir(hexDiffID), "rootfs"))
	return err == nil
}

// HasLayer reports whether the layer with this diff_id ("sha256:<hex>") is
// unpacked in the store.
func (s *Store) HasLayer(diffID string) bool {
	h, ok := strings.CutPrefix(diffID, "sha256:")
	return ok && validHex64(h) && s.hasLayer(h)
}

// decompressorFor returns how to decompress a layer of media type mt.
func decompressorFor(mt types.MediaType) (func(io.Reader) (io.ReadCloser, error), error) {
	switch mt {
	case types.OCILayer, types.DockerLayer, types.OCIRestrictedLayer, types.DockerForeignLayer:
		return func(r io.Reader) (io.ReadCloser, error) {
			zr, err := gzip.NewReader(r)
			if err != nil {
				return nil, fmt.Errorf("gzip: %w", err)
			}
			return zr, nil
		}, nil
	case types.OCILayerZStd:
		return func(r io.Reader) (io.ReadCloser, error) {
			zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
			if err != nil {
				return nil, fmt.Errorf("zstd: %w", err)
			}
			return zr.IOReadCloser(), nil
		}, nil
	case types.OCIUncompressedLayer, types.DockerUncompressedLayer, types.OCIUncompressedRestrictedLayer:
		return func(r io.Reader) (io.ReadCloser, error) { return io.NopCloser(r), nil }, nil
	}
	return nil, fmt.Errorf("%w %q", ErrMediaType, mt)
}

// countingHash hashes and counts what goes through it and reports progress.
type countingHash struct {
	r        io.Reader
	h        hash.Hash
	n        int64
	progress func(int64)
}

func (c *countingHash) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.h.Write(p[:n])
		c.n += int64(n)
		if c.progress != nil {
			c.progress(int64(n))
		}
	}
	return n, err
}

// ensureLayer makes sure the layer d with diff_id diffID is unpacked: under
// the layer's lock, it streams the compressed blob through a sha256, the
// decompressor, a second sha256 and the tar extractor into
// layers/sha256/.tmp-<hex>, checks both digests and the size, converts OCI
// whiteouts to overlayfs ones and renames the directory into place.
func (s *Store) ensureLayer(ctx context.Context, img v1.Image, d v1.Descriptor, diffID v1.Hash, progress func(int64)) (err error) {
	if s.hasLayer(diffID.Hex) {
		return nil
	}
	l, err := s.lock(ctx, "layer-sha256-"+diffID.Hex, true)
	if err != nil {
		return err
	}
	defer l.Close()
	if s.hasLayer(diffID.Hex) {
		return nil
	}
	final := s.layerDir(diffID.Hex)
	tmp := filepath.Join(s.dir, layersDir, ".tmp-"+diffID.Hex)
	if err := os.RemoveAll(tmp); err != nil { // left by a crash
		return err
	}
	if err := os.RemoveAll(final); err != nil { // a directory without rootfs: incomplete
		return err
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
	layer, err := img.LayerByDigest(d.Digest)
	if err != nil {
		return err
	}
	rc, err := layer.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	ch := &countingHash{r: rc, h: sha256.New(), progress: progress}
	decomp, _ := decompressorFor(d.MediaType)
	dr, err := decomp(bufio.NewReaderSize(ch, 1<<20))
	if err != nil {
		return err
	}
	defer dr.Close()
	dh := &countingHash{r: &sizeLimit{r: dr, limit: s.maxSize}, h: sha256.New()}
	wh := &whiteouts{}
	err = untar.Extract(ctx, bufio.NewReaderSize(dh, 1<<20), rootfs, untar.Options{
		KeepOwners: os.Geteuid() == 0,
		Keep:       wh.keep,
	})
	if err != nil {
		if d.Size > 0 && ch.n < d.Size && errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("download truncated after %d of %d bytes: %w", ch.n, d.Size, err)
		}
		return err
	}
	// The digests cover the whole streams, past the tar's end marker.
	if _, err := io.Copy(io.Discard, dh); err != nil {
		return fmt.Errorf("decompress: %w", err)
	}
	if _, err := io.Copy(io.Discard, ch); err != nil {
		return fmt.Errorf("read blob: %w", err)
	}
	if got := hex.EncodeToString(ch.h.Sum(nil)); got != d.Digest.Hex {
		return fmt.Errorf("digest mismatch: blob is sha256:%s", got)
	}
	if d.Size > 0 && ch.n != d.Size {
		return fmt.Errorf("size mismatch: blob has %d bytes, descriptor says %d", ch.n, d.Size)
	}
	if got := hex.EncodeToString(dh.h.Sum(nil)); got != diffID.Hex {
		return fmt.Errorf("diff_id mismatch: uncompressed layer is sha256:%s, config says %s", got, diffID)
	}
	if err := wh.apply(rootfs); err != nil {
		return err
	}
	if err := s.writeDigest(ctx, tmp); err != nil {
		return err
	}
	if err := s.syncfs(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	return s.syncDir(filepath.Dir(final))
}

// OCILayers returns the unpacked layer directories of OCI image id, base
// layer first.
func (s *Store) OCILayers(id string) ([]string, error) {
	rec, err := s.ociRecord(id)
	if err != nil {
		return nil, err
	}
	dirs := make([]string, 0, len(rec.Layers))
	for _, l := range rec.Layers {
		h, ok := strings.CutPrefix(l.DiffID, "sha256:")
		if !ok || !validHex64(h) {
			return nil, fmt.Errorf("image %s: invalid diff_id %q", id, l.DiffID)
		}
		if !s.hasLayer(h) {
			return nil, fmt.Errorf("image %s: layer %s: %w", id, l.DiffID, ErrNotFound)
		}
		dirs = append(dirs, filepath.Join(s.layerDir(h), "rootfs"))
	}
	return dirs, nil
}

// OCIDiffIDs returns the diff_ids ("sha256:<hex>") of the layers of OCI
// image id, base layer first, whether or not they are unpacked.
func (s *Store) OCIDiffIDs(id string) ([]string, error) {
	rec, err := s.ociRecord(id)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rec.Layers))
	for _, l := range rec.Layers {
		out = append(out, l.DiffID)
	}
	return out, nil
}

func (s *Store) ociRecord(id string) (ociRecord, error) {
	var rec ociRecord
	b, err := os.ReadFile(s.ociPath(id))
	if err != nil {
		return rec, fmt.Errorf("image %s: layer list: %w", id, err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("image %s: layer list: %w", id, err)
	}
	return rec, nil
}

// ociTree is the tree of an OCI image: its layers, not a rendered copy.
func (s *Store) ociTree(id string) (Tree, error) {
	layers, err := s.OCILayers(id)
	if err != nil {
		return Tree{}, err
	}
	h := sha512.New()
	for _, l := range layers {
		h.Write([]byte(filepath.Base(filepath.Dir(l))))
		h.Write([]byte{'\n'})
	}
	return Tree{ID: treePrefix + hex.EncodeToString(h.Sum(nil)), Layers: layers}, nil
}

// Lowers returns the tree's directories as overlayfs lowerdir wants them:
// topmost first.
func (t Tree) Lowers() []string {
	if len(t.Layers) == 0 {
		return []string{t.Rootfs}
	}
	out := make([]string, len(t.Layers))
	for i, l := range t.Layers {
		out[len(t.Layers)-1-i] = l
	}
	return out
}

// layerUseKey is the lock that a Hold and an import take (shared) on a
// layer while they need it, and layer gc takes (exclusive) to remove it.
// It is not the layer's unpack lock ("layer-sha256-<hex>"), which an
// import holds exclusively while it unpacks the layer it already holds.
func layerUseKey(hexDiffID string) string { return "layer-use-sha256-" + hexDiffID }
