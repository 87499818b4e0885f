package discovery

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// blobServer serves data with an ETag through http.ServeContent, which
// implements If-None-Match (304), Range (206) and If-Range.
type blobServer struct {
	mu sync.Mutex
	// Fields below are guarded by mu.
	data     []byte
	etag     string
	cacheCtl string
	cutOnce  int64    // if > 0, the next response stops after this many bytes
	ranges   []string // Range header of each request
}

func (b *blobServer) handler(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	data, etag, cacheCtl, cut := b.data, b.etag, b.cacheCtl, b.cutOnce
	b.cutOnce = 0
	b.ranges = append(b.ranges, r.Header.Get("Range"))
	b.mu.Unlock()
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	if cacheCtl != "" {
		w.Header().Set("Cache-Control", cacheCtl)
	}
	if cut > 0 {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:cut])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		panic(http.ErrAbortHandler) // drop the connection mid-body
	}
	http.ServeContent(w, r, "image.aci", time.Time{}, bytes.NewReader(data))
}

func (b *blobServer) rangesSeen() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.ranges...)
}

func newBlobServer(t *testing.T, b *blobServer) (*testServer, *Fetcher) {
	t.Helper()
	srv := newTestServer(t, true, b.handler)
	f, err := NewFetcher(options(srv, nil))
	if err != nil {
		t.Fatal(err)
	}
	return srv, f
}

