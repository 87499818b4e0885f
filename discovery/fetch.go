package discovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// MaxKeySize bounds an armored public key body.
const MaxKeySize = 1 << 20

// maxMaxAge caps Cache-Control max-age so a hostile value cannot overflow
// time arithmetic or pin an image for ever.
const maxMaxAge = 365 * 24 * time.Hour

// ErrSignatureNotReady is returned (wrapped) when a server answers 202
// Accepted: the signature is still being made. As rkt did, the caller fetches
// the image first and then retries the signature.
var ErrSignatureNotReady = errors.New("signature not ready yet (HTTP 202)")

// Record is what is remembered about one URL between runs (rkt's "remote"
// table): the validator and freshness of the last download and the store blob
// it became. An ETag with an empty BlobID describes a partial download.
type Record struct {
	ETag    string        `json:"etag,omitempty"`
	MaxAge  time.Duration `json:"maxAge,omitempty"`
	Fetched time.Time     `json:"fetched"`
	BlobID  string        `json:"blobID,omitempty"`
}

// Fresh reports whether the record's blob may be used at now without asking
// the server (inside Cache-Control max-age of the last download).
func (r Record) Fresh(now time.Time) bool {
	return r.BlobID != "" && r.MaxAge > 0 && !r.Fetched.IsZero() &&
		!now.Before(r.Fetched) && now.Before(r.Fetched.Add(r.MaxAge))
}

// Cache stores a Record per URL.
type Cache interface {
	Get(url string) (Record, bool)
	Put(url string, rec Record) error
}

// Result describes what Fetch did.
type Result struct {
	// NotModified means the record's blob is current and w was not
	// written: the record was fresh (Fresh is then true, and no request was
	// made) or the server answered 304.
	NotModified bool
	Fresh       bool
	ETag        string
	MaxAge      time.Duration
	// ContentLength is the size of the whole body in w, or -1 if unknown.
	ContentLength int64
}

// Fetcher downloads images, signatures and keys over HTTP(S).
type Fetcher struct {
	client *http.Client
	opts   Options
	now    func() time.Time
}

// NewFetcher returns a Fetcher using o for TLS, credentials, redirects,
// timeouts and progress reports.
func NewFetcher(o Options) (*Fetcher, error) {
	c, err := newClient(o)
	if err != nil {
		return nil, err
	}
	return &Fetcher{client: c, opts: o, now: time.Now}, nil
}

// Fetch downloads rawURL into w, a partial file of an earlier attempt or an
// empty one. rec (may be nil) is the URL's record; Fetch updates it to
// describe w on return, even on a failed download, so the caller can store it
// to resume later, and sets BlobID to "" when new content was written (the
// caller fills it in after importing w).
//
//   - rec fresh: nothing is requested, Result{NotModified, Fresh}.
//   - rec with ETag and BlobID: If-None-Match; 304 gives NotModified.
//   - w not empty and rec with a strong ETag but no BlobID: Range from the
//     size of w with If-Range; 206 appends, 200 restarts from zero.
//   - 202: ErrSignatureNotReady. Other statuses >= 300: *StatusError.
func (f *Fetcher) Fetch(ctx context.Context, rawURL string, w *os.File, rec *Record) (Result, error) {
	if _, err := checkScheme(rawURL, f.opts); err != nil {
		return Result{}, fmt.Errorf("fetch: %w", err)
	}
	if rec == nil {
		rec = &Record{}
	}
	if rec.Fresh(f.now()) {
		return Result{NotModified: true, Fresh: true, ETag: rec.ETag, MaxAge: rec.MaxAge, ContentLength: -1}, nil
	}
	st, err := w.Stat()
	if err != nil {
		return Result{}, fmt.Errorf("fetch %s: %w", rawURL, err)
	}
	have := st.Size()
	conditional := rec.ETag != "" && rec.BlobID != ""
	resume := !conditional && have > 0 && rec.ETag != "" && !strings.HasPrefix(rec.ETag, "W/")
	res, err := f.fetch(ctx, rawURL, w, rec, have, conditional, resume)
	if errors.Is(err, errRestart) {
		// The server would not continue the partial file; start over.
		res, err = f.fetch(ctx, rawURL, w, rec, 0, false, false)
	}
	return res, err
}

// errRestart asks Fetch to retry without Range.
var errRestart = errors.New("restart download")

