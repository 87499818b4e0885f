package images

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/appc/spec/schema"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"golang.org/x/sync/errgroup"

	"github.com/rkt-ng/rkt/internal/mountinfo"
	"github.com/rkt-ng/rkt/internal/overlay"
	"github.com/rkt-ng/rkt/manifests"
	"github.com/rkt-ng/rkt/stage0/store"
)

// ExportOCI writes an image of the store as an OCI image layout in dir
// (oci-layout, index.json, blobs/sha256/): one layer holding the image's
// root filesystem with its dependencies, and a config mapped from its appc
// manifest (ConfigFromManifest). The index tags it with the image's version
// label, or "latest". dir appears complete or not at all.
func (c *Config) ExportOCI(ctx context.Context, ref, dir string, overwrite bool) error {
	s, img, im, err := c.storedImage(ref)
	if err != nil {
		return err
	}
	var dropped []string
	err = writeImageDir(dir, nil, ExtractOptions{RootfsOnly: true, Overwrite: overwrite}, func(tmp string) error {
		scratch, err := os.MkdirTemp(tmp, ".scratch-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(scratch)
		oimg, d, err := c.ociImage(ctx, s, img, im, scratch)
		if err != nil {
			return err
		}
		dropped = d
		cf, err := oimg.ConfigFile()
		if err != nil {
			return err
		}
		p, err := layout.Write(tmp, empty.Index)
		if err != nil {
			return err
		}
		err = p.AppendImage(oimg,
			layout.WithAnnotations(map[string]string{refNameAnnotation: ociTag(im)}),
			layout.WithPlatform(v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}))
		if err != nil {
			return err
		}
		return readableLayout(tmp)
	})
	if err != nil {
		return fmt.Errorf("image export %s: %w", ref, err)
	}
	c.warnDropped(img.ID, dropped)
	return nil
}

// readableLayout gives a layout the modes of an exported ACI (0644 files,
// 0755 directories), as readable as `rkt image export` makes an ACI; the
// staging directory and large blobs come out 0700 and 0600.
func readableLayout(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir():
			return os.Chmod(p, 0o755)
		case d.Type().IsRegular():
			return os.Chmod(p, 0o644)
		}
		return nil
	})
}

