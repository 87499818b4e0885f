package store

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/appc/spec/schema"
	"github.com/ulikunitz/xz"

	"github.com/rkt-ng/rkt/internal/pausepoint"
	"github.com/rkt-ng/rkt/internal/untar"
	"github.com/rkt-ng/rkt/manifests"
)

var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicBzip2 = []byte("BZh")
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// decompress returns the uncompressed stream of an ACI as fetched: gzip,
// bzip2, xz or plain tar, told apart by their magic numbers.
func decompress(br *bufio.Reader) (io.Reader, error) {
	head, _ := br.Peek(len(magicXz)) // a short stream fails later, as a tar
	switch {
	case bytes.HasPrefix(head, magicGzip):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(head, magicBzip2):
		return bzip2.NewReader(br), nil
	case bytes.HasPrefix(head, magicXz):
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("xz: %w", err)
		}
		return xr, nil
	}
	return br, nil
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// sizeLimit fails a read once more than limit bytes went through it.
type sizeLimit struct {
	r     io.Reader
	n     int64
	limit int64
}

func (l *sizeLimit) Read(p []byte) (int, error) {
	if l.n > l.limit {
		return 0, l.err()
	}
	if rest := l.limit + 1 - l.n; int64(len(p)) > rest {
		p = p[:rest] // read one byte past the limit, never more
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > l.limit {
		return n, l.err()
	}
	return n, err
}

func (l *sizeLimit) err() error {
	return fmt.Errorf("%w: more than %d bytes decompressed (limit set by --max-image-size)", ErrTooLarge, l.limit)
}

// ImportACI stores the ACI read from r (compressed or not) and returns its
// index row. The uncompressed tar is hashed while it is written to cas/tmp;
// it must hold exactly the "manifest" file and the "rootfs" directory, with
// safe entry names, no duplicates and a valid image manifest, and be no
// larger uncompressed than the store's limit (ErrTooLarge). Importing an
// image that is already stored returns its row unchanged. On any error
// nothing is left in the store.
func (s *Store) ImportACI(ctx context.Context, r io.Reader) (Image, error) {
	img, err := s.importACI(ctx, r)
	if err != nil {
		return Image{}, fmt.Errorf("import ACI: %w", err)
	}
	return img, nil
}

// importTempPrefix starts the names of ImportACI's temporaries in cas/tmp;
// importsLock is the lock every running ImportACI holds shared.
const (
	importTempPrefix = "aci-"
	importsLock      = "imports"
)

func (s *Store) importACI(ctx context.Context, r io.Reader) (_ Image, err error) {
	zr, err := decompress(bufio.NewReaderSize(ctxReader{ctx, r}, 1<<20))
	if err != nil {
		return Image{}, err
	}
	dr := &sizeLimit{r: zr, limit: s.maxSize}
	// Held (shared) while this import has a temporary, so that CleanTemp
	// removes the temporaries only when no import is running: then every
	// one was left by a killed import.
	il, err := s.lock(ctx, importsLock, false)
	if err != nil {
		return Image{}, err
	}
	defer il.Close()
	tmp, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), importTempPrefix+"*")
	if err != nil {
		return Image{}, err
	}
	tmpName := tmp.Name()
	defer func() {
		if tmp != nil {
			tmp.Close()
		}
		if tmpName != "" {
			os.Remove(tmpName)
		}
	}()

	h := sha512.New()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	cw := &countWriter{w: io.MultiWriter(h, bw)}
	tee := io.TeeReader(dr, cw)
	mb, im, err := checkACI(tee)
	if err != nil {
		return Image{}, err
	}
	// The ID covers the whole uncompressed stream, trailing blocks included.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return Image{}, fmt.Errorf("read tar: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return Image{}, err
	}
	if err := s.fsync(tmp); err != nil {
		return Image{}, err
	}
	id := idPrefix + hex.EncodeToString(h.Sum(nil))
	if err := pausepoint.Reach(ctx, pausepoint.ACIDownloaded); err != nil {
		return Image{}, err
	}

	l, err := s.lock(ctx, id, true)
	if err != nil {
		return Image{}, err
	}
	defer l.Close()
	if img, err := s.Get(id); err == nil {
		return img, nil // already stored; the temporary goes away
	} else if !errors.Is(err, ErrNotFound) {
		return Image{}, err
	}

	blob, mpath := s.blobPath(id), s.manifestPath(id)
	defer func() {
		if err != nil {
			os.Remove(blob)
			os.Remove(mpath)
		}
	}()
	if err := os.Rename(tmpName, blob); err != nil {
		return Image{}, err
	}
	tmpName = ""
	if err := tmp.Close(); err != nil {
		return Image{}, err
	}
	tmp = nil
	if err := s.syncDir(filepath.Dir(blob)); err != nil {
		return Image{}, err
	}
	if err := s.writeFile(mpath, mb, 0o644); err != nil {
		return Image{}, fmt.Errorf("image %s: manifest: %w", id, err)
	}
	if err := pausepoint.Reach(ctx, pausepoint.ACIBlobStored); err != nil {
		return Image{}, err
	}
	now := time.Now().UTC()
	img := Image{
		ID:         id,
		Name:       im.Name.String(),
		Labels:     im.Labels,
		ImportTime: now,
		LastUsed:   now,
		Size:       cw.n,
		Kind:       KindACI,
	}
	if err := s.writeRow(img); err != nil {
		return Image{}, err
	}
	return img, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// checkACI reads an ACI tar to its end-of-archive marker and returns its
