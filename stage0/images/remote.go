package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/appc/spec/schema"

	"github.com/rkt-ng/rkt/discovery"
	"github.com/rkt-ng/rkt/internal/atomicfile"
	"github.com/rkt-ng/rkt/internal/flock"
	"github.com/rkt-ng/rkt/manifests"
	"github.com/rkt-ng/rkt/signing"
	"github.com/rkt-ng/rkt/stage0/store"
)

// maxDepDepth bounds the chain of dependencies fetched through discovery.
const maxDepDepth = 16

// sigRetries is how often a signature answered with 202 is asked for again
// after the image was downloaded, as rkt did.
const sigRetries = 5

// ErrNameMismatch means a downloaded image's manifest does not carry the
// name or labels it was asked for.
var ErrNameMismatch = errors.New("image does not match the request")

// ErrSignerChanged means an image is signed by a key that is not trusted
// for its name while another key is, and --trust-keys-from-https refused to
// add the new key: trust on first use trusts only the first key.
var ErrSignerChanged = errors.New("signer changed")

// caBundle reads the PEM certificates of <system-config>/ca.d/*.pem and
// <local-config>/ca.d/*.pem: CAs trusted for https besides the system ones.
func (c *Config) caBundle() ([]byte, error) {
	var out []byte
	for _, dir := range []string{c.SystemConfig, c.LocalConfig} {
		if dir == "" {
			continue
		}
		files, err := filepath.Glob(filepath.Join(dir, "ca.d", "*.pem"))
		if err != nil {
			return nil, err
		}
		slices.Sort(files)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("ca bundle: %w", err)
			}
			out = append(append(out, b...), '\n')
		}
	}
	return out, nil
}

// httpOptions are the discovery options of this configuration: insecure
// options, CA bundle, auth.d credentials.
func (c *Config) httpOptions() (discovery.Options, error) {
	auth, err := discovery.LoadAuth(c.LocalConfig, c.SystemConfig)
	if err != nil {
		return discovery.Options{}, err
	}
	ca, err := c.caBundle()
	if err != nil {
		return discovery.Options{}, err
	}
	return discovery.Options{
		InsecureHTTP: c.Insecure.HTTP,
		InsecureTLS:  c.Insecure.TLS,
		CABundle:     ca,
		Auth:         auth,
		Logger:       c.logger(),
	}, nil
}

// nameRecord remembers which URLs discovery gave for a request, so that a
// fetch inside the image's max-age makes no request at all, not even for the
// discovery page. It lives in cas/remote/names/<sha256 of the request>.json.
type nameRecord struct {
	Request string `json:"request"`
	ACI     string `json:"aci"`
	ASC     string `json:"asc"`
}

func (c *Config) remoteDir() string { return filepath.Join(c.Dir, "cas", "remote") }

func (c *Config) nameRecordPath(request string) string {
	sum := sha256.Sum256([]byte(request))
	return filepath.Join(c.remoteDir(), "names", hex.EncodeToString(sum[:])+".json")
}

func (c *Config) loadNameRecord(request string) (nameRecord, bool) {
	b, err := os.ReadFile(c.nameRecordPath(request))
	if err != nil {
		return nameRecord{}, false
	}
	var nr nameRecord
	if json.Unmarshal(b, &nr) != nil || nr.Request != request {
		return nameRecord{}, false
	}
	return nr, true
}

func (c *Config) saveNameRecord(nr nameRecord) error {
	p := c.nameRecordPath(nr.Request)
	if err := os.MkdirAll(filepath.Dir(p), store.DirMode); err != nil {
		return err
	}
	b, err := json.Marshal(nr)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(p, b, 0o644)
}

// requestKey is a canonical form of an appc request: name and sorted labels.
func requestKey(app discovery.App) string {
	var b strings.Builder
	b.WriteString(app.Name)
	for _, k := range slices.Sorted(maps.Keys(app.Labels)) {
		fmt.Fprintf(&b, ",%s=%s", k, app.Labels[k])
	}
	return b.String()
}

