package mds

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rkt-ng/rkt/stage1"
)

const (
	uuidA  = "6733c088-a507-4694-aabf-edbe4fc5266f"
	uuidB  = "0f3a3b8e-1f5c-4d7b-9c3e-2a1b4c5d6e7f"
	tokenA = "tokenAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	tokenB = "tokenBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
)

var (
	idWeb   = "sha512-" + strings.Repeat("ab", 64)
	idSide  = "sha512-" + strings.Repeat("cd", 64)
	testKey = bytes.Repeat([]byte{0x5a}, KeySize)
)

// The manifests are indented unlike Go's encoder would, so that a re-encoded
// answer would not match the stored bytes.
const webManifest = `{
    "acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/web",
    "app": {"exec": ["/web"], "user": "0", "group": "0"},
    "annotations": [
        {"name": "created", "value": "2014-10-27T19:32:27.67021798Z"},
        {"name": "lorem", "value": "ipsum"},
        {"name": "homepage", "value": "https://example.com"}
    ]
}`

const sideManifest = `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/side",
  "app":{"exec":["/side"],"user":"0","group":"0",
    "isolators":[{"name":"example.com/unknown-isolator","value":{"x":1}}]}}`

func podManifest(podAnnotations string) string {
	return `{
  "acVersion": "0.8.11", "acKind": "PodManifest",
  "apps": [
    {"name": "web", "image": {"name": "example.com/web", "id": "` + idWeb + `"},
     "annotations": [{"name": "lorem", "value": "from-pod"}, {"name": "extra", "value": "x"}]},
    {"name": "side", "image": {"id": "` + idSide + `"}}
  ],
  "volumes": [], "isolators": [], "ports": [],
  "annotations": ` + podAnnotations + `
}`
}

func testPod(uuid, podAnnotations string) *Pod {
	return &Pod{
		UUID:     uuid,
		Manifest: []byte(podManifest(podAnnotations)),
		Apps: map[string]App{
			"web":  {ImageManifest: []byte(webManifest), ImageID: idWeb},
			"side": {ImageManifest: []byte(sideManifest)},
		},
	}
}

func newHandler(t testing.TB, p *Pod, token string, key []byte) *Handler {
	t.Helper()
	h, err := NewHandler(p, token, key)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	return h
}

type reply struct {
	Code        int
	ContentType string
	Body        string
}

func do(t testing.TB, h http.Handler, method, path, contentType string, body io.Reader) reply {
	t.Helper()
	r := httptest.NewRequest(method, path, body)
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return reply{w.Code, w.Header().Get("Content-Type"), w.Body.String()}
}

func postForm(t testing.TB, h http.Handler, path string, v url.Values) reply {
	t.Helper()
	return do(t, h, http.MethodPost, path, contentForm, strings.NewReader(v.Encode()))
}

func api(token, p string) string { return "/" + token + "/acMetadata/v1/" + p }

