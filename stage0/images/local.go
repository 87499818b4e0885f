package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/atomicfile"
	"github.com/rkt-ng/rkt/stage0/store"
)

// localRecord remembers which image a local file held, so that a warm start
// does not re-read and re-hash an unchanged stage1 image on every run.
type localRecord struct {
	Dev, Ino uint64
	Size     int64
	MtimeNs  int64
	ID       string
}

func (c *Config) localRecordPath(abs string) string {
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(c.Dir, "cas", "local", hex.EncodeToString(sum[:])+".json")
}

// ImportLocal imports a local image file as Fetch does, but skips the import
// when the same unchanged file (device, inode, size and mtime) was imported
// before and its image is still in the store: stage0 imports its stage1 image
// this way on every run.
func (c *Config) ImportLocal(ctx context.Context, s *store.Store, path string, o FetchOptions) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	var st unix.Stat_t
	if err := unix.Stat(abs, &st); err != nil {
		return "", fmt.Errorf("image %s: %w", path, &os.PathError{Op: "stat", Path: abs, Err: err})
	}
	cur := localRecord{Dev: st.Dev, Ino: st.Ino, Size: st.Size, MtimeNs: st.Mtim.Nano()}
	recPath := c.localRecordPath(abs)
	if b, err := os.ReadFile(recPath); err == nil {
		var rec localRecord
		if json.Unmarshal(b, &rec) == nil && rec.ID != "" {
			id := rec.ID
			rec.ID = ""
			if rec == cur {
				if _, err := s.Get(id); err == nil {
					return id, nil
				}
			}
		}
	}
	id, err := c.fetchFile(ctx, s, abs, o)
	if err != nil {
		return "", err
	}
	cur.ID = id
	if b, err := json.Marshal(cur); err == nil {
		if os.MkdirAll(filepath.Dir(recPath), 0o700) == nil {
			atomicfile.WriteFile(recPath, b, 0o600)
		}
	}
	return id, nil
}
