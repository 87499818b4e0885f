package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/rkt-ng/rkt/manifests"
	"github.com/rkt-ng/rkt/stage0/store"
)

// ErrUnsigned means an image has no signature to check and the user did not
// pass --insecure-options=image.
var ErrUnsigned = errors.New("image is not signed")

// FetchOptions control how one image is found and checked.
type FetchOptions struct {
	// Signature is an explicit signature file (--signature).
	Signature string
	// PullPolicy is "new", "update" or "never" (rkt's --pull-policy).
	PullPolicy string
	// NoVerify skips the signature check (--insecure-options=image, or a
	// default stage1 shipped beside the binary).
	NoVerify bool
}

// isPath reports whether ref names a local file, as rkt decides: file://,
// an absolute or relative path, or a bare name of an existing .aci file.
func isPath(ref string) (string, bool) {
	if p, ok := strings.CutPrefix(ref, "file://"); ok {
		return p, true
	}
	if strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, "./") || strings.HasPrefix(ref, "../") {
		return ref, true
	}
	if strings.HasSuffix(ref, ".aci") {
		if _, err := os.Stat(ref); err == nil {
			return ref, true
		}
	}
	return "", false
}

// Fetch makes the image named by ref available in the store and
// returns its ID. ref is an https:// (or, with insecure http, http://) URL,
// a file path or file:// URL, an image ID (prefix),
// an OCI reference (docker://REGISTRY/REPO[:TAG|@DIGEST], oci:DIR[:TAG]),
// or an appc name with optional version and labels, found in the store or
// through meta discovery as the pull policy says.
func (c *Config) Fetch(ctx context.Context, s *store.Store, ref string, o FetchOptions) (string, error) {
	if isURL(ref) {
		return c.fetchURL(ctx, s, ref, o)
	}
	if path, ok := isPath(ref); ok {
		return c.fetchFile(ctx, s, path, o)
	}
	if isOCIRef(ref) {
		return c.fetchOCI(ctx, s, ref, o)
	}
	if strings.HasPrefix(ref, "sha512-") || o.PullPolicy != "update" {
		img, err := s.Resolve(ref)
		if err == nil {
			return img.ID, nil
		}
		if strings.HasPrefix(ref, "sha512-") || o.PullPolicy == "never" || !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
	}
	return c.fetchRemote(ctx, s, ref, o)
}

// fetchRemote fetches an appc image by name through meta discovery.
func (c *Config) fetchRemote(ctx context.Context, s *store.Store, ref string, o FetchOptions) (string, error) {
	if _, _, err := store.ParseRef(ref); err != nil {
		return "", err
	}
	return c.fetchAppc(ctx, s, ref, o, 0)
}

// afterVerifyHook, when set by a test, runs after a local image's signature
// verified and before its import: the moment a writer racing the fetch
// would change the file.
var afterVerifyHook func(path string)

// fetchFile verifies a local ACI against the trust store (unless told not
// to) and imports it. The file is read once, into a private copy in the
// store's tmp dir; the signature is checked against that copy and the copy is
// what is imported, so a writer changing the file meanwhile cannot get
// unsigned bytes stored. Nothing enters the store before the signature
// checks.
func (c *Config) fetchFile(ctx context.Context, s *store.Store, path string, o FetchOptions) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", path, err)
	}
	defer f.Close()
	src := f
	if c.verifying(o) {
		priv, err := privateCopy(ctx, f, filepath.Join(s.Dir(), "tmp"))
		if err != nil {
			return "", fmt.Errorf("image %s: %w", path, err)
		}
		defer priv.Close()
		if err := c.verifyFile(priv, path, o.Signature); err != nil {
			return "", err
		}
		if afterVerifyHook != nil {
			afterVerifyHook(path)
		}
		if _, err := priv.Seek(0, io.SeekStart); err != nil {
			return "", err
		}
		src = priv
	}
	im, err := manifests.ReadACIManifest(src)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", path, err)
	}
	if err := CheckOSArch(im); err != nil {
		return "", fmt.Errorf("image %s (%s): %w", path, im.Name, err)
	}
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	img, err := s.ImportACI(ctx, src)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", path, err)
	}
	return img.ID, nil
}

// privateCopy copies f into a new file in dir (mode 0600, unlinked at once,
// so never reopened by name and never left behind by a killed rkt) and
// returns it open, at its start.
func privateCopy(ctx context.Context, f *os.File, dir string) (_ *os.File, err error) {
	tmp, err := unlinkedTemp(dir, "local-*.aci")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
		}
	}()
	if _, err := io.Copy(tmp, ctxReader{ctx, f}); err != nil {
		return nil, fmt.Errorf("copy: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return tmp, nil
}

// verifyFile checks the detached signature of an ACI file against the
// keyring of the name in its manifest.
func (c *Config) verifyFile(f *os.File, path, sigPath string) error {
	im, err := manifests.ReadACIManifest(f)
	if err != nil {
		return fmt.Errorf("image %s: %w", path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if sigPath == "" {
		sigPath = path + ".asc"
	}
	sig, err := os.Open(sigPath)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("image %s (%s): %w: no signature at %s (use --insecure-options=image to run unsigned images)", path, im.Name, ErrUnsigned, sigPath)
	}
	if err != nil {
		return err
	}
	defer sig.Close()
	signer, err := c.Keystore().Verify(string(im.Name), f, sig)
	if err != nil {
		return fmt.Errorf("image %s (%s): %w", filepath.Base(path), im.Name, err)
	}
	c.logger().Info("signature verified", "image", string(im.Name), "signer", signerName(signer))
	return nil
}

func signerName(e *openpgp.Entity) string {
	if id := e.PrimaryIdentity(); id != nil {
		return id.Name
	}
	return fmt.Sprintf("%X", e.PrimaryKey.Fingerprint)
}

// unlinkedTemp creates a temporary file in dir and removes its name at
// once: only the open file is used, and a SIGKILL between create and
// remove is the one moment that can leave it (then collected by no one, as
// before; the window is two system calls wide).
func unlinkedTemp(dir, pattern string) (*os.File, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