func TestHandlerGet(t *testing.T) {
	t.Parallel()
	p := testPod(strings.ToUpper(uuidA), `[{"name": "ip-address", "value": "10.1.2.3"}]`)
	h := newHandler(t, p, tokenA, testKey)
	empty := newHandler(t, testPod(uuidA, `[]`), tokenA, testKey)
	null := newHandler(t, testPod(uuidA, `null`), tokenA, testKey)
	noAnn := testPod(uuidA, `[]`)
	noAnn.Manifest = bytes.Replace(noAnn.Manifest, []byte(`"annotations": []`), nil, 1)
	noAnn.Manifest = bytes.Replace(noAnn.Manifest, []byte(`"ports": [],`), []byte(`"ports": []`), 1)
	missing := newHandler(t, noAnn, tokenA, testKey)
	for _, tc := range []struct {
		name   string
		h      http.Handler
		method string
		path   string
		want   reply
	}{
		{"pod uuid", h, "GET", "pod/uuid", reply{200, contentText, uuidA}},
		{"pod manifest", h, "GET", "pod/manifest", reply{200, contentJSON, string(p.Manifest)}},
		{"pod annotations", h, "GET", "pod/annotations", reply{200, contentJSON, `[{"name":"ip-address","value":"10.1.2.3"}]`}},
		{"pod annotations empty", empty, "GET", "pod/annotations", reply{200, contentJSON, `[]`}},
		{"pod annotations null", null, "GET", "pod/annotations", reply{200, contentJSON, `null`}},
		{"pod annotations missing", missing, "GET", "pod/annotations", reply{200, contentJSON, `null`}},
		{"app annotations merged, pod wins", h, "GET", "apps/web/annotations", reply{200, contentJSON,
			`[{"name":"created","value":"2014-10-27T19:32:27.67021798Z"},{"name":"lorem","value":"from-pod"},` +
				`{"name":"homepage","value":"https://example.com"},{"name":"extra","value":"x"}]`}},
		{"app annotations empty", h, "GET", "apps/side/annotations", reply{200, contentJSON, `[]`}},
		{"image manifest", h, "GET", "apps/web/image/manifest", reply{200, contentJSON, webManifest}},
		{"image manifest unknown isolator", h, "GET", "apps/side/image/manifest", reply{200, contentJSON, sideManifest}},
		{"image id", h, "GET", "apps/web/image/id", reply{200, contentText, idWeb}},
		{"image id from pod manifest", h, "GET", "apps/side/image/id", reply{200, contentText, idSide}},
		{"head", h, "HEAD", "pod/uuid", reply{200, contentText, ""}},
		// rkt 1.30's single-annotation endpoints.
		{"pod annotation value", h, "GET", "pod/annotations/ip-address", reply{200, contentText, "10.1.2.3"}},
		{"app annotation value, pod wins", h, "GET", "apps/web/annotations/lorem", reply{200, contentText, "from-pod"}},
		{"app annotation value from image", h, "GET", "apps/web/annotations/homepage", reply{200, contentText, "https://example.com"}},
		// The image's own annotations, not merged with the pod's.
		{"image annotations", h, "GET", "apps/web/image/annotations", reply{200, contentJSON,
			`[{"name":"created","value":"2014-10-27T19:32:27.67021798Z"},{"name":"lorem","value":"ipsum"},` +
				`{"name":"homepage","value":"https://example.com"}]`}},
		{"image annotations empty", h, "GET", "apps/side/image/annotations", reply{200, contentJSON, `[]`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := do(t, tc.h, tc.method, api(tokenA, tc.path), "", nil)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s %s mismatch (-want +got):\n%s", tc.method, tc.path, diff)
			}
		})
	}
}

func TestHandlerRejects(t *testing.T) {
	t.Parallel()
	h := newHandler(t, testPod(uuidA, `[{"name": "ip-address", "value": "10.1.2.3"}]`), tokenA, testKey)
	long := strings.Repeat("x", 2*MaxBodySize)
	for _, tc := range []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		want        int
	}{
		{"wrong token", "GET", api(tokenB, "pod/uuid"), "", "", 404},
		{"token prefix", "GET", api(tokenA[:30], "pod/uuid"), "", "", 404},
		{"token longer", "GET", api(tokenA+"x", "pod/uuid"), "", "", 404},
		{"uuid as token", "GET", api(uuidA, "pod/uuid"), "", "", 404},
		{"no token", "GET", "/acMetadata/v1/pod/uuid", "", "", 404},
		{"root", "GET", "/", "", "", 404},
		{"token only", "GET", "/" + tokenA, "", "", 404},
		{"api root", "GET", api(tokenA, ""), "", "", 404},
		{"other version", "GET", "/" + tokenA + "/acMetadata/v2/pod/uuid", "", "", 404},
		{"no api prefix", "GET", "/" + tokenA + "/pod/uuid", "", "", 404},
		{"double slash", "GET", "/" + tokenA + "//acMetadata/v1/pod/uuid", "", "", 404},
		{"dot dot", "GET", api(tokenA, "apps/web/../../pod/uuid"), "", "", 404},
		{"trailing slash", "GET", api(tokenA, "pod/uuid/"), "", "", 404},
		{"unknown endpoint", "GET", api(tokenA, "pod/secret"), "", "", 404},
		{"unknown app", "GET", api(tokenA, "apps/nope/image/id"), "", "", 404},
		{"app without entry", "GET", api(tokenA, "apps/web"), "", "", 404},
		{"unknown pod annotation", "GET", api(tokenA, "pod/annotations/nope"), "", "", 404},
		{"unknown app annotation", "GET", api(tokenA, "apps/web/annotations/nope"), "", "", 404},
		{"pod annotation of an app", "GET", api(tokenA, "pod/annotations/lorem"), "", "", 404},
		{"post to get endpoint", "POST", api(tokenA, "pod/uuid"), contentForm, "content=x", 405},
		{"put to app endpoint", "PUT", api(tokenA, "apps/web/image/manifest"), "", "", 405},
		{"get sign", "GET", api(tokenA, "pod/hmac/sign"), "", "", 405},
		{"get verify", "GET", api(tokenA, "pod/hmac/verify"), "", "", 405},
		{"wrong token post", "POST", api(tokenB, "pod/hmac/sign"), contentForm, "content=x", 404},
		{"sign not a form", "POST", api(tokenA, "pod/hmac/sign"), "text/plain", "content=x", 415},
		{"sign no content type", "POST", api(tokenA, "pod/hmac/sign"), "", "content=x", 415},
		{"sign multipart", "POST", api(tokenA, "pod/hmac/sign"), "multipart/form-data; boundary=x", "--x--", 415},
		{"sign no content", "POST", api(tokenA, "pod/hmac/sign"), contentForm, "other=x", 400},
		{"sign two contents", "POST", api(tokenA, "pod/hmac/sign"), contentForm, "content=x&content=y", 400},
		{"sign bad form", "POST", api(tokenA, "pod/hmac/sign"), contentForm, "content=%zz", 400},
		{"sign too large", "POST", api(tokenA, "pod/hmac/sign"), contentForm, "content=" + long, 413},
		{"verify too large", "POST", api(tokenA, "pod/hmac/verify"), contentForm, "content=" + long, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := do(t, h, tc.method, tc.path, tc.contentType, strings.NewReader(tc.body))
			if got.Code != tc.want {
				t.Errorf("%s %s: status %d, want %d (body %q)", tc.method, tc.path, got.Code, tc.want, got.Body)
			}
			checkNoLeak(t, got)
		})
	}
}

