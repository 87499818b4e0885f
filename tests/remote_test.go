package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// appcArch is the appc name of the running architecture.
func appcArch() string {
	switch runtime.GOARCH {
	case "arm64":
		return "aarch64"
	case "386":
		return "i386"
	}
	return runtime.GOARCH
}

// remoteSetup starts an image server trusted by a fresh rkt context and
// serves a signed inspect image name:version from it.
type remoteSetup struct {
	c    *testutil.Ctx
	srv  *testutil.ImageServer
	key  *testutil.KeyPair
	name string
}

func newRemote(t *testing.T) *remoteSetup {
	t.Helper()
	testutil.RequireRoot(t)
	srv := testutil.NewImageServer(t)
	c := testutil.NewCtx(t)
	srv.Trust(t, c)
	return &remoteSetup{c: c, srv: srv, key: testutil.NewKeyPair(t, "Remote Signer", "remote@example.com"), name: srv.Host + "/app"}
}

// serve builds, signs and serves an image of r.name with the version label.
func (r *remoteSetup) serve(t *testing.T, version string, f testutil.ServedFile, opts ...testutil.ACIOption) (aciPath, urlPath string) {
	t.Helper()
	aci := inspectACI(t, r.name, append([]testutil.ACIOption{testutil.WithLabel("version", version)}, opts...)...)
	sig := r.key.SignFile(t, aci)
	return aci, r.srv.AddImage(t, r.name, version, appcArch(), aci, sig, f)
}

func (r *remoteSetup) trust(t *testing.T) {
	t.Helper()
	r.c.MustRun(t, "trust", "--prefix="+r.srv.Host, "--skip-fingerprint-review", r.key.WritePublicKey(t))
}

func imageRows(t *testing.T, c *testutil.Ctx) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(c.DataDir, "cas", "images", "*.json"))
	return m
}

func TestRemoteFetchByName(t *testing.T) {
	r := newRemote(t)
	r.trust(t)
	aci, p := r.serve(t, "1.0", testutil.ServedFile{MaxAge: time.Hour})
	res := r.c.MustRun(t, "fetch", r.name+":1.0")
	id := strings.TrimSpace(res.Stdout)
	if want := testutil.ImageID(t, aci); id != want {
		t.Fatalf("fetch printed %q, want %s", id, want)
	}
	// The signature was asked for before the image.
	log := r.srv.Log()
	if si, ai := slices.Index(log, "GET "+p+".asc"), slices.Index(log, "GET "+p); si < 0 || ai < 0 || si > ai {
		t.Errorf("signature not fetched before the image: %v", log)
	}
	// Inside max-age: no request at all, same image.
	before := r.srv.Count("")
	res = r.c.MustRun(t, "fetch", r.name+":1.0")
	if got := strings.TrimSpace(res.Stdout); got != id {
		t.Errorf("second fetch printed %q, want %s", got, id)
	}
	if n := r.srv.Count("") - before; n != 0 {
		t.Errorf("fetch inside max-age made %d requests: %v", n, r.srv.Log()[before:])
	}
	// The label syntax names the same image; run uses the store first.
	wantExit(t, r.c.Run(t, "run", "--net=host", r.name+",version=1.0", "--", "--exit-code=5"), 5)
	if n := r.srv.Count("") - before; n != 0 {
		t.Errorf("run of a stored image made %d requests", n)
	}
	// A non-terminal stderr gets no progress bar.
	if strings.Contains(res.Stderr, "\r") || strings.Contains(res.Stderr, "ETA") {
		t.Errorf("progress output on a non-terminal: %q", res.Stderr)
	}
}

func TestRemoteRevalidate(t *testing.T) {
	r := newRemote(t)
	r.trust(t)
	_, p := r.serve(t, "2.0", testutil.ServedFile{}) // no max-age: revalidate every time
	id := strings.TrimSpace(r.c.MustRun(t, "fetch", r.name+":2.0").Stdout)
	res := r.c.MustRun(t, "fetch", r.name+":2.0")
	if got := strings.TrimSpace(res.Stdout); got != id {
		t.Errorf("refetch printed %q, want %s", got, id)
	}
	if !slices.Contains(r.srv.Log(), "GET "+p+" If-None-Match") {
		t.Errorf("no conditional request for the image: %v", r.srv.Log())
	}
	if n := len(imageRows(t, r.c)); n != 1 {
		t.Errorf("%d images in the store, want 1", n)
	}
	// --pull-policy=never makes no request for a stored image.
	before := r.srv.Count("")
	r.c.MustRun(t, "fetch", "--pull-policy=never", r.name+":2.0")
	if n := r.srv.Count("") - before; n != 0 {
		t.Errorf("pull policy never made %d requests", n)
	}
	wantExit(t, r.c.Run(t, "fetch", "--pull-policy=never", r.name+":9.9"), 254)
}

