package stage0

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/appc/spec/schema"

	"github.com/rkt-ng/rkt/stage0/images"
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

// Check refuses more than one --stage1-* flag with rkt 1.30's message,
// naming the first two given in the order url, path, name, hash, from-dir.
func (o Stage1Options) Check() error {
	var set []string
	for _, f := range []struct{ flag, v string }{
		{"stage1-url", o.URL}, {"stage1-path", o.Path}, {"stage1-name", o.Name},
		{"stage1-hash", o.Hash}, {"stage1-from-dir", o.FromDir},
	} {
		if f.v != "" {
			set = append(set, f.flag)
		}
	}
	if len(set) > 1 {
		return fmt.Errorf("flags --%s and --%s are mutually exclusive", set[1], set[0])
	}
	return nil
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
	if err := o.Check(); err != nil {
		return "", err
	}
	switch {
	case o.Path != "":
		return c.Images().ImportLocal(ctx, s, o.Path, images.FetchOptions{NoVerify: isDefaultStage1(o.Path)})
	case o.URL != "":
		return c.Images().Fetch(ctx, s, o.URL, images.FetchOptions{PullPolicy: "new"})
	case o.Name != "":
		return c.Images().Fetch(ctx, s, o.Name, images.FetchOptions{PullPolicy: "new"})
	case o.Hash != "":
		img, err := s.Resolve(o.Hash)
		if err != nil {
			return "", fmt.Errorf("stage1 %s: %w", o.Hash, err)
		}
		return img.ID, nil
	case o.FromDir != "":
		return c.Images().ImportLocal(ctx, s, filepath.Join(c.stage1Dir(), o.FromDir), images.FetchOptions{NoVerify: true})
	}
	for _, p := range stage1Candidates(DefaultStage1Image) {
		if _, err := os.Stat(p); err == nil {
			return c.Images().ImportLocal(ctx, s, p, images.FetchOptions{NoVerify: true})
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

// checkOSArch refuses an app image built for another os or arch
// (images.CheckOSArch), as rkt 1.30's stage0 did before preparing an app.
func checkOSArch(im *schema.ImageManifest) error { return images.CheckOSArch(im) }