// checkNoLeak fails if an error answer carries anything but its status text.
func checkNoLeak(t testing.TB, got reply) {
	t.Helper()
	if got.Code < 400 {
		return
	}
	if want := http.StatusText(got.Code) + "\n"; got.Body != want || got.ContentType != contentText {
		t.Errorf("status %d answer %q (%s), want only %q", got.Code, got.Body, got.ContentType, want)
	}
}

// TestHandlerChunkedBody checks the body bound without a Content-Length.
func TestHandlerChunkedBody(t *testing.T) {
	t.Parallel()
	h := newHandler(t, testPod(uuidA, `[]`), tokenA, testKey)
	r := httptest.NewRequest("POST", api(tokenA, "pod/hmac/sign"),
		io.MultiReader(strings.NewReader("content="), strings.NewReader(strings.Repeat("y", MaxBodySize))))
	r.ContentLength = -1
	r.Header.Set("Content-Type", contentForm)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked %d-byte body: status %d, want 413", MaxBodySize+8, w.Code)
	}
	// Just under the bound is fine.
	r = httptest.NewRequest("POST", api(tokenA, "pod/hmac/sign"),
		strings.NewReader("content="+strings.Repeat("y", MaxBodySize-len("content="))))
	r.ContentLength = -1
	r.Header.Set("Content-Type", contentForm)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Errorf("chunked %d-byte body: status %d, want 200", MaxBodySize, w.Code)
	}
}

