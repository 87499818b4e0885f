package mds

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzHandler sends arbitrary requests (method, path, content type, body) to a
// pod's handler: it must not panic, must answer 200 only on API paths under
// the right token, and must never put pod data in an error answer.
func FuzzHandler(f *testing.F) {
	f.Add("GET", api(tokenA, "pod/uuid"), "", []byte(nil))
	f.Add("GET", api(tokenA, "apps/web/annotations"), "", []byte(nil))
	f.Add("HEAD", api(tokenA, "apps/side/image/id"), "", []byte(nil))
	f.Add("POST", api(tokenA, "pod/hmac/sign"), contentForm, []byte("content=hello"))
	f.Add("POST", api(tokenA, "pod/hmac/verify"), contentForm+"; charset=utf-8",
		[]byte("content=hello&uuid="+uuidA+"&signature="+url.QueryEscape(wantMAC(testKey, uuidA, "hello"))))
	f.Add("POST", api(tokenA, "pod/hmac/verify"), contentForm, []byte("content=%&uuid=;;&signature=%zz"))
	f.Add("GET", "/"+tokenA+"/acMetadata/v1/apps/web/../../pod/manifest", "", []byte(nil))
	f.Add("DELETE", api(tokenB, "pod/manifest"), "text/plain", []byte("x"))
	h := newHandler(f, testPod(uuidA, `[{"name": "ip-address", "value": "10.1.2.3"}]`), tokenA, testKey)
	f.Fuzz(func(t *testing.T, method, path, contentType string, body []byte) {
		if len(body) > 1<<16 || len(path) > 4096 || len(method) > 16 || len(contentType) > 256 {
			return
		}
		r := &http.Request{
			Method:        method,
			URL:           &url.URL{Path: path},
			Header:        http.Header{},
			Body:          io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)),
			Host:          "127.0.0.1",
		}
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		got := reply{w.Code, w.Header().Get("Content-Type"), w.Body.String()}
		route, inAPI := strings.CutPrefix(path, "/"+tokenA+"/"+apiPrefix)
		switch {
		case got.Code == http.StatusOK:
			if !inAPI {
				t.Fatalf("%s %q: 200 outside the API", method, path)
			}
			if resp, ok := h.get[route]; ok && method == "GET" && got.Body != string(resp.body) {
				t.Fatalf("%s %q: body %q, want %q", method, path, got.Body, resp.body)
			}
		case got.Code >= 400 && got.Code < 500:
			checkNoLeak(t, got)
		default:
			t.Fatalf("%s %q: status %d", method, path, got.Code)
		}
	})
}