// manifest, raw and decoded. It enforces the appc archive rules plus what
// internal/untar will accept when the image is rendered.
func checkACI(r io.Reader) ([]byte, *schema.ImageManifest, error) {
	tr := tar.NewReader(r)
	seen := map[string]struct{}{}
	symlinks := map[string]struct{}{}
	var mb []byte
	rootfs := false
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read tar: %w", err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		if err := untar.CheckEntry(hdr); err != nil {
			return nil, nil, fmt.Errorf("ACI entry %q: %w", hdr.Name, err)
		}
		name, _ := untar.CleanName(hdr.Name)
		if _, dup := seen[name]; dup {
			return nil, nil, fmt.Errorf("ACI entry %q: duplicate entry", hdr.Name)
		}
		seen[name] = struct{}{}
		// Rendering never follows symlinks: refuse what could not render.
		for p := path.Dir(name); p != "."; p = path.Dir(p) {
			if _, ok := symlinks[p]; ok {
				return nil, nil, fmt.Errorf("ACI entry %q: parent %q is a symlink: %w", hdr.Name, p, untar.ErrUnsafePath)
			}
		}
		if hdr.Typeflag == tar.TypeSymlink {
			symlinks[name] = struct{}{}
		}
		switch top, _, _ := strings.Cut(name, "/"); {
		case name == ".":
			if hdr.Typeflag != tar.TypeDir {
				return nil, nil, fmt.Errorf("ACI entry %q: not a directory", hdr.Name)
			}
		case name == "manifest":
			if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA {
				return nil, nil, fmt.Errorf("ACI entry %q: not a regular file", hdr.Name)
			}
			b, err := io.ReadAll(io.LimitReader(tr, manifests.MaxManifestSize+1))
			if err != nil {
				return nil, nil, fmt.Errorf("read manifest: %w", err)
			}
			mb = b
		case name == "rootfs":
			if hdr.Typeflag != tar.TypeDir {
				return nil, nil, fmt.Errorf("ACI entry %q: rootfs is not a directory", hdr.Name)
			}
			rootfs = true
		case top == "rootfs":
			rootfs = true
			if hdr.Typeflag == tar.TypeLink {
				target, _ := untar.CleanName(hdr.Linkname)
				if !strings.HasPrefix(target, "rootfs/") {
					return nil, nil, fmt.Errorf("ACI entry %q: hard link target %q outside rootfs: %w", hdr.Name, hdr.Linkname, untar.ErrUnsafePath)
				}
			}
		default:
			return nil, nil, fmt.Errorf("ACI entry %q: unexpected top-level entry (want only manifest and rootfs/)", hdr.Name)
		}
	}
	if mb == nil {
		return nil, nil, errors.New("no manifest entry")
	}
	if !rootfs {
		return nil, nil, errors.New("no rootfs directory")
	}
	im, err := manifests.DecodeImage(mb)
	if err != nil {
		return nil, nil, err
	}
	return mb, im, nil
}