func tempFile(t *testing.T, content []byte) *os.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "partial")
	if err := os.WriteFile(p, content, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func fileContent(t *testing.T, f *os.File) []byte {
	t.Helper()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testData(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

const imageURL = "https://example.com/image.aci"

func TestFetchETagAndMaxAge(t *testing.T) {
	t.Parallel()
	b := &blobServer{data: testData(100000), etag: `"v1"`, cacheCtl: "public, max-age=3600"}
	srv, f := newBlobServer(t, b)
	cache, err := NewFileCache(filepath.Join(t.TempDir(), "remote"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f.now = func() time.Time { return start }

	w := tempFile(t, nil)
	var rec Record
	res, err := f.Fetch(t.Context(), imageURL, w, &rec)
	if err != nil {
		t.Fatalf("first Fetch: %v", err)
	}
	want := Result{ETag: `"v1"`, MaxAge: time.Hour, ContentLength: 100000}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("first Fetch result mismatch (-want +got):\n%s", diff)
	}
	if !bytes.Equal(fileContent(t, w), b.data) {
		t.Fatal("downloaded content differs")
	}
	// The caller imports the blob and stores the record.
	rec.BlobID = "sha512-abc"
	if err := cache.Put(imageURL, rec); err != nil {
		t.Fatal(err)
	}
	rec, ok := cache.Get(imageURL)
	if !ok {
		t.Fatal("record not stored")
	}
	if diff := cmp.Diff(Record{ETag: `"v1"`, MaxAge: time.Hour, Fetched: start, BlobID: "sha512-abc"}, rec); diff != "" {
		t.Errorf("stored record mismatch (-want +got):\n%s", diff)
	}

	// Inside max-age: no request at all.
	f.now = func() time.Time { return start.Add(59 * time.Minute) }
	res, err = f.Fetch(t.Context(), imageURL, tempFile(t, nil), &rec)
	if err != nil {
		t.Fatalf("fresh Fetch: %v", err)
	}
	if !res.NotModified || !res.Fresh {
		t.Errorf("fresh Fetch result = %+v, want NotModified and Fresh", res)
	}
	if n := srv.total(); n != 1 {
		t.Errorf("server saw %d requests, want 1 (fresh record must not ask)", n)
	}

	// After max-age: If-None-Match, 304.
	later := start.Add(2 * time.Hour)
	f.now = func() time.Time { return later }
	res, err = f.Fetch(t.Context(), imageURL, tempFile(t, nil), &rec)
	if err != nil {
		t.Fatalf("revalidating Fetch: %v", err)
	}
	if !res.NotModified || res.Fresh {
		t.Errorf("revalidating Fetch result = %+v, want NotModified from the server", res)
	}
	if n := srv.total(); n != 2 {
		t.Errorf("server saw %d requests, want 2", n)
	}
	if rec.BlobID != "sha512-abc" || !rec.Fetched.Equal(later) {
		t.Errorf("record after 304 = %+v, want same blob and new fetch time", rec)
	}

	// The image changed: 200 with new content, BlobID cleared.
	b.mu.Lock()
	b.data, b.etag = []byte("new image"), `"v2"`
	b.mu.Unlock()
	f.now = func() time.Time { return later.Add(2 * time.Hour) }
	w = tempFile(t, nil)
	res, err = f.Fetch(t.Context(), imageURL, w, &rec)
	if err != nil {
		t.Fatalf("Fetch of changed image: %v", err)
	}
	if res.NotModified || res.ETag != `"v2"` || rec.BlobID != "" || rec.ETag != `"v2"` {
		t.Errorf("changed image: result %+v record %+v", res, rec)
	}
	if got := string(fileContent(t, w)); got != "new image" {
		t.Errorf("content = %q", got)
	}
}

func TestFetchResume(t *testing.T) {
	t.Parallel()
	data := testData(1 << 20)
	b := &blobServer{data: data, etag: `"big"`, cutOnce: 300000}
	_, f := newBlobServer(t, b)
	var progress [][2]int64
	f.opts.Progress = func(done, total int64) { progress = append(progress, [2]int64{done, total}) }

	w := tempFile(t, nil)
	var rec Record
	if _, err := f.Fetch(t.Context(), imageURL, w, &rec); err == nil {
		t.Fatal("truncated download succeeded")
	}
	st, err := w.Stat()
	if err != nil {
		t.Fatal(err)
	}
	have := st.Size()
	if have == 0 || have >= int64(len(data)) {
		t.Fatalf("partial file has %d bytes, want some of %d", have, len(data))
	}
	if rec.ETag != `"big"` || rec.BlobID != "" {
		t.Fatalf("record after failed download = %+v, want the ETag to resume with", rec)
	}

	progress = nil
	res, err := f.Fetch(t.Context(), imageURL, w, &rec)
	if err != nil {
		t.Fatalf("resumed Fetch: %v", err)
	}
	if res.ContentLength != int64(len(data)) {
		t.Errorf("ContentLength = %d, want %d", res.ContentLength, len(data))
	}
	if !bytes.Equal(fileContent(t, w), data) {
		t.Fatal("resumed content differs")
	}
	if diff := cmp.Diff([]string{"", "bytes=" + strconv.FormatInt(have, 10) + "-"}, b.rangesSeen()); diff != "" {
		t.Errorf("Range headers mismatch (-want +got):\n%s", diff)
	}
	if len(progress) < 2 || progress[0] != [2]int64{have, int64(len(data))} || progress[len(progress)-1] != [2]int64{int64(len(data)), int64(len(data))} {
		t.Errorf("progress = %v..., want from %d to %d of %d", progress[:min(len(progress), 3)], have, len(data), len(data))
	}
}

func TestFetchResumeRestarts(t *testing.T) {
	t.Parallel()
	data := testData(5000)
	tests := []struct {
		name    string
		partial []byte
		etag    string
		wantRng string
	}{
		{"etag changed", []byte("stale partial content"), `"old"`, "bytes=21-"},
		{"weak etag", []byte("stale"), `W/"cur"`, ""},
		{"partial as long as the file", testData(5000), `"cur"`, "bytes=5000-"},
		{"no etag", []byte("stale"), "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := &blobServer{data: data, etag: `"cur"`}
			_, f := newBlobServer(t, b)
			w := tempFile(t, tc.partial)
			rec := Record{ETag: tc.etag}
			if _, err := f.Fetch(t.Context(), imageURL, w, &rec); err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if !bytes.Equal(fileContent(t, w), data) {
				t.Error("content differs: a restart must truncate the partial file")
			}
			if got := b.rangesSeen(); got[0] != tc.wantRng {
				t.Errorf("first Range = %q, want %q", got[0], tc.wantRng)
			}
		})
	}
}

func TestFetchStatus(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, true, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/pending.aci.asc":
			w.WriteHeader(http.StatusAccepted)
		case "/missing.aci":
			http.NotFound(w, r)
		case "/broken.aci":
			http.Error(w, "oops", http.StatusInternalServerError)
		}
	})
	f, err := NewFetcher(options(srv, nil))
	if err != nil {
		t.Fatal(err)
	}
	w := tempFile(t, nil)
	_, err = f.Fetch(t.Context(), "https://example.com/pending.aci.asc", w, nil)
	if !errors.Is(err, ErrSignatureNotReady) {
		t.Errorf("202: err = %v, want ErrSignatureNotReady", err)
	}
	for path, code := range map[string]int{"/missing.aci": 404, "/broken.aci": 500} {
		u := "https://example.com" + path
		_, err := f.Fetch(t.Context(), u, w, nil)
		var se *StatusError
		if !errors.As(err, &se) || se.Status != code || se.URL != u {
			t.Errorf("%s: err = %v, want StatusError %d", path, err, code)
		}
		if err != nil && (!strings.Contains(err.Error(), u) || !strings.Contains(err.Error(), strconv.Itoa(code))) {
			t.Errorf("%s: error %q does not name URL and status", path, err)
		}
	}
}

