package images

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/rkt-ng/rkt/discovery"
	"github.com/rkt-ng/rkt/stage0/store"
)

// OCI image references.
const (
	dockerScheme = "docker://"
	layoutScheme = "oci:"
	// refNameAnnotation tags a manifest in an OCI layout's index.json.
	refNameAnnotation = "org.opencontainers.image.ref.name"
	// maxIndexDepth bounds nested image indexes.
	maxIndexDepth = 4
)

// ErrNoPlatform means an image index has no image for the running system.
var ErrNoPlatform = errors.New("no image for this platform")

func isOCIRef(ref string) bool {
	return strings.HasPrefix(ref, dockerScheme) || strings.HasPrefix(ref, layoutScheme)
}

// hostPlatform is the platform chosen from an index: linux and the GOARCH
// this binary runs (the variant for arm is not visible at run time).
func hostPlatform() v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if runtime.GOARCH == "arm64" {
		p.Variant = "v8"
	}
	return p
}

func platformMatches(p *v1.Platform, want v1.Platform) bool {
	if p == nil {
		return false
	}
	if p.OS != want.OS || p.Architecture != want.Architecture {
		return false
	}
	return p.Variant == "" || want.Variant == "" || p.Variant == want.Variant
}

// fetchOCI fetches docker://REGISTRY/REPO[:TAG|@DIGEST] or oci:DIR[:TAG]
// into the store, layer by layer. OCI images have no signature scheme, so
// this needs --insecure-options=image.
func (c *Config) fetchOCI(ctx context.Context, s *store.Store, ref string, o FetchOptions) (string, error) {
	if c.verifying(o) {
		return "", fmt.Errorf("image %s: %w: OCI images have no signature to verify; use --insecure-options=image to fetch and run them", ref, ErrUnsigned)
	}
	cache, err := discovery.NewFileCache(c.remoteDir())
	if err != nil {
		return "", err
	}
	// The reference's last image: under pull policy new or never, a stored
	// image is used without asking.
	if o.PullPolicy != "update" {
		if rec, ok := cache.Get(ref); ok {
			if _, err := s.Get(rec.BlobID); err == nil {
				return rec.BlobID, nil
			}
		}
		if o.PullPolicy == "never" {
			return "", fmt.Errorf("image %s: %w (pull policy never)", ref, store.ErrNotFound)
		}
	}
	var (
		img   v1.Image
		sref  store.OCIRef
		label = ref
	)
	if strings.HasPrefix(ref, dockerScheme) {
		img, sref, err = c.remoteImage(ctx, strings.TrimPrefix(ref, dockerScheme))
	} else {
		img, sref, err = layoutImage(strings.TrimPrefix(ref, layoutScheme))
	}
	if err != nil {
		return "", fmt.Errorf("image %s: %w", ref, err)
	}
	sref.Original = ref
	bar := c.newProgress(label)
	row, err := s.ImportOCI(ctx, img, sref, store.OCIOptions{Progress: bar.add, Total: bar.setTotal})
	bar.finish()
	if err != nil {
		return "", err
	}
	if err := cache.Put(ref, discovery.Record{Fetched: time.Now().UTC(), BlobID: row.ID}); err != nil {
		c.logger().Debug("cannot save cache record", "image", ref, "err", err)
	}
	return row.ID, nil
}

// remoteImage resolves a registry reference to one image for this platform.
func (c *Config) remoteImage(ctx context.Context, s string) (v1.Image, store.OCIRef, error) {
	var nopts []name.Option
	if c.Insecure.HTTP {
		nopts = append(nopts, name.Insecure)
	}
	ref, err := name.ParseReference(s, nopts...)
	if err != nil {
		return nil, store.OCIRef{}, fmt.Errorf("parse reference: %w", err)
	}
	repo := ref.Context()
	sref := store.OCIRef{}
	if sref.Name, err = store.OCIName(repo.RegistryStr() + "/" + repo.RepositoryStr()); err != nil {
		return nil, store.OCIRef{}, err
	}
	if t, ok := ref.(name.Tag); ok {
		sref.Version = t.TagStr()
	}
	ropts, err := c.registryOptions(ctx, repo.RegistryStr())
	if err != nil {
		return nil, store.OCIRef{}, err
	}
	desc, err := remote.Get(ref, append(ropts, remote.WithPlatform(hostPlatform()))...)
	if err != nil {
		return nil, store.OCIRef{}, err
	}
	switch {
	case desc.MediaType.IsImage():
		img, err := desc.Image()
		return img, sref, err
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, store.OCIRef{}, err
		}
		img, err := pickImage(idx, 0)
		return img, sref, err
	}
	return nil, store.OCIRef{}, fmt.Errorf("manifest %s: %w %q", desc.Digest, store.ErrMediaType, desc.MediaType)
}