func TestRemoteResume(t *testing.T) {
	r := newRemote(t)
	r.trust(t)
	aci, p := r.serve(t, "1.0", testutil.ServedFile{TruncateOnce: true})
	res := r.c.Run(t, "fetch", r.name+":1.0")
	wantExit(t, res, 254)
	oneLineError(t, res, r.name)
	if n := len(imageRows(t, r.c)); n != 0 {
		t.Fatalf("%d images stored after an interrupted download", n)
	}
	res = r.c.MustRun(t, "fetch", r.name+":1.0")
	if got, want := strings.TrimSpace(res.Stdout), testutil.ImageID(t, aci); got != want {
		t.Errorf("fetch printed %q, want %s", got, want)
	}
	resumed := false
	for _, l := range r.srv.Log() {
		if strings.HasPrefix(l, "GET "+p+" Range=bytes=") && !strings.HasSuffix(l, "=bytes=0-") {
			resumed = true
		}
	}
	if !resumed {
		t.Errorf("second fetch did not resume with a Range request: %v", r.srv.Log())
	}
	if ents, _ := os.ReadDir(filepath.Join(r.c.DataDir, "cas", "tmp")); len(ents) != 0 {
		t.Errorf("cas/tmp holds %d files after a complete download", len(ents))
	}
}

func TestRemoteSignatureAccepted(t *testing.T) {
	r := newRemote(t)
	r.trust(t)
	_, p := r.serve(t, "1.0", testutil.ServedFile{})
	r.srv.Update(p+".asc", func(f *testutil.ServedFile) { f.Accepted = 1 })
	r.c.MustRun(t, "fetch", r.name+":1.0")
	var order []string
	for _, l := range r.srv.Log() {
		if strings.HasPrefix(l, "GET "+p) {
			order = append(order, strings.TrimPrefix(l, "GET "+p))
		}
	}
	if want := []string{".asc", "", ".asc"}; !slices.Equal(order, want) {
		t.Errorf("requests %q, want signature (202), image, signature", order)
	}
}

func TestRemoteUntrustedSigner(t *testing.T) {
	r := newRemote(t)
	other := testutil.NewKeyPair(t, "Other", "other@example.com")
	r.c.MustRun(t, "trust", "--prefix="+r.srv.Host, "--skip-fingerprint-review", other.WritePublicKey(t))
	_, p := r.serve(t, "1.0", testutil.ServedFile{})
	res := r.c.Run(t, "fetch", r.name+":1.0")
	wantExit(t, res, 254)
	oneLineError(t, res, r.name, "not trusted")
	if n := r.srv.Count(p); n != 0 {
		t.Errorf("the image was downloaded %d times although its signer is not trusted", n)
	}
	storeEmpty(t, r.c)
}

func TestRemoteNameMismatch(t *testing.T) {
	r := newRemote(t)
	r.trust(t)
	// An image of another name served where r.name:1.0 is expected.
	aci := inspectACI(t, r.srv.Host+"/other", testutil.WithLabel("version", "1.0"))
	sig := r.key.SignFile(t, aci)
	r.srv.AddImage(t, r.name, "1.0", appcArch(), aci, sig, testutil.ServedFile{})
	res := r.c.Run(t, "fetch", r.name+":1.0")
	wantExit(t, res, 254)
	oneLineError(t, res, r.name, "does not match", r.srv.Host+"/other")
	storeEmpty(t, r.c)
	// A label mismatch likewise.
	aci = inspectACI(t, r.name, testutil.WithLabel("version", "3.0"))
	sig = r.key.SignFile(t, aci)
	r.srv.AddImage(t, r.name, "2.0", appcArch(), aci, sig, testutil.ServedFile{})
	res = r.c.Run(t, "fetch", r.name+":2.0")
	wantExit(t, res, 254)
	oneLineError(t, res, "version", "3.0")
	storeEmpty(t, r.c)
}

func TestRemoteAuth(t *testing.T) {
	r := newRemote(t)
	r.trust(t)
	r.srv.SetBasicAuth("user", "s3cret")
	r.serve(t, "1.0", testutil.ServedFile{Auth: true})
	res := r.c.Run(t, "fetch", r.name+":1.0")
	wantExit(t, res, 254)
	oneLineError(t, res, "401")
	r.srv.WriteAuthConfig(t, r.c)
	r.c.MustRun(t, "fetch", r.name+":1.0")
}