// fetchAppc fetches an appc image by name through meta discovery: the
// signature first (its signer must be trusted before the image is
// downloaded), then the image (resumed, or revalidated with its ETag), then
// the signature check over the downloaded bytes, the name and label check,
// the import, and the image's dependencies.
func (c *Config) fetchAppc(ctx context.Context, s *store.Store, ref string, o FetchOptions, depth int) (string, error) {
	app, err := discovery.ParseApp(ref)
	if err != nil {
		return "", err
	}
	cache, err := discovery.NewFileCache(c.remoteDir())
	if err != nil {
		return "", err
	}
	key := requestKey(app)
	// Inside max-age of the last download nothing is asked of the network.
	if nr, ok := c.loadNameRecord(key); ok {
		if rec, ok := cache.Get(nr.ACI); ok && rec.Fresh(time.Now()) {
			if _, err := s.Get(rec.BlobID); err == nil {
				c.logger().Debug("image fresh in cache", "image", ref, "url", nr.ACI)
				return rec.BlobID, nil
			}
		}
	}
	opts, err := c.httpOptions()
	if err != nil {
		return "", fmt.Errorf("image %s: %w", ref, err)
	}
	ep, err := discovery.Discover(ctx, app, opts)
	if err != nil {
		return "", err
	}
	var errs []error
	for _, e := range ep.ACIEndpoints {
		id, err := c.fetchEndpoint(ctx, s, &app, e, ep.Keys, cache, opts, o)
		if err == nil {
			if err := c.saveNameRecord(nameRecord{Request: key, ACI: e.ACI, ASC: e.ASC}); err != nil {
				c.logger().Debug("cannot save discovery record", "image", ref, "err", err)
			}
			if err := c.fetchDependencies(ctx, s, id, o, depth); err != nil {
				return "", fmt.Errorf("image %s: %w", ref, err)
			}
			return id, nil
		}
		var se *discovery.StatusError
		if !errors.As(err, &se) || se.Status != 404 {
			return "", err
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("image %s: no endpoint has it: %w", ref, multiError(errs))
}

// fetchDependencies makes sure every dependency of image id is in the store,
// fetching missing ones through discovery.
func (c *Config) fetchDependencies(ctx context.Context, s *store.Store, id string, o FetchOptions, depth int) error {
	im, err := s.Manifest(id)
	if err != nil {
		return err
	}
	for _, d := range im.Dependencies {
		if d.ImageID != nil && !d.ImageID.Empty() {
			if _, err := s.Get(d.ImageID.String()); err == nil {
				continue
			}
		}
		if depth+1 > maxDepDepth {
			return fmt.Errorf("dependency %s: more than %d levels of dependencies", d.ImageName, maxDepDepth)
		}
		ref := d.ImageName.String()
		for _, l := range d.Labels {
			ref += "," + l.Name.String() + "=" + l.Value
		}
		do := o
		do.Signature = ""
		if do.PullPolicy == "" || do.PullPolicy == "update" {
			do.PullPolicy = "new"
		}
		if _, err := s.Resolve(ref); err == nil && do.PullPolicy != "update" {
			continue
		}
		depID, err := c.fetchAppc(ctx, s, ref, do, depth+1)
		if err != nil {
			return fmt.Errorf("dependency %s: %w", d.ImageName, err)
		}
		if d.ImageID != nil && !d.ImageID.Empty() && depID != d.ImageID.String() {
			return fmt.Errorf("dependency %s: fetched image %s, want %s", d.ImageName, depID, d.ImageID)
		}
	}
	return nil
}

// verifying reports whether signatures are checked for this fetch.
func (c *Config) verifying(o FetchOptions) bool { return !o.NoVerify && !c.Insecure.Image }

// fetchEndpoint downloads one discovered image and its signature. app is the
// discovery request, or nil for an image fetched by URL: its signer is then
// checked against the name in the downloaded manifest, and there is no request
// for the manifest to match.
func (c *Config) fetchEndpoint(ctx context.Context, s *store.Store, app *discovery.App, e discovery.ACIEndpoint, keys []string, cache *discovery.FileCache, opts discovery.Options, o FetchOptions) (string, error) {
	name := e.ACI
	if app != nil {
		name = app.String()
	}
	plain, err := discovery.NewFetcher(opts)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", name, err)
	}
	tmpDir := filepath.Join(s.Dir(), "tmp")

	// 1. The signature, before any byte of the image: a local file given
	// with --signature, else the endpoint's.
	var sig []byte
	sigLater := false
	if c.verifying(o) {
		if o.Signature != "" {
			sig, err = readSignatureFile(o.Signature)
		} else {
			sig, err = fetchSmall(ctx, plain, e.ASC, tmpDir)
		}
		switch {
		case errors.Is(err, discovery.ErrSignatureNotReady):
			sigLater = true
		case err != nil:
			return "", fmt.Errorf("image %s: signature: %w", name, err)
		case app != nil:
			if err := c.checkSigner(ctx, app.Name, sig, keys, plain); err != nil {
				return "", fmt.Errorf("image %s: %w", name, err)
			}
		}
	}

	// 2. The image, into a partial file kept across runs.
	sum := sha256.Sum256([]byte(e.ACI))
	dlKey := "dl-" + hex.EncodeToString(sum[:16])
	lk, err := flock.Open(filepath.Join(s.Dir(), "locks", dlKey))
	if err != nil {
		return "", err
	}
	defer lk.Close()
	if err := lk.Exclusive(); err != nil {
		return "", fmt.Errorf("image %s: lock download: %w", name, err)
	}
	partPath := filepath.Join(tmpDir, dlKey+".aci")
	part, err := os.OpenFile(partPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", err
	}
	defer part.Close()
	rec, _ := cache.Get(e.ACI)
	if rec.BlobID != "" {
		if _, err := s.Get(rec.BlobID); err != nil {
			rec = discovery.Record{} // the image left the store: download afresh
		}
	}
	bar := c.newProgress(name)
	pOpts := opts
	pOpts.Progress = bar.set
	fetcher, err := discovery.NewFetcher(pOpts)
	if err != nil {
		return "", err
	}
	res, err := fetcher.Fetch(ctx, e.ACI, part, &rec)
	bar.finish()
	if err != nil {
		if rec.ETag != "" {
			cache.Put(e.ACI, rec) // a partial download resumes next time
		}
		return "", fmt.Errorf("image %s: %w", name, err)
	}
	if res.NotModified {
		if _, err := s.Get(rec.BlobID); err == nil {
			cache.Put(e.ACI, rec)
			os.Remove(partPath)
			c.logger().Debug("image not modified", "image", name, "id", rec.BlobID)
			return rec.BlobID, nil
		}
	}
	discard := func() { os.Remove(partPath); cache.Put(e.ACI, discovery.Record{}) }

	// 3. A signature that was not ready is asked for again now.
	if sigLater {
		for i := 0; ; i++ {
			sig, err = fetchSmall(ctx, plain, e.ASC, tmpDir)
			if !errors.Is(err, discovery.ErrSignatureNotReady) || i == sigRetries {
				break
			}
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(time.Duration(i+1) * 200 * time.Millisecond):
			}
		}
		if err != nil {
			return "", fmt.Errorf("image %s: signature: %w", name, err)
		}
		if app != nil {
			if err := c.checkSigner(ctx, app.Name, sig, keys, plain); err != nil {
				discard()
				return "", fmt.Errorf("image %s: %w", name, err)
			}
		}
	}

	// 4. Check the manifest against the request and the host, verify the
	// signature with the keys trusted for the image's name, import.
	if _, err := part.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	im, err := manifests.ReadACIManifest(part)
	if err != nil {
		discard()
		return "", fmt.Errorf("image %s: %w", name, err)
	}
	keyName := string(im.Name)
	if app != nil {
		if err := matchRequest(*app, im); err != nil {
			discard()
			return "", fmt.Errorf("image %s from %s: %w", name, e.ACI, err)
		}
		keyName = app.Name
	}
	if err := CheckOSArch(im); err != nil {
		discard()
		return "", fmt.Errorf("image %s: %w", name, err)
	}
	if c.verifying(o) {
		if _, err := part.Seek(0, io.SeekStart); err != nil {
			return "", err
		}
		signer, err := c.Keystore().Verify(keyName, part, bytes.NewReader(sig))
		if err != nil {
			discard()
			return "", fmt.Errorf("image %s: %w", name, err)
		}
		c.logger().Info("signature verified", "image", keyName, "signer", signerName(signer))
	}
	if _, err := part.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	img, err := s.ImportACI(ctx, part)
	if err != nil {
		discard()
		return "", fmt.Errorf("image %s: %w", name, err)
	}
	rec.BlobID = img.ID
	if err := cache.Put(e.ACI, rec); err != nil {
		c.logger().Debug("cannot save cache record", "url", e.ACI, "err", err)
	}
	os.Remove(partPath)
	return img.ID, nil
}

