package manifests

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"

	"github.com/appc/spec/schema"
	"github.com/ulikunitz/xz"
)

// Compression of an ACI as fetched.
type Compression string

// Compressions appc allows.
const (
	None  Compression = "none"
	Gzip  Compression = "gzip"
	Bzip2 Compression = "bzip2"
	Xz    Compression = "xz"
)

// Decompress detects the compression of an ACI by its magic bytes and returns
// a reader of the tar inside.
func Decompress(r io.Reader) (io.Reader, Compression, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	magic, err := br.Peek(6)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, None, fmt.Errorf("read archive header: %w", err)
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, Gzip, fmt.Errorf("gzip: %w", err)
		}
		return zr, Gzip, nil
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bzip2.NewReader(br), Bzip2, nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, Xz, fmt.Errorf("xz: %w", err)
		}
		return xr, Xz, nil
	}
	return br, None, nil
}

// ReadACIManifest finds and decodes the manifest of an ACI (compressed or
// not) without unpacking anything else.
func ReadACIManifest(r io.Reader) (*schema.ImageManifest, error) {
	tr, _, err := Decompress(r)
	if err != nil {
		return nil, err
	}
	t := tar.NewReader(tr)
	for {
		h, err := t.Next()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("archive has no manifest")
		}
		if err != nil {
			return nil, fmt.Errorf("read archive: %w", err)
		}
		if h.Name != "manifest" && h.Name != "./manifest" {
			continue
		}
		if h.Size > MaxManifestSize {
			return nil, fmt.Errorf("manifest larger than %d bytes", MaxManifestSize)
		}
		b, err := io.ReadAll(io.LimitReader(t, MaxManifestSize))
		if err != nil {
			return nil, fmt.Errorf("read manifest: %w", err)
		}
		return DecodeImage(b)
	}
}