func TestRemoteKeys(t *testing.T) {
	r := newRemote(t)
	r.srv.AddKey(r.key.ArmoredPublicKey(t))
	// No terminal and no --skip-fingerprint-review: refused, nothing trusted.
	res := r.c.Run(t, "trust", "--prefix="+r.name)
	wantExit(t, res, 254)
	oneLineError(t, res, "terminal")
	res = r.c.MustRun(t, "trust", "--prefix="+r.name, "--skip-fingerprint-review")
	if !strings.Contains(res.Stderr, strings.ToUpper(r.key.Fingerprint())) || !strings.Contains(res.Stderr, "remote@example.com") {
		t.Errorf("trust did not show the fingerprint and user ID:\n%s", res.Stderr)
	}
	if out := r.c.MustRun(t, "trust", "--list").Stdout; !strings.Contains(out, r.key.Fingerprint()) {
		t.Errorf("trust --list does not show the key:\n%s", out)
	}
	r.serve(t, "1.0", testutil.ServedFile{})
	r.c.MustRun(t, "fetch", r.name+":1.0")

	// Trust on first use.
	c2 := testutil.NewCtx(t)
	r.srv.Trust(t, c2)
	wantExit(t, c2.Run(t, "fetch", r.name+":1.0"), 254)
	res = c2.MustRun(t, "--trust-keys-from-https", "fetch", r.name+":1.0")
	if !strings.Contains(res.Stderr, "Trusting key "+strings.ToUpper(r.key.Fingerprint())) {
		t.Errorf("--trust-keys-from-https did not say what it trusted:\n%s", res.Stderr)
	}
}

func TestRemoteDependencies(t *testing.T) {
	r := newRemote(t)
	r.trust(t)
	base := r.srv.Host + "/base"
	baseACI := testutil.NewACI(t, base, testutil.WithLabel("version", "1"), testutil.WithoutApp(), testutil.WithFile("/from-base", "base", 0o644))
	r.srv.AddImage(t, base, "1", appcArch(), baseACI, r.key.SignFile(t, baseACI), testutil.ServedFile{})
	r.serve(t, "1.0", testutil.ServedFile{}, testutil.WithDependency(base, "", map[string]string{"version": "1"}))
	r.c.MustRun(t, "fetch", r.name+":1.0")
	if n := len(imageRows(t, r.c)); n != 2 {
		t.Fatalf("%d images in the store, want the image and its dependency", n)
	}
	res := r.c.Run(t, "run", "--net=host", r.name+":1.0", "--", "--print-file=/from-base")
	wantExit(t, res, 0)
	if !strings.Contains(res.Stdout, "base") {
		t.Errorf("dependency not rendered: %s", res)
	}
}

func TestRemoteBadDiscovery(t *testing.T) {
	r := newRemote(t)
	r.trust(t)
	for _, tc := range []struct {
		name string
		page func(host string) func(string) (string, bool)
		want []string
	}{
		{"no matching template", func(host string) func(string) (string, bool) {
			return func(string) (string, bool) {
				return fmt.Sprintf(`<meta name="ac-discovery" content="%s/elsewhere https://%s/{name}.{ext}">`, host, host), true
			}
		}, []string{"no matching", "ac-discovery"}},
		{"template with an unknown variable", func(host string) func(string) (string, bool) {
			return func(string) (string, bool) {
				return fmt.Sprintf(`<meta name="ac-discovery" content="%s https://%s/{name}-{channel}.{ext}">`, host, host), true
			}
		}, []string{"no matching"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.srv.SetPage(tc.page(r.srv.Host))
			res := r.c.Run(t, "fetch", r.name+":1.0")
			wantExit(t, res, 254)
			oneLineError(t, res, append([]string{r.name}, tc.want...)...)
			storeEmpty(t, r.c)
		})
	}
}

// TestRemoteTrustOnFirstUseOnly: with a key already trusted for the image's
// prefix, --trust-keys-from-https must not add the discovered key of a new,
// untrusted signer. Trust on first use means first.
func TestRemoteTrustOnFirstUseOnly(t *testing.T) {
	r := newRemote(t)
	r.trust(t) // key A, trusted for the server's prefix
	b := testutil.NewKeyPair(t, "Usurper", "usurper@example.com")
	r.srv.AddKey(b.ArmoredPublicKey(t)) // what discovery announces
	aci := inspectACI(t, r.name, testutil.WithLabel("version", "1.0"))
	p := r.srv.AddImage(t, r.name, "1.0", appcArch(), aci, b.SignFile(t, aci), testutil.ServedFile{})

	res := r.c.Run(t, "--trust-keys-from-https", "fetch", r.name+":1.0")
	wantExit(t, res, 254)
	oneLineError(t, res, r.name, strings.ToUpper(b.Fingerprint()), strings.ToUpper(r.key.Fingerprint()), "first use")
	if strings.Contains(res.Stderr, "Trusting key") {
		t.Errorf("a key was trusted:\n%s", res.Stderr)
	}
	if n := r.srv.Count(p); n != 0 {
		t.Errorf("the image was downloaded %d times although its signer is not trusted", n)
	}
	if out := r.c.MustRun(t, "trust", "--list").Stdout; strings.Contains(out, b.Fingerprint()) {
		t.Errorf("the new signer's key is in the trust store:\n%s", out)
	}
	found := false
	filepath.WalkDir(r.c.LocalConfig, func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.EqualFold(d.Name(), b.Fingerprint()) {
			found = true
		}
		return nil
	})
	if found {
		t.Errorf("a file named by the new signer's fingerprint is under %s", r.c.LocalConfig)
	}
	storeEmpty(t, r.c)
}