// fetchSmall downloads a signature (bounded) through a temporary file.
func fetchSmall(ctx context.Context, f *discovery.Fetcher, url, tmpDir string) ([]byte, error) {
	tmp, err := unlinkedTemp(tmpDir, "sig-*")
	if err != nil {
		return nil, err
	}
	defer tmp.Close()
	if _, err := f.Fetch(ctx, url, tmp, nil); err != nil {
		return nil, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(tmp, 1<<20+1))
	if err != nil {
		return nil, err
	}
	if len(b) > 1<<20 {
		return nil, fmt.Errorf("signature %s: larger than 1 MiB", url)
	}
	return b, nil
}

// checkSigner checks that a trusted key made sig; with
// --trust-keys-from-https, an untrusted signer makes it trust the keys
// discovered over https for the image name first, but only on first use:
// when a key is already trusted for the name (through any of its prefixes)
// an untrusted signer is refused, never added.
func (c *Config) checkSigner(ctx context.Context, name string, sig []byte, keys []string, f *discovery.Fetcher) error {
	ks := c.Keystore()
	err := ks.CheckSigner(name, bytes.NewReader(sig))
	if err == nil || !c.TrustKeysFromHTTPS || len(keys) == 0 {
		return err
	}
	var ue *signing.UntrustedSignerError
	if !errors.As(err, &ue) {
		return err
	}
	trusted, perr := ks.PrefixKeys(name)
	if perr != nil {
		return perr
	}
	if len(trusted) > 0 {
		fps := make([]string, len(trusted))
		for i, k := range trusted {
			fps[i] = strings.ToUpper(k.Fingerprint) + " (prefix " + k.Prefix + ")"
		}
		return fmt.Errorf("%w: signer %s is not trusted and %s already trusts %s; --trust-keys-from-https trusts keys only on first use; if the new key is genuine, run: rkt trust --prefix %s",
			ErrSignerChanged, signerIDs(ue), name, strings.Join(fps, ", "), name)
	}
	if terr := c.trustOnFirstUse(ctx, name, keys, f); terr != nil {
		return fmt.Errorf("%w (trusting discovered keys: %w)", err, terr)
	}
	return ks.CheckSigner(name, bytes.NewReader(sig))
}

