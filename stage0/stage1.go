package stage0

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/atomicfile"
	"github.com/rkt-ng/rkt/stage0/store"
)

// DefaultStage1Image is the file name of the namespace stage1 that make builds.
const DefaultStage1Image = "stage1-ns.aci"

// ErrNoStage1 means no stage1 image could be found.
var ErrNoStage1 = errors.New("no stage1 image found")

// Stage1Options are rkt's --stage1-* flags; at most one may be set.
type Stage1Options struct {
	Path, URL, Name, Hash, FromDir string
}

// stage1Candidates lists where the default stage1 image may be: beside the
// rkt binary, then the installed lib dir relative to it, then the system one.
func stage1Candidates(name string) []string {
	var out []string
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		out = append(out, filepath.Join(dir, name), filepath.Join(dir, "..", "lib", "rkt", "stage1-images", name))
	}
	return append(out, filepath.Join("/usr/lib/rkt/stage1-images", name))
}

// ResolveStage1 finds the stage1 image and returns its ID in the store.
// The default image (found beside the binary or in the stage1 images dir) is
// trusted without a signature, as in rkt; any other needs one unless
// --insecure-options=image.
func (c *Config) ResolveStage1(ctx context.Context, s *store.Store, o Stage1Options) (string, error) {
	set := 0
	for _, v := range []string{o.Path, o.URL, o.Name, o.Hash, o.FromDir} {
		if v != "" {
			set++
		}
	}
	if set > 1 {
		return "", errors.New("only one of --stage1-path, --stage1-url, --stage1-name, --stage1-hash and --stage1-from-dir may be given")
	}
	switch {
	case o.Path != "":
		return c.importLocal(ctx, s, o.Path, FetchOptions{NoVerify: isDefaultStage1(o.Path)})
	case o.URL != "":
		return c.FetchImage(ctx, s, o.URL, FetchOptions{PullPolicy: "new"})
	case o.Name != "":
		return c.FetchImage(ctx, s, o.Name, FetchOptions{PullPolicy: "new"})
	case o.Hash != "":
		img, err := s.Resolve(o.Hash)
		if err != nil {
			return "", fmt.Errorf("stage1 %s: %w", o.Hash, err)
		}
		return img.ID, nil
	case o.FromDir != "":
		return c.importLocal(ctx, s, filepath.Join(c.stage1Dir(), o.FromDir), FetchOptions{NoVerify: true})
	}
	for _, p := range stage1Candidates(DefaultStage1Image) {
		if _, err := os.Stat(p); err == nil {
			return c.importLocal(ctx, s, p, FetchOptions{NoVerify: true})
		}
	}
	return "", fmt.Errorf("%w: looked for %v; build it with `make` or pass --stage1-path", ErrNoStage1, stage1Candidates(DefaultStage1Image))
}

func (c *Config) stage1Dir() string {
	cands := stage1Candidates("")
	for _, d := range cands[1:] {
		if _, err := os.Stat(d); err == nil {
			return d
		}
	}
	return cands[len(cands)-1]
}

func isDefaultStage1(path string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	for _, p := range stage1Candidates(filepath.Base(path)) {
		if pa, err := filepath.Abs(p); err == nil && pa == abs {
			return true
		}
	}
	return false
}

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

// importLocal imports a local image file, skipping the import when the same
// unchanged file (device, inode, size and mtime) was imported before and its
// image is still in the store.
func (c *Config) importLocal(ctx context.Context, s *store.Store, path string, o FetchOptions) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	var st unix.Stat_t
	if err := unix.Stat(abs, &st); err != nil {
		return "", fmt.Errorf("stage1 image %s: %w", path, &os.PathError{Op: "stat", Path: abs, Err: err})
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