// registryOptions are the options of every request to a registry: ctx, the
// transport of registryTransport and the registry's auth.d credentials
// (fetch and push use the same).
func (c *Config) registryOptions(ctx context.Context, registry string) ([]remote.Option, error) {
	rt, err := c.registryTransport()
	if err != nil {
		return nil, err
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(rt)}
	auth, err := discovery.LoadAuth(c.LocalConfig, c.SystemConfig)
	if err != nil {
		return nil, err
	}
	if user, pass, ok := auth.Docker(registry); ok {
		ropts = append(ropts, remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: user, Password: pass})))
	}
	return ropts, nil
}

// pickImage chooses the host platform's image from an index, following
// nested indexes.
func pickImage(idx v1.ImageIndex, depth int) (v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("image index: %w", err)
	}
	want := hostPlatform()
	var seen []string
	for _, d := range im.Manifests {
		if d.Platform != nil {
			seen = append(seen, d.Platform.String())
		}
		switch {
		case d.MediaType.IsImage() && platformMatches(d.Platform, want):
			return idx.Image(d.Digest)
		case d.MediaType.IsIndex() && (d.Platform == nil || platformMatches(d.Platform, want)) && depth < maxIndexDepth:
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, err
			}
			img, err := pickImage(child, depth+1)
			if errors.Is(err, ErrNoPlatform) {
				continue
			}
			return img, err
		}
	}
	return nil, fmt.Errorf("image index: %w %s (it has: %s)", ErrNoPlatform, want.String(), strings.Join(seen, ", "))
}

// layoutImage opens an OCI image layout DIR[:TAG]: the manifest tagged TAG
// (org.opencontainers.image.ref.name), or the only one, or "latest".
func layoutImage(s string) (v1.Image, store.OCIRef, error) {
	dir, tag := s, ""
	if i := strings.LastIndexByte(s, ':'); i >= 0 && !strings.Contains(s[i+1:], "/") {
		dir, tag = s[:i], s[i+1:]
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, store.OCIRef{}, err
	}
	if _, err := os.Stat(filepath.Join(abs, "oci-layout")); err != nil {
		return nil, store.OCIRef{}, fmt.Errorf("%s: not an OCI image layout: %w", dir, err)
	}
	p, err := layout.FromPath(abs)
	if err != nil {
		return nil, store.OCIRef{}, fmt.Errorf("%s: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, store.OCIRef{}, fmt.Errorf("%s: %w", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, store.OCIRef{}, fmt.Errorf("%s: index.json: %w", dir, err)
	}
	var pick *v1.Descriptor
	want := tag
	if want == "" && len(im.Manifests) != 1 {
		want = "latest"
	}
	for i := range im.Manifests {
		d := &im.Manifests[i]
		if want == "" || d.Annotations[refNameAnnotation] == want {
			pick = d
			break
		}
	}
	if pick == nil {
		return nil, store.OCIRef{}, fmt.Errorf("%s: no manifest tagged %q", dir, want)
	}
	sref := store.OCIRef{Version: pick.Annotations[refNameAnnotation]}
	if tag != "" {
		sref.Version = tag
	}
	if sref.Name, err = store.OCIName("oci-layout/" + filepath.Base(abs)); err != nil {
		return nil, store.OCIRef{}, err
	}
	var img v1.Image
	switch {
	case pick.MediaType.IsImage():
		img, err = idx.Image(pick.Digest)
	case pick.MediaType.IsIndex():
		var child v1.ImageIndex
		if child, err = idx.ImageIndex(pick.Digest); err == nil {
			img, err = pickImage(child, 1)
		}
	default:
		err = fmt.Errorf("manifest %s: %w %q", pick.Digest, store.ErrMediaType, pick.MediaType)
	}
	if err != nil {
		return nil, store.OCIRef{}, fmt.Errorf("%s: %w", dir, err)
	}
	return img, sref, nil
}

// registryTransport is the HTTP transport for registries: the configured CA
// bundle or --insecure-options=tls, and plain http only to loopback
// registries (go-containerregistry falls back to http for them) or with
// --insecure-options=http.
func (c *Config) registryTransport() (http.RoundTripper, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	ca, err := c.caBundle()
	if err != nil {
		return nil, err
	}
	switch {
	case c.Insecure.TLS:
		tlsConf.InsecureSkipVerify = true
	case len(ca) > 0:
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(ca) {
			return nil, errors.New("ca bundle: no PEM certificate found")
		}
		tlsConf.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	return &httpGuard{base: tr, allowHTTP: c.Insecure.HTTP}, nil
}

type httpGuard struct {
	base      http.RoundTripper
	allowHTTP bool
}

func (g *httpGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.allowHTTP && !isLoopback(req.URL.Hostname()) {
		return nil, fmt.Errorf("%s: plain http to a registry not on this host refused (use --insecure-options=http)", req.URL.Redacted())
	}
	return g.base.RoundTrip(req)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