func TestFetchRefusesPlainHTTP(t *testing.T) {
	t.Parallel()
	f, err := NewFetcher(Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := tempFile(t, nil)
	for _, u := range []string{"http://example.com/a.aci", "ftp://example.com/a.aci", "https:///a.aci"} {
		if _, err := f.Fetch(t.Context(), u, w, nil); err == nil {
			t.Errorf("Fetch(%q) succeeded", u)
		}
		if _, err := f.FetchKey(t.Context(), u); err == nil {
			t.Errorf("FetchKey(%q) succeeded", u)
		}
	}
}

func TestFetchKey(t *testing.T) {
	t.Parallel()
	key := "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nabc\n-----END PGP PUBLIC KEY BLOCK-----\n"
	srv := newTestServer(t, true, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/key.gpg":
			w.Write([]byte(key))
		case "/huge.gpg":
			w.Write(bytes.Repeat([]byte("a"), MaxKeySize+1))
		case "/huge-chunked.gpg":
			for range 17 {
				w.Write(bytes.Repeat([]byte("a"), 64<<10))
				w.(http.Flusher).Flush()
			}
		default:
			http.NotFound(w, r)
		}
	})
	f, err := NewFetcher(options(srv, nil))
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.FetchKey(t.Context(), "https://example.com/key.gpg")
	if err != nil {
		t.Fatalf("FetchKey: %v", err)
	}
	if string(got) != key {
		t.Errorf("key = %q", got)
	}
	for _, p := range []string{"/huge.gpg", "/huge-chunked.gpg", "/none.gpg"} {
		if _, err := f.FetchKey(t.Context(), "https://example.com"+p); err == nil {
			t.Errorf("FetchKey(%s) succeeded", p)
		}
	}
}

func TestRecordFresh(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		rec  Record
		now  time.Time
		want bool
	}{
		{"inside", Record{BlobID: "b", MaxAge: time.Minute, Fetched: t0}, t0.Add(time.Second), true},
		{"expired", Record{BlobID: "b", MaxAge: time.Minute, Fetched: t0}, t0.Add(time.Minute), false},
		{"no blob", Record{MaxAge: time.Minute, Fetched: t0}, t0, false},
		{"no max-age", Record{BlobID: "b", Fetched: t0}, t0, false},
		{"clock went back", Record{BlobID: "b", MaxAge: time.Minute, Fetched: t0}, t0.Add(-time.Second), false},
		{"never fetched", Record{BlobID: "b", MaxAge: time.Minute}, t0, false},
	}
	for _, tc := range tests {
		if got := tc.rec.Fresh(tc.now); got != tc.want {
			t.Errorf("%s: Fresh = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParseMaxAge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   []string
		want time.Duration
	}{
		{nil, 0},
		{[]string{"max-age=60"}, time.Minute},
		{[]string{"public", "MAX-AGE = \"120\""}, 2 * time.Minute},
		{[]string{"max-age=60, no-cache"}, 0},
		{[]string{"no-store", "max-age=60"}, 0},
		{[]string{"max-age=-1"}, 0},
		{[]string{"max-age=99999999999999999999"}, 0},
		{[]string{"max-age=999999999999"}, maxMaxAge},
	}
	for _, tc := range tests {
		if got := parseMaxAge(tc.in); got != tc.want {
			t.Errorf("parseMaxAge(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseContentRange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in          string
		start, size int64
		ok          bool
	}{
		{"bytes 10-99/100", 10, 100, true},
		{"bytes 0-0/*", 0, -1, true},
		{"bytes 10-99/50", 0, 0, false},
		{"bytes 10-5/100", 0, 0, false},
		{"bytes -5/100", 0, 0, false},
		{"items 1-2/3", 0, 0, false},
		{"bytes 1-2", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tc := range tests {
		start, size, ok := parseContentRange(tc.in)
		if start != tc.start || size != tc.size || ok != tc.ok {
			t.Errorf("parseContentRange(%q) = %d, %d, %v; want %d, %d, %v", tc.in, start, size, ok, tc.start, tc.size, tc.ok)
		}
	}
}
