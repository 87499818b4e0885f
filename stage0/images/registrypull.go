package images

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/rkt-ng/rkt/stage0/store"
)

// RegistryPull asks for one registry image under the name the caller uses
// for it, from the registry itself or from mirrors of it (a CRI server
// whose node pulls through a local registry).
type RegistryPull struct {
	// Ref is the image as asked: [REGISTRY/]REPO[:TAG|@DIGEST], with
	// docker's defaults for what is left out (docker.io, library/, latest).
	Ref string
	// Mirrors are endpoints tried in order before the registry itself:
	// "http://HOST[:PORT]" (a plain-http registry, allowed because the
	// configuration names it so) or "https://HOST[:PORT]". The repository
	// path and the tag or digest stay those of Ref.
	Mirrors []string
	// Auth, when not nil, is sent to the registry and to every mirror
	// (unless Auth.ServerAddress names another host); without it the
	// registry's auth.d credentials are used, as for rkt fetch.
	Auth *RegistryAuth
}

// RegistryAuth is a registry credential given with a request.
type RegistryAuth struct {
	Username, Password string
	// Auth is base64("user:password"), docker's config.json form; used
	// when Username is empty.
	Auth string
	// IdentityToken and RegistryToken are OAuth tokens.
	IdentityToken, RegistryToken string
	// ServerAddress, when set, limits the credential to that host.
	ServerAddress string
}

// Pulled is the result of a RegistryPull.
type Pulled struct {
	// ID is the store's image ID.
	ID string
	// Repo is REGISTRY/REPO as asked, normalized ("docker.io/library/x").
	Repo string
	// Tag is the tag asked for or implied ("latest"); "" for a digest.
	Tag string
	// Digest is the digest the reference resolved to (the tag's manifest
	// or index, or the digest asked for).
	Digest string
	// ConfigDigest is the digest of the image's config blob: the same
	// for the same image whatever its name or registry.
	ConfigDigest string
	// From is the endpoint that served it ("127.0.0.1:5000", "gcr.io").
	From string
}

// ParseRegistryRef normalizes a registry reference as docker does and
// returns REGISTRY/REPO, the tag (or "") and the digest (or "").
// Docker Hub is spelled docker.io.
func ParseRegistryRef(s string) (repo, tag, digest string, err error) {
	if s == "" || strings.Contains(s, "://") {
		return "", "", "", fmt.Errorf("image reference %q: want [REGISTRY/]REPO[:TAG|@DIGEST]", s)
	}
	ref, err := name.ParseReference(s, name.WithDefaultRegistry(name.DefaultRegistry))
	if err != nil {
		return "", "", "", fmt.Errorf("image reference %q: %w", s, err)
	}
	repo = repoName(ref.Context())
	switch r := ref.(type) {
	case name.Tag:
		tag = r.TagStr()
	case name.Digest:
		digest = r.DigestStr()
	}
	return repo, tag, digest, nil
}

// repoName is REGISTRY/REPO with Docker Hub as docker.io, as the
// kubelet and containerd spell it.
func repoName(r name.Repository) string {
	reg := r.RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return reg + "/" + r.RepositoryStr()
}