func (f *Fetcher) fetch(ctx context.Context, rawURL string, w *os.File, rec *Record, have int64, conditional, resume bool) (Result, error) {
	log := f.opts.logger()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return Result{}, fmt.Errorf("fetch %s: %w", rawURL, err)
	}
	// Byte ranges and lengths must be those of the stored representation,
	// so no transparent gzip.
	req.Header.Set("Accept-Encoding", "identity")
	if conditional {
		req.Header.Set("If-None-Match", rec.ETag)
	}
	if resume {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
		req.Header.Set("If-Range", rec.ETag)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return Result{}, fmt.Errorf("fetch %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	now := f.now()
	etag := resp.Header.Get("ETag")
	maxAge := parseMaxAge(resp.Header.Values("Cache-Control"))

	var offset, total int64
	switch {
	case resp.StatusCode == http.StatusNotModified && conditional:
		if etag != "" {
			rec.ETag = etag
		}
		rec.MaxAge, rec.Fetched = maxAge, now
		return Result{NotModified: true, ETag: rec.ETag, MaxAge: maxAge, ContentLength: -1}, nil
	case resp.StatusCode == http.StatusAccepted:
		return Result{}, fmt.Errorf("fetch %s: %w", rawURL, ErrSignatureNotReady)
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && resume:
		log.Debug("range not satisfiable, restarting", "url", rawURL, "have", have)
		return Result{}, errRestart
	case resp.StatusCode == http.StatusPartialContent && resume:
		start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != have || (etag != "" && etag != rec.ETag) {
			log.Debug("unusable partial content, restarting", "url", rawURL, "content_range", resp.Header.Get("Content-Range"))
			return Result{}, errRestart
		}
		offset, total = have, size
	case resp.StatusCode == http.StatusOK:
		offset, total = 0, resp.ContentLength
		rec.ETag, rec.BlobID = etag, ""
	default:
		return Result{}, &StatusError{URL: rawURL, Status: resp.StatusCode}
	}
	if offset == 0 {
		if err := w.Truncate(0); err != nil {
			return Result{}, fmt.Errorf("fetch %s: %w", rawURL, err)
		}
	}
	if _, err := w.Seek(offset, io.SeekStart); err != nil {
		return Result{}, fmt.Errorf("fetch %s: %w", rawURL, err)
	}
	if offset > 0 {
		log.Debug("resuming download", "url", rawURL, "offset", offset)
	}
	rec.BlobID = ""
	var dst io.Writer = w
	if f.opts.Progress != nil {
		dst = &progressWriter{w: w, done: offset, total: total, fn: f.opts.Progress}
		f.opts.Progress(offset, total)
	}
	n, err := io.Copy(dst, resp.Body)
	if err != nil {
		return Result{}, fmt.Errorf("fetch %s: %w", rawURL, err)
	}
	if total >= 0 && offset+n != total {
		return Result{}, fmt.Errorf("fetch %s: got %d bytes, want %d", rawURL, offset+n, total)
	}
	rec.MaxAge, rec.Fetched = maxAge, now
	if total < 0 {
		total = offset + n
	}
	return Result{ETag: rec.ETag, MaxAge: maxAge, ContentLength: total}, nil
}

type progressWriter struct {
	w           io.Writer
	done, total int64
	fn          func(done, total int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += int64(n)
	p.fn(p.done, p.total)
	return n, err
}

// parseContentRange parses "bytes START-END/SIZE"; size is -1 for "*".
func parseContentRange(s string) (start, size int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, sz, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, false
	}
	if sz == "*" {
		return start, -1, true
	}
	size, err := strconv.ParseInt(sz, 10, 64)
	if err != nil || size <= end {
		return 0, 0, false
	}
	return start, size, true
}

// parseMaxAge returns the Cache-Control max-age (RFC 9111 5.2.2.1), or 0 if
// absent or if no-store or no-cache forbid reuse without asking.
func parseMaxAge(values []string) time.Duration {
	var age time.Duration
	for _, v := range values {
		for d := range strings.SplitSeq(v, ",") {
			k, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "no-store", "no-cache":
				return 0
			case "max-age":
				secs, err := strconv.ParseUint(strings.Trim(strings.TrimSpace(val), `"`), 10, 64)
				if err != nil {
					continue
				}
				if secs > uint64(maxMaxAge/time.Second) {
					age = maxMaxAge
				} else {
					age = time.Duration(secs) * time.Second
				}
			}
		}
	}
	return age
}

// FetchKey downloads an armored public key from rawURL, at most MaxKeySize
// bytes.
func (f *Fetcher) FetchKey(ctx context.Context, rawURL string) ([]byte, error) {
	if _, err := checkScheme(rawURL, f.opts); err != nil {
		return nil, fmt.Errorf("fetch key: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch key %s: %w", rawURL, err)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch key %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch key: %w", &StatusError{URL: rawURL, Status: resp.StatusCode})
	}
	if resp.ContentLength > MaxKeySize {
		return nil, fmt.Errorf("fetch key %s: %d bytes exceeds the %d byte limit", rawURL, resp.ContentLength, MaxKeySize)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxKeySize+1))
	if err != nil {
		return nil, fmt.Errorf("fetch key %s: %w", rawURL, err)
	}
	if len(data) > MaxKeySize {
		return nil, fmt.Errorf("fetch key %s: body exceeds the %d byte limit", rawURL, MaxKeySize)
	}
	return data, nil
}
