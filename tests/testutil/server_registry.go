package testutil

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry is go-containerregistry's in-process registry on a plain-http
// 127.0.0.1 port, counting blob downloads and able to break one.
type Registry struct {
	// Host is "127.0.0.1:PORT".
	Host string

	srv *httptest.Server

	// mu guards the fields below.
	mu        sync.Mutex
	blobGets  map[string]int // digest -> GETs
	truncated map[string]bool
}

// NewRegistry starts a registry and stops it when the test ends.
func NewRegistry(t testing.TB) *Registry {
	t.Helper()
	r := &Registry{blobGets: map[string]int{}, truncated: map[string]bool{}}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/sha256:") {
			d := req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:]
			r.mu.Lock()
			r.blobGets[d]++
			trunc := r.truncated[d]
			r.mu.Unlock()
			if trunc {
				tw := &truncWriter{ResponseWriter: w}
				h.ServeHTTP(tw, req)
				panic(http.ErrAbortHandler)
			}
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	r.Host = strings.TrimPrefix(r.srv.URL, "http://")
	return r
}

// truncWriter passes on only the first half of the declared body.
type truncWriter struct {
	http.ResponseWriter
	limit, n int
}

func (w *truncWriter) WriteHeader(code int) {
	var size int
	fmt.Sscan(w.Header().Get("Content-Length"), &size)
	w.limit = size / 2
	w.ResponseWriter.WriteHeader(code)
}

func (w *truncWriter) Write(p []byte) (int, error) {
	if w.n+len(p) > w.limit {
		p = p[:max(0, w.limit-w.n)]
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += n
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
	return n, err
}

// Ref is "docker://HOST/repo" for rkt.
func (r *Registry) Ref(repo string) string { return "docker://" + r.Host + "/" + repo }

// Push writes img as HOST/repoTag ("test/app:1").
func (r *Registry) Push(t testing.TB, repoTag string, img v1.Image) {
	t.Helper()
	ref, err := name.ParseReference(r.Host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push %s: %v", repoTag, err)
	}
}

// PushIndex writes an image index as HOST/repoTag.
func (r *Registry) PushIndex(t testing.TB, repoTag string, idx v1.ImageIndex) {
	t.Helper()
	ref, err := name.ParseReference(r.Host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatalf("push index %s: %v", repoTag, err)
	}
}

// PushRaw writes a manifest of any media type as HOST/repo:tag.
func (r *Registry) PushRaw(t testing.TB, repo, tag, mediaType string, body []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, r.srv.URL+"/v2/"+repo+"/manifests/"+tag, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("put manifest %s:%s: HTTP %d", repo, tag, resp.StatusCode)
	}
}

// BlobGets is the number of GETs of the blob with this digest.
func (r *Registry) BlobGets(digest string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blobGets[digest]
}

// Truncate makes every GET of the blob send half of it and break.
func (r *Registry) Truncate(digest string, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.truncated[digest] = on
}
