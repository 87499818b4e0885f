package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/appc/spec/schema"

	"github.com/rkt-ng/rkt/discovery"
	"github.com/rkt-ng/rkt/stage0/store"
)

// ErrWrongPlatform means an image's os or arch label names another system
// than the one rkt runs on.
var ErrWrongPlatform = errors.New("image is for another platform")

// isURL reports whether ref is an image URL (http:// or https://) rather
// than an appc name: rkt 1.30 fetched such references directly, never
// through discovery.
func isURL(ref string) bool {
	return strings.HasPrefix(ref, "https://") || strings.HasPrefix(ref, "http://")
}

// fetchURL fetches an ACI by URL with its signature at URL.asc (or the
// --signature file), under the rules of discovered images: a signature
// fetched before the image, the signer checked against the name in the
// image's manifest, and the URL's cache record (Cache-Control max-age and
// no-store, ETag revalidation, Range resume of a partial download).
//
// As in rkt 1.30, pull policy new takes an image fetched from the same URL
// before without asking the network, update asks unless the last download
// is inside its max-age, and never only looks in the store.
func (c *Config) fetchURL(ctx context.Context, s *store.Store, url string, o FetchOptions) (string, error) {
	if strings.HasPrefix(url, "http://") && !c.Insecure.HTTP {
		return "", fmt.Errorf("image %s: plain http needs --insecure-options=http", url)
	}
	cache, err := discovery.NewFileCache(c.remoteDir())
	if err != nil {
		return "", err
	}
	if rec, ok := cache.Get(url); ok && rec.BlobID != "" {
		if _, err := s.Get(rec.BlobID); err == nil {
			if o.PullPolicy != "update" || rec.Fresh(time.Now()) {
				c.logger().Debug("image of url in store", "url", url, "id", rec.BlobID)
				return rec.BlobID, nil
			}
		}
	}
	if o.PullPolicy == "never" {
		return "", fmt.Errorf("image %s: %w (--pull-policy=never)", url, store.ErrNotFound)
	}
	opts, err := c.httpOptions()
	if err != nil {
		return "", fmt.Errorf("image %s: %w", url, err)
	}
	e := discovery.ACIEndpoint{ACI: url, ASC: url + ".asc"}
	return c.fetchEndpoint(ctx, s, nil, e, nil, cache, opts, o)
}

// readSignatureFile reads a local signature file (--signature), bounded as a
// downloaded one.
func readSignatureFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20+1))
	if err != nil {
		return nil, err
	}
	if len(b) > 1<<20 {
		return nil, fmt.Errorf("signature %s: larger than 1 MiB", path)
	}
	return b, nil
}

// CheckOSArch refuses an image whose os or arch label does not name the
// running system (appc spec/types.md labels; arch in appc's names, e.g.
// aarch64). rkt 1.30 refused such images at fetch (discovery asked for the
// host's os/arch) and at run (stage0 checked every app image). An image
// without the labels is accepted.
func CheckOSArch(im *schema.ImageManifest) error {
	if v, ok := im.Labels.Get("os"); ok && v != runtime.GOOS {
		return fmt.Errorf("%w: label os=%s, this system is %s", ErrWrongPlatform, v, runtime.GOOS)
	}
	if v, ok := im.Labels.Get("arch"); ok {
		if host := discovery.AppcArch(runtime.GOARCH); v != host {
			return fmt.Errorf("%w: label arch=%s, this system is %s", ErrWrongPlatform, v, host)
		}
	}
	return nil
}
