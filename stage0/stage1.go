package stage0

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

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
// rkt binary, then the stage1 images directory (paths.d's stage1-images, or
// the installed lib dir relative to the binary, then the system one).
func (c *Config) stage1Candidates(name string) []string {
	var out []string
	exe, exeErr := os.Executable()
	if exeErr == nil {
		out = append(out, filepath.Join(filepath.Dir(exe), name))
	}
	if c.Files.Stage1ImagesDir != "" {
		return append(out, filepath.Join(c.Files.Stage1ImagesDir, name))
	}
	if exeErr == nil {
		out = append(out, filepath.Join(filepath.Dir(exe), "..", "lib", "rkt", "stage1-images", name))
	}
	return append(out, filepath.Join("/usr/lib/rkt/stage1-images", name))
}

// ResolveStage1 finds the stage1 image and returns its ID in the store: the
// --stage1-* flag given, else stage1.d's default image, else the image
// built beside the binary or installed in the stage1 images directory.
// Images beside the binary or in the stage1 images directory are trusted
// without a signature, as in rkt 1.30; any other needs one unless
// --insecure-options=image.
func (c *Config) ResolveStage1(ctx context.Context, s *store.Store, o Stage1Options) (string, error) {
	if err := o.Check(); err != nil {
		return "", err
	}
	switch {
	case o.Path != "":
		return c.Images().ImportLocal(ctx, s, o.Path, images.FetchOptions{NoVerify: c.trustedStage1(o.Path)})
	case o.URL != "":
		return c.Images().Fetch(ctx, s, o.URL, images.FetchOptions{PullPolicy: "new"})
	case o.Name != "":
		return c.Images().Fetch(ctx, s, o.Name, images.FetchOptions{PullPolicy: "new"})
	case o.Hash != "":
		img, err := s.Resolve(o.Hash)
		if err != nil {
			return "", fmt.Errorf("--stage1-hash %s: %w", o.Hash, err)
		}
		return img.ID, nil
	case o.FromDir != "":
		// A file name, not a path: a name reaching out of the directory
		// would skip the signature check the directory's images are spared.
		if o.FromDir != filepath.Base(o.FromDir) || o.FromDir == ".." || o.FromDir == "." {
			return "", fmt.Errorf("--stage1-from-dir %q: want the file name of an image in %s", o.FromDir, c.stage1Dir())
		}
		return c.Images().ImportLocal(ctx, s, filepath.Join(c.stage1Dir(), o.FromDir), images.FetchOptions{NoVerify: true})
	}
	if d := c.Files.Stage1; d.Name != "" || d.Location != "" {
		return c.configuredStage1(ctx, s, d)
	}
	for _, p := range c.stage1Candidates(DefaultStage1Image) {
		if _, err := os.Stat(p); err == nil {
			return c.Images().ImportLocal(ctx, s, p, images.FetchOptions{NoVerify: true})
		}
	}
	return "", fmt.Errorf("%w: looked for %v; build it with `make` or pass --stage1-path", ErrNoStage1, c.stage1Candidates(DefaultStage1Image))
}

// configuredStage1 resolves stage1.d's default stage1 image as rkt 1.30 did:
// name:version from the store if there (a version ending in -dirty is
// always re-imported), else the location (a URL is fetched, a path
// imported), else a file of the location's name beside the rkt binary. A
// location outside the stage1 images directory needs a signature.
func (c *Config) configuredStage1(ctx context.Context, s *store.Store, d Stage1Default) (string, error) {
	if d.Name != "" && !strings.HasSuffix(d.Version, "-dirty") {
		if img, err := s.Resolve(d.Name + ":" + d.Version); err == nil {
			return img.ID, nil
		}
	}
	loc := strings.TrimPrefix(d.Location, "file://")
	if loc == "" {
		return "", fmt.Errorf("%w: stage1.d names %s:%s, which is not in the store, and gives no location", ErrNoStage1, d.Name, d.Version)
	}
	if !filepath.IsAbs(loc) {
		return c.Images().Fetch(ctx, s, loc, images.FetchOptions{PullPolicy: "new"})
	}
	id, err := c.Images().ImportLocal(ctx, s, loc, images.FetchOptions{NoVerify: c.trustedStage1(loc)})
	if err == nil {
		return id, nil
	}
	exe, exeErr := os.Executable()
	if exeErr != nil {
		return "", fmt.Errorf("stage1.d location: %w", err)
	}
	beside := filepath.Join(filepath.Dir(exe), filepath.Base(loc))
	if _, serr := os.Stat(beside); serr != nil {
		return "", fmt.Errorf("stage1.d location: %w", err)
	}
	return c.Images().ImportLocal(ctx, s, beside, images.FetchOptions{NoVerify: true})
}

// stage1Dir is the stage1 images directory: paths.d's stage1-images, else
// the first existing of the installed ones.
func (c *Config) stage1Dir() string {
	cands := c.stage1Candidates("")
	for _, d := range cands[1:] {
		if _, err := os.Stat(d); err == nil {
			return filepath.Clean(d)
		}
	}
	return filepath.Clean(cands[len(cands)-1])
}

// trustedStage1 reports whether a stage1 image file may be used without a
// signature: an image beside the binary (as bin/stage1-*.aci of a build) or
// a file in the stage1 images directory (rkt 1.30's isTrustedLocation).
func (c *Config) trustedStage1(path string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	if exe, err := os.Executable(); err == nil && filepath.Dir(abs) == filepath.Dir(exe) {
		return true
	}
	for _, d := range c.stage1Candidates("")[1:] {
		if da, err := filepath.Abs(d); err == nil && strings.HasPrefix(abs, da+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// checkOSArch refuses an app image built for another os or arch
// (images.CheckOSArch), as rkt 1.30's stage0 did before preparing an app.
func checkOSArch(im *schema.ImageManifest) error { return images.CheckOSArch(im) }