func wantMAC(key []byte, uuid, content string) string {
	raw, err := hex.DecodeString(strings.ReplaceAll(uuid, "-", ""))
	if err != nil {
		panic(err)
	}
	m := hmac.New(sha512.New, key)
	m.Write(raw)
	m.Write([]byte(content))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestSignVerify(t *testing.T) {
	t.Parallel()
	h := newHandler(t, testPod(uuidA, `[]`), tokenA, testKey)
	const content = "Old MacDonald Had A Farm\x00 & = +/?"
	sign := postForm(t, h, api(tokenA, "pod/hmac/sign"), url.Values{"content": {content}})
	want := reply{200, contentText, wantMAC(testKey, uuidA, content)}
	if diff := cmp.Diff(want, sign); diff != "" {
		t.Fatalf("sign mismatch (-want +got):\n%s", diff)
	}
	// Query parameters are not the form.
	q := postForm(t, h, api(tokenA, "pod/hmac/sign")+"?content=x", url.Values{"content": {content}})
	if q.Body != sign.Body {
		t.Errorf("sign with a query parameter: %q, want %q", q.Body, sign.Body)
	}
	empty := postForm(t, h, api(tokenA, "pod/hmac/sign"), url.Values{"content": {""}})
	if want := wantMAC(testKey, uuidA, ""); empty.Code != 200 || empty.Body != want {
		t.Errorf("sign empty content: %+v, want %q", empty, want)
	}

	sig := sign.Body
	for _, tc := range []struct {
		name string
		form url.Values
		want int
	}{
		{"ok", url.Values{"content": {content}, "uuid": {uuidA}, "signature": {sig}}, 200},
		{"ok uppercase undashed uuid", url.Values{"content": {content}, "uuid": {strings.ToUpper(strings.ReplaceAll(uuidA, "-", ""))}, "signature": {sig}}, 200},
		{"ok trailing newline", url.Values{"content": {content}, "uuid": {uuidA}, "signature": {sig + "\n"}}, 200},
		{"other content", url.Values{"content": {content + "."}, "uuid": {uuidA}, "signature": {sig}}, 403},
		{"other uuid", url.Values{"content": {content}, "uuid": {uuidB}, "signature": {sig}}, 403},
		{"truncated signature", url.Values{"content": {content}, "uuid": {uuidA}, "signature": {sig[:20]}}, 403},
		{"not base64", url.Values{"content": {content}, "uuid": {uuidA}, "signature": {"!!!"}}, 403},
		{"empty signature", url.Values{"content": {content}, "uuid": {uuidA}, "signature": {""}}, 403},
		{"no signature", url.Values{"content": {content}, "uuid": {uuidA}}, 400},
		{"no uuid", url.Values{"content": {content}, "signature": {sig}}, 400},
		{"no content", url.Values{"uuid": {uuidA}, "signature": {sig}}, 400},
		{"bad uuid", url.Values{"content": {content}, "uuid": {"not-a-uuid"}, "signature": {sig}}, 400},
		{"two uuids", url.Values{"content": {content}, "uuid": {uuidA, uuidB}, "signature": {sig}}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := postForm(t, h, api(tokenA, "pod/hmac/verify"), tc.form)
			if got.Code != tc.want {
				t.Errorf("verify: status %d, want %d (%q)", got.Code, tc.want, got.Body)
			}
			if got.ContentType != contentText {
				t.Errorf("verify: Content-Type %q, want %q", got.ContentType, contentText)
			}
			checkNoLeak(t, got)
		})
	}
}

// TestCrossPodVerify: pods on one host share the key, so a pod verifies
// another pod's signature given that pod's UUID.
func TestCrossPodVerify(t *testing.T) {
	t.Parallel()
	a := newHandler(t, testPod(uuidA, `[]`), tokenA, testKey)
	b := newHandler(t, testPod(uuidB, `[]`), tokenB, testKey)
	otherKey := bytes.Repeat([]byte{1}, KeySize)
	c := newHandler(t, testPod(uuidB, `[]`), tokenB, otherKey)

	const content = "identity"
	sigA := postForm(t, a, api(tokenA, "pod/hmac/sign"), url.Values{"content": {content}}).Body
	sigB := postForm(t, b, api(tokenB, "pod/hmac/sign"), url.Values{"content": {content}}).Body
	if sigA == sigB {
		t.Fatal("two pods made the same signature")
	}
	for _, tc := range []struct {
		name string
		h    http.Handler
		tok  string
		uuid string
		sig  string
		want int
	}{
		{"A's signature at B", b, tokenB, uuidA, sigA, 200},
		{"B's signature at A", a, tokenA, uuidB, sigB, 200},
		{"A's signature at B claimed by B", b, tokenB, uuidB, sigA, 403},
		{"A's signature at a host with another key", c, tokenB, uuidA, sigA, 403},
	} {
		got := postForm(t, tc.h, api(tc.tok, "pod/hmac/verify"),
			url.Values{"content": {content}, "uuid": {tc.uuid}, "signature": {tc.sig}})
		if got.Code != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got.Code, tc.want)
		}
	}
}