// PullRegistry fetches p.Ref into s, from the first of p.Mirrors that has
// it, else from its registry. The stored image is named after p.Ref, never
// after the mirror. It needs no signature: OCI images have none, and the
// caller (a CRI server) pulls as the kubelet asks.
func (c *Config) PullRegistry(ctx context.Context, s *store.Store, p RegistryPull) (Pulled, error) {
	repo, tag, digest, err := ParseRegistryRef(p.Ref)
	if err != nil {
		return Pulled{}, err
	}
	asked, err := name.ParseReference(p.Ref, name.WithDefaultRegistry(name.DefaultRegistry))
	if err != nil {
		return Pulled{}, fmt.Errorf("image reference %q: %w", p.Ref, err)
	}
	type endpoint struct {
		host      string
		prefix    string // path prefix of the mirror's repositories
		plainHTTP bool
	}
	var eps []endpoint
	for _, m := range p.Mirrors {
		u, err := url.Parse(m)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil {
			return Pulled{}, fmt.Errorf("registry mirror %q: want http://HOST[:PORT][/PATH] or https://HOST[:PORT][/PATH]", m)
		}
		eps = append(eps, endpoint{host: u.Host, prefix: strings.Trim(u.Path, "/"), plainHTTP: u.Scheme == "http"})
	}
	eps = append(eps, endpoint{host: asked.Context().RegistryStr()})

	var errs []error
	for _, ep := range eps {
		if err := ctx.Err(); err != nil {
			return Pulled{}, err
		}
		repoPath := asked.Context().RepositoryStr()
		if ep.prefix != "" {
			repoPath = ep.prefix + "/" + repoPath
		}
		var nopts []name.Option
		if ep.plainHTTP {
			nopts = append(nopts, name.Insecure)
		}
		reg, err := name.NewRegistry(ep.host, nopts...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ep.host, err))
			continue
		}
		var ref name.Reference
		if digest != "" {
			ref = reg.Repo(repoPath).Digest(digest)
		} else {
			ref = reg.Repo(repoPath).Tag(tag)
		}
		ropts, err := c.registryOptions(ctx, ep.host)
		if err != nil {
			return Pulled{}, err
		}
		if ep.plainHTTP {
			rt, err := c.registryTransport()
			if err != nil {
				return Pulled{}, err
			}
			rt.(*httpGuard).allowHTTP = true
			ropts = append(ropts, remote.WithTransport(rt))
		}
		if a := p.Auth; a != nil && (a.ServerAddress == "" || sameHost(a.ServerAddress, ep.host) || sameHost(a.ServerAddress, asked.Context().RegistryStr())) {
			ac, err := a.authConfig()
			if err != nil {
				return Pulled{}, err
			}
			ropts = append(ropts, remote.WithAuth(authn.FromConfig(ac)))
		}
		img, top, err := resolveRemote(ref, ropts)
		if err != nil {
			c.logger().Debug("registry endpoint failed", "image", p.Ref, "endpoint", ep.host, "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", ep.host, err))
			continue
		}
		cfgDigest, err := img.ConfigName()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: config: %w", ep.host, err))
			continue
		}
		sref := store.OCIRef{Version: tag, Original: dockerScheme + p.Ref}
		if sref.Name, err = store.OCIName(repo); err != nil {
			return Pulled{}, err
		}
		bar := c.newProgress(p.Ref)
		row, err := s.ImportOCI(ctx, img, sref, store.OCIOptions{Progress: bar.add, Total: bar.setTotal})
		bar.finish()
		if err != nil {
			if ctx.Err() != nil {
				return Pulled{}, ctx.Err()
			}
			errs = append(errs, fmt.Errorf("%s: %w", ep.host, err))
			continue
		}
		return Pulled{ID: row.ID, Repo: repo, Tag: tag, Digest: top.String(), ConfigDigest: cfgDigest.String(), From: ep.host}, nil
	}
	return Pulled{}, fmt.Errorf("image %s: %w", p.Ref, multiError(errs))
}

// resolveRemote gets ref and picks this platform's image when it names an
// index; top is the digest ref resolved to.
func resolveRemote(ref name.Reference, ropts []remote.Option) (img v1.Image, top v1.Hash, err error) {
	desc, err := remote.Get(ref, append(ropts, remote.WithPlatform(hostPlatform()))...)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	switch {
	case desc.MediaType.IsImage():
		img, err = desc.Image()
	case desc.MediaType.IsIndex():
		var idx v1.ImageIndex
		if idx, err = desc.ImageIndex(); err == nil {
			img, err = pickImage(idx, 0)
		}
	default:
		err = fmt.Errorf("manifest %s: %w %q", desc.Digest, store.ErrMediaType, desc.MediaType)
	}
	return img, desc.Digest, err
}

func sameHost(addr, host string) bool {
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		addr = u.Host
	}
	addr = strings.TrimSuffix(addr, "/")
	if addr == "docker.io" || addr == "registry-1.docker.io" {
		addr = name.DefaultRegistry
	}
	return addr == host
}

func (a *RegistryAuth) authConfig() (authn.AuthConfig, error) {
	ac := authn.AuthConfig{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
	if ac.Username == "" && a.Auth != "" {
		b, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return ac, errors.New("registry auth: not base64")
		}
		u, pw, ok := strings.Cut(string(b), ":")
		if !ok {
			return ac, errors.New("registry auth: want base64 of user:password")
		}
		ac.Username, ac.Password = u, pw
	}
	return ac, nil
}