// Push uploads an image of the store to a registry as dest,
// docker://REGISTRY/REPO[:TAG] (TAG defaults to latest), as ExportOCI would
// lay it out, with the auth.d credentials and transport of fetch. The tag
// is written last, after every blob: a refused or broken push leaves no tag.
// It returns the pushed manifest's digest.
func (c *Config) Push(ctx context.Context, ref, dest string) (string, error) {
	rest, ok := strings.CutPrefix(dest, dockerScheme)
	if !ok {
		return "", fmt.Errorf("push destination %q: want docker://REGISTRY/REPO[:TAG]", dest)
	}
	var nopts []name.Option
	if c.Insecure.HTTP {
		nopts = append(nopts, name.Insecure)
	}
	tag, err := name.NewTag(rest, nopts...)
	if err != nil {
		return "", fmt.Errorf("push destination %q: %w", dest, err)
	}
	s, img, im, err := c.storedImage(ref)
	if err != nil {
		return "", err
	}
	scratch, err := os.MkdirTemp("", "rkt-push-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(scratch)
	oimg, dropped, err := c.ociImage(ctx, s, img, im, scratch)
	if err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	ropts, err := c.registryOptions(ctx, tag.RegistryStr())
	if err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	if err := remote.Write(tag, oimg, ropts...); err != nil {
		return "", fmt.Errorf("push %s to %s: %w", ref, dest, &flatError{err})
	}
	d, err := oimg.Digest()
	if err != nil {
		return "", err
	}
	c.warnDropped(img.ID, dropped)
	return d.String(), nil
}

// warnDropped tells, once the image is out, what of its manifest the OCI
// config could not carry.
func (c *Config) warnDropped(id string, dropped []string) {
	if len(dropped) > 0 {
		c.logger().Warn("the OCI config cannot carry all of the image's manifest; left out", "image", id, "dropped", strings.Join(dropped, "; "))
	}
}

// flatError puts a registry's answer, which may span lines, on one line.
type flatError struct{ err error }

func (e *flatError) Error() string { return strings.Join(strings.Fields(e.err.Error()), " ") }
func (e *flatError) Unwrap() error { return e.err }

// ociTag is the tag an exported image gets in its layout's index.
func ociTag(im *schema.ImageManifest) string {
	if v, ok := im.Labels.Get("version"); ok {
		if _, err := name.NewTag("x:" + v); err == nil {
			return v
		}
	}
	return "latest"
}

// ociImage builds the OCI image of a stored image: its layer is written to
// scratch/layer.tar.gz, which must stay until the image is written out. It
// also returns what of the manifest the config leaves out.
func (c *Config) ociImage(ctx context.Context, s *store.Store, img store.Image, im *schema.ImageManifest, scratch string) (v1.Image, []string, error) {
	cf, dropped, err := ConfigFromManifest(im)
	if err != nil {
		return nil, nil, err
	}
	lp := filepath.Join(scratch, "layer.tar.gz")
	f, err := os.OpenFile(lp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, nil, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	gz := gzip.NewWriter(bw)
	err = c.writeLayer(ctx, s, img, im, scratch, gz)
	if err == nil {
		err = gz.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, nil, fmt.Errorf("layer: %w", err)
	}
	layer, err := tarball.LayerFromFile(lp, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, nil, fmt.Errorf("layer: %w", err)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	if base, err = mutate.ConfigFile(base, cf); err != nil {
		return nil, nil, err
	}
	out, err := mutate.Append(base, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: cf.Created, CreatedBy: "rkt image export " + im.Name.String()},
	})
	return out, dropped, err
}

// writeLayer writes the image's root filesystem as an uncompressed layer
// tar: an ACI without dependencies straight from its stored blob, anything
// else (dependencies, OCI layers) from its rendered tree.
func (c *Config) writeLayer(ctx context.Context, s *store.Store, img store.Image, im *schema.ImageManifest, scratch string, w io.Writer) error {
	if img.Kind != store.KindOCI && len(im.Dependencies) == 0 {
		blob, err := s.OpenBlob(img.ID)
		if err != nil {
			return err
		}
		defer blob.Close()
		return aciToLayer(ctxReader{ctx, blob}, w)
	}
	tree, hold, err := s.Acquire(ctx, img.ID)
	if err != nil {
		return err
	}
	defer hold.Release()
	src := tree.Rootfs
	if len(tree.Layers) > 0 {
		// The layers hold overlayfs whiteouts: read their merged view.
		mp := filepath.Join(scratch, "rootfs")
		if err := os.Mkdir(mp, 0o700); err != nil {
			return err
		}
		defer os.Remove(mp)
		if err := overlay.MountReadOnly(mp, tree.Lowers()); err != nil {
			return err
		}
		defer mountinfo.UnmountAll(mp)
		src = mp
	}
	// WriteACI archives a tree safely (never following its symlinks);
	// aciToLayer turns its output into a layer.
	pr, pw := io.Pipe()
	var g errgroup.Group
	g.Go(func() error {
		err := manifests.WriteACI(pw, im, src, manifests.BuildOptions{})
		pw.CloseWithError(err)
		return err
	})
	err = aciToLayer(ctxReader{ctx, pr}, w)
	pr.CloseWithError(errors.New("layer writer stopped"))
	if gerr := g.Wait(); err == nil {
		err = gerr
	}
	return err
}

// aciToLayer copies the rootfs/ entries of an uncompressed ACI to a layer
// tar, without the prefix; the manifest and the rootfs directory itself
// are left out. Names and hard-link targets must stay inside the rootfs.
func aciToLayer(r io.Reader, w io.Writer) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		rel, ok := layerName(h.Name)
		if !ok {
			continue
		}
		if rel == "" {
			return fmt.Errorf("entry %q: outside rootfs/", h.Name)
		}
		if h.Typeflag == tar.TypeDir {
			rel += "/"
		}
		h.Name = rel
		if h.Typeflag == tar.TypeLink {
			target, ok := layerName(h.Linkname)
			if !ok || target == "" {
				return fmt.Errorf("entry %q: hard link to %q outside rootfs/", h.Name, h.Linkname)
			}
			h.Linkname = target
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	return tw.Close()
}

// layerName maps an ACI entry name to its name in a layer: ok is false for
// entries outside rootfs/ and for rootfs/ itself; rel is "" when the name
// escapes rootfs/.
func layerName(aciName string) (rel string, ok bool) {
	p := strings.TrimPrefix(aciName, "./")
	p, ok = strings.CutPrefix(p, "rootfs/")
	if !ok {
		return "", false
	}
	if strings.Trim(p, "/") == "" || strings.Trim(p, "/") == "." {
		return "", false
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", true
		}
	}
	return path.Clean(strings.TrimPrefix(p, "/")), true
}