// signerIDs names the signers of an untrusted signature: their fingerprints
// when the signature carries them, else their key IDs.
func signerIDs(ue *signing.UntrustedSignerError) string {
	var ids []string
	for _, fp := range ue.Fingerprints {
		ids = append(ids, "key "+strings.ToUpper(fp))
	}
	if len(ids) == 0 {
		for _, id := range ue.KeyIDs {
			ids = append(ids, fmt.Sprintf("key ID %016X", id))
		}
	}
	return strings.Join(ids, ", ")
}

// matchRequest checks spec/discovery.md's last rule: the fetched manifest's
// name and labels must be those asked for. os and arch, when the image has
// them, must be the requested ones or the running system's.
func matchRequest(app discovery.App, im *schema.ImageManifest) error {
	if im.Name.String() != app.Name {
		return fmt.Errorf("%w: its manifest names %s", ErrNameMismatch, im.Name)
	}
	want := maps.Clone(app.Labels)
	if want == nil {
		want = map[string]string{}
	}
	if _, ok := want["os"]; !ok {
		if _, has := im.Labels.Get("os"); has {
			want["os"] = runtime.GOOS
		}
	}
	if _, ok := want["arch"]; !ok {
		if _, has := im.Labels.Get("arch"); has {
			want["arch"] = discovery.AppcArch(runtime.GOARCH)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		got, ok := im.Labels.Get(k)
		if !ok {
			return fmt.Errorf("%w: label %s=%s asked for, the image has none", ErrNameMismatch, k, want[k])
		}
		if got != want[k] {
			return fmt.Errorf("%w: label %s is %q, want %q", ErrNameMismatch, k, got, want[k])
		}
	}
	return nil
}

// multiError joins errors on one line ("a; b"), as user errors must be.
type multiError []error

func (m multiError) Error() string {
	msgs := make([]string, len(m))
	for i, e := range m {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

func (m multiError) Unwrap() []error { return m }
