package discovery

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/rkt-ng/rkt/internal/atomicfile"
)

// maxRecordFile bounds a cache record file; records are a few hundred bytes.
const maxRecordFile = 64 << 10

// FileCache is a Cache keeping one JSON file per URL, named by the sha256 of
// the URL, in a directory (the store's cas/remote). Writes are atomic; a
// missing, unreadable or corrupt file reads as no record, since the worst
// outcome is a download that could have been avoided.
type FileCache struct {
	dir string
}

var _ Cache = (*FileCache)(nil)

// fileRecord is the on-disk form; URL guards against a mismatched file.
type fileRecord struct {
	URL string `json:"url"`
	Record
}

// NewFileCache returns a FileCache in dir, creating it if needed.
func NewFileCache(dir string) (*FileCache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("remote cache: %w", err)
	}
	return &FileCache{dir: dir}, nil
}

func (c *FileCache) path(url string) string {
	sum := sha256.Sum256([]byte(url))
	return filepath.Join(c.dir, hex.EncodeToString(sum[:])+".json")
}

// Get returns the record of url, if there is a valid one.
func (c *FileCache) Get(url string) (Record, bool) {
	data, err := readBounded(c.path(url), maxRecordFile)
	if err != nil {
		return Record{}, false
	}
	var fr fileRecord
	if err := json.Unmarshal(data, &fr); err != nil || fr.URL != url {
		return Record{}, false
	}
	return fr.Record, true
}

// Put stores the record of url, replacing any earlier one.
func (c *FileCache) Put(url string, rec Record) error {
	data, err := json.Marshal(fileRecord{URL: url, Record: rec})
	if err != nil {
		return fmt.Errorf("remote cache record for %s: %w", url, err)
	}
	if err := atomicfile.WriteFile(c.path(url), data, 0o644); err != nil {
		return fmt.Errorf("remote cache record for %s: %w", url, err)
	}
	return nil
}

// Delete forgets the record of url; a missing record is not an error.
func (c *FileCache) Delete(url string) error {
	if err := os.Remove(c.path(url)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remote cache record for %s: %w", url, err)
	}
	return nil
}