func TestNewHandlerErrors(t *testing.T) {
	t.Parallel()
	withApps := func(apps map[string]App) *Pod {
		p := testPod(uuidA, `[]`)
		p.Apps = apps
		return p
	}
	web := App{ImageManifest: []byte(webManifest)}
	side := App{ImageManifest: []byte(sideManifest)}
	for _, tc := range []struct {
		name  string
		pod   *Pod
		token string
		key   []byte
		want  string
	}{
		{"short token", testPod(uuidA, `[]`), "abc", testKey, "at least 22"},
		{"token with slash", testPod(uuidA, `[]`), tokenA + "/x", testKey, "not URL-safe"},
		{"token with percent", testPod(uuidA, `[]`), tokenA + "%41", testKey, "not URL-safe"},
		{"token is the uuid", testPod(uuidA, `[]`), strings.ToUpper(uuidA), testKey, "must not be the pod uuid"},
		{"short key", testPod(uuidA, `[]`), tokenA, []byte("short"), "hmac key"},
		{"bad uuid", testPod("nope", `[]`), tokenA, testKey, "pod uuid"},
		{"bad pod manifest", &Pod{UUID: uuidA, Manifest: []byte(`{"acKind":"ImageManifest"}`)}, tokenA, testKey, "pod manifest"},
		{"missing app", withApps(map[string]App{"web": web}), tokenA, testKey, "app side: no image manifest"},
		{"extra app", withApps(map[string]App{"web": web, "side": side, "ghost": side}), tokenA, testKey, "app ghost: not in the pod manifest"},
		{"bad image manifest", withApps(map[string]App{"web": {ImageManifest: []byte(`{`)}, "side": side}), tokenA, testKey, "app web"},
		{"image id mismatch", withApps(map[string]App{"web": {ImageManifest: []byte(webManifest), ImageID: idSide}, "side": side}), tokenA, testKey, "image id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewHandler(tc.pod, tc.token, tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewHandler: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestNewToken: the contract's tokens are ones the service accepts.
func TestNewToken(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		tok, err := stage1.NewMDSToken()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(raw) < 16 {
			t.Fatalf("token %q: %d bytes, %v; want at least 16 random bytes", tok, len(raw), err)
		}
		if err := checkToken(tok); err != nil {
			t.Fatalf("token %q: %v", tok, err)
		}
		if seen[tok] {
			t.Fatalf("token %q repeated", tok)
		}
		seen[tok] = true
	}
}

// serve runs h on a loopback listener for the test and returns the
// AC_METADATA_URL.
func serve(t *testing.T, h http.Handler, token string) string {
	t.Helper()
	l, err := ListenInNetNS("", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, h, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return URL(l, token)
}

func TestServe(t *testing.T) {
	t.Parallel()
	p := testPod(uuidA, `[]`)
	u := serve(t, newHandler(t, p, tokenA, testKey), tokenA)
	if !strings.HasPrefix(u, "http://127.0.0.1:") || !strings.HasSuffix(u, "/"+tokenA) {
		t.Fatalf("URL %q, want http://127.0.0.1:PORT/%s", u, tokenA)
	}
	// How fast the answers come is make bench's business and the ACE
	// validator's (TestACE); here only what they say.
	cli := &http.Client{Timeout: 30 * time.Second}
	for range 20 {
		resp, err := cli.Get(u + "/acMetadata/v1/pod/manifest")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || !bytes.Equal(b, p.Manifest) {
			t.Fatalf("GET pod/manifest: %d %q", resp.StatusCode, b)
		}
	}
}

func TestServeStops(t *testing.T) {
	t.Parallel()
	l, err := ListenInNetNS("", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, newHandler(t, testPod(uuidA, `[]`), tokenA, testKey), nil) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if c, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Errorf("listener %s still accepts after Serve returned", l.Addr())
	}

	// A listener that fails makes Serve return an error.
	l2, err := ListenInNetNS("", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l2.Close()
	if err := Serve(t.Context(), l2, http.NotFoundHandler(), nil); err == nil || errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve on a closed listener: %v, want an error", err)
	}
}

func TestListenBadAddr(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"localhost:0", "127.0.0.1", ":80x"} {
		if l, err := ListenInNetNS("", addr); err == nil {
			l.Close()
			t.Errorf("ListenInNetNS(%q): no error", addr)
		}
	}
	if _, err := ListenInNetNS("/nonexistent/netns", "127.0.0.1:0"); err == nil {
		t.Error("ListenInNetNS with a missing netns: no error")
	}
	// A file that is not a namespace: setns fails and the thread is fine.
	if _, err := ListenInNetNS("/proc/self/stat", "127.0.0.1:0"); err == nil {
		t.Error("ListenInNetNS with a non-namespace file: no error")
	}
}

func TestMarshalAnnotationsShape(t *testing.T) {
	t.Parallel()
	b, err := marshalAnnotations(nil)
	if err != nil || string(b) != "[]" {
		t.Errorf("marshalAnnotations(nil) = %s, %v; want []", b, err)
	}
}
