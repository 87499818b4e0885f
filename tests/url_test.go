package tests

import (
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// urlSetup serves a signed inspect image at https://HOST/dl/app.aci with
// its signature at URL.asc, from a TLS server on a 127/8 address whose CA
// the rkt context trusts.
type urlSetup struct {
	*remoteSetup
	aci, path, url string
}

func newURLSetup(t *testing.T, f testutil.ServedFile, opts ...testutil.ACIOption) *urlSetup {
	t.Helper()
	r := newRemote(t)
	aci := inspectACI(t, r.name, opts...)
	body, err := os.ReadFile(aci)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := os.ReadFile(r.key.SignFile(t, aci))
	if err != nil {
		t.Fatal(err)
	}
	const p = "/dl/app.aci"
	f.Body = body
	r.srv.Add(p, f)
	r.srv.Add(p+".asc", testutil.ServedFile{Body: sig, Auth: f.Auth})
	return &urlSetup{remoteSetup: r, aci: aci, path: p, url: "https://" + r.srv.Host + p}
}

// rkt 1.30: `rkt fetch https://HOST/PATH/image.aci` downloads the image
// from the URL and its signature from URL.asc, checks the signer against the
// keys trusted for the name in the image's manifest, and prints the image
// ID; a URL is never taken for an appc name (no discovery request). Inside
// the image's Cache-Control max-age a second fetch asks nothing of the
// network; `rkt run` and `rkt prepare` take the same URL.
func TestURLFetch(t *testing.T) {
	u := newURLSetup(t, testutil.ServedFile{MaxAge: time.Hour})
	u.trust(t)
	res := u.c.MustRun(t, "fetch", "--full", u.url)
	id := strings.TrimSpace(res.Stdout)
	if want := testutil.ImageID(t, u.aci); id != want {
		t.Fatalf("fetch printed %q, want %s", id, want)
	}
	log := u.srv.Log()
	if si, ai := slices.Index(log, "GET "+u.path+".asc"), slices.Index(log, "GET "+u.path); si < 0 || ai < 0 || si > ai {
		t.Errorf("signature not fetched before the image: %v", log)
	}
	for _, l := range log {
		if strings.Contains(l, "ac-discovery") || !strings.HasPrefix(l, "GET "+u.path) {
			t.Errorf("unexpected request %q: a URL is not discovered", l)
		}
	}
	before := u.srv.Count("")
	if got := strings.TrimSpace(u.c.MustRun(t, "fetch", "--full", u.url).Stdout); got != id {
		t.Errorf("second fetch printed %q, want %s", got, id)
	}
	// run and prepare (pull policy new) use the image fetched from the URL.
	wantExit(t, u.c.Run(t, "run", "--net=host", u.url, "--", "--exit-code=6"), 6)
	uuid := strings.TrimSpace(u.c.MustRun(t, "prepare", "--quiet", u.url).Stdout)
	u.c.MustRun(t, "rm", uuid)
	if n := u.srv.Count("") - before; n != 0 {
		t.Errorf("fetch inside max-age, run and prepare made %d requests: %v", n, u.srv.Log()[before:])
	}
}

// rkt 1.30 revalidated an expired URL image with its ETag and fetched a
// stored URL image under --pull-policy=never without any request.
func TestURLRevalidateAndPullPolicy(t *testing.T) {
	u := newURLSetup(t, testutil.ServedFile{})
	u.trust(t)
	id := strings.TrimSpace(u.c.MustRun(t, "fetch", "--full", u.url).Stdout)
	u.c.MustRun(t, "fetch", u.url)
	if !slices.Contains(u.srv.Log(), "GET "+u.path+" If-None-Match") {
		t.Errorf("no conditional request for the image: %v", u.srv.Log())
	}
	before := u.srv.Count("")
	if got := strings.TrimSpace(u.c.MustRun(t, "fetch", "--full", "--pull-policy=never", u.url).Stdout); got != id {
		t.Errorf("--pull-policy=never printed %q, want %s", got, id)
	}
	if n := u.srv.Count("") - before; n != 0 {
		t.Errorf("--pull-policy=never made %d requests", n)
	}
	res := u.c.Run(t, "fetch", "--pull-policy=never", "https://"+u.srv.Host+"/dl/other.aci")
	wantExit(t, res, 254)
	oneLineError(t, res, "other.aci", "never")
}

// rkt 1.30 refused an image URL whose signature is missing or whose signer
// is not trusted, and stored nothing.
func TestURLSignatureRequired(t *testing.T) {
	u := newURLSetup(t, testutil.ServedFile{})
	res := u.c.Run(t, "fetch", u.url) // the key is not trusted
	wantExit(t, res, 254)
	oneLineError(t, res, u.url)
	u.srv.Add(u.path+".asc", testutil.ServedFile{}) // an empty signature
	u.trust(t)
	wantExit(t, u.c.Run(t, "fetch", u.url), 254)
	if n := len(imageRows(t, u.c)); n != 0 {
		t.Errorf("%d images stored without a valid signature", n)
	}
}

// rkt 1.30 fetched http:// URLs only with --insecure-options=http; the
// option may follow the image on the command line.
func TestURLPlainHTTP(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "example.com/plain")
	body, err := os.ReadFile(aci)
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path != "/plain.aci" {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	url := srv.URL + "/plain.aci"
	res := c.Run(t, "--insecure-options=image", "fetch", url)
	wantExit(t, res, 254)
	oneLineError(t, res, url, "--insecure-options=http")
	if n := hits.Load(); n != 0 {
		t.Errorf("%d requests without --insecure-options=http", n)
	}
	res = c.MustRun(t, "fetch", "--full", url, "--insecure-options=http,image")
	if got, want := strings.TrimSpace(res.Stdout), testutil.ImageID(t, aci); got != want {
		t.Errorf("fetch printed %q, want %s", got, want)
	}
}

// rkt 1.30 refused an image whose os/arch labels name another system
// (stage0.ValidOSArch and discovery's host defaults), with exit 254, and
// stored nothing; the stage1 image built here carries the host's arch.
func TestOSArchRefused(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	other := "s390x"
	if appcArch() == "s390x" {
		other = "amd64"
	}
	aci := inspectACI(t, "example.com/otherarch", testutil.WithLabel("arch", other))
	for _, args := range [][]string{{"fetch", aci}, {"run", aci}, {"prepare", aci}} {
		res := c.Run(t, append([]string{"--insecure-options=image"}, args...)...)
		wantExit(t, res, 254)
		oneLineError(t, res, "arch="+other, appcArch())
	}
	aci = inspectACI(t, "example.com/otheros", testutil.WithLabel("os", "freebsd"))
	res := c.Run(t, "--insecure-options=image", "fetch", aci)
	wantExit(t, res, 254)
	oneLineError(t, res, "os=freebsd")
	if n := len(imageRows(t, c)); n != 0 {
		t.Errorf("%d images stored for another platform", n)
	}
	// The host's own labels run.
	wantExit(t, runInsecure(t, c, "--net=host", inspectACI(t, "example.com/hostarch"), "--", "--exit-code=3"), 3)
}

// rkt 1.30 fetched image URLs with the auth.d credentials of their host
// and resumed an interrupted download; rkt-ng applies discovery's rules to
// URLs: basic auth from auth.d, a partial download kept and resumed with
// Range next time, nothing stored from the broken attempt.
func TestURLAuthAndResume(t *testing.T) {
	u := newURLSetup(t, testutil.ServedFile{TruncateOnce: true, Auth: true})
	u.trust(t)
	u.srv.SetBasicAuth("user", "secret")
	res := u.c.Run(t, "fetch", u.url)
	wantExit(t, res, 254) // no credentials yet
	oneLineError(t, res, u.url)
	u.srv.WriteAuthConfig(t, u.c)
	res = u.c.Run(t, "fetch", u.url) // the connection breaks mid-body
	wantExit(t, res, 254)
	if n := len(imageRows(t, u.c)); n != 0 {
		t.Fatalf("%d images stored after an interrupted download", n)
	}
	res = u.c.MustRun(t, "fetch", "--full", u.url)
	if got, want := strings.TrimSpace(res.Stdout), testutil.ImageID(t, u.aci); got != want {
		t.Errorf("fetch printed %q, want %s", got, want)
	}
	resumed := false
	for _, l := range u.srv.Log() {
		if strings.HasPrefix(l, "GET "+u.path+" Range=bytes=") && !strings.HasSuffix(l, "=bytes=0-") {
			resumed = true
		}
	}
	if !resumed {
		t.Errorf("the second download did not resume: %v", u.srv.Log())
	}
}
