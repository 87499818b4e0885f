package discovery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"
)

// MaxRedirects is the number of redirects one request may follow.
const MaxRedirects = 10

// Default timeouts of the HTTP client. They bound each phase of a request; a
// whole download is bounded only by the caller's context, since images can be
// large.
const (
	defaultDialTimeout     = 30 * time.Second
	defaultTLSTimeout      = 15 * time.Second
	defaultResponseTimeout = 60 * time.Second
)

// ErrTooManyRedirects is returned (wrapped) when a request exceeds MaxRedirects.
var ErrTooManyRedirects = errors.New("too many redirects")

// Headerer gives the extra request headers (credentials) for a host. *Auth
// implements it.
type Headerer interface {
	Header(host string) http.Header
}

// Options configures the HTTP side of discovery and fetching.
type Options struct {
	// InsecureHTTP allows plain http: discovery falls back to http when https
	// fails, and http:// image, signature and key URLs are accepted.
	InsecureHTTP bool
	// InsecureTLS skips TLS certificate verification.
	InsecureTLS bool
	// RootCAs, if set, replaces the system roots.
	RootCAs *x509.CertPool
	// CABundle is PEM certificates trusted in addition to the system roots
	// (ignored when RootCAs is set).
	CABundle []byte
	// Auth gives credentials per host. Headers are only sent over https, or
	// over http when InsecureHTTP is set.
	Auth Headerer
	// Port, if non-zero, is used for discovery URLs instead of 443/80.
	Port int
	// DialContext replaces the network dialer (tests dial a local server for
	// every host name).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Proxy selects a proxy per request; nil means http.ProxyFromEnvironment.
	Proxy func(*http.Request) (*url.URL, error)
	// ResponseTimeout bounds the wait for response headers; zero means 60s.
	ResponseTimeout time.Duration
	// Progress, if set, is called while a body is downloaded with the bytes
	// written so far (including resumed ones) and the total, or -1 if unknown.
	Progress func(done, total int64)
	// Logger receives debug messages; nil discards them.
	Logger *slog.Logger
}

func (o *Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// StatusError is an HTTP response status that is not usable.
type StatusError struct {
	URL    string
	Status int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: HTTP %d %s", e.URL, e.Status, http.StatusText(e.Status))
}

// newClient builds an http.Client that follows o: its own TLS roots and
// verification, credentials per host applied at every hop, at most
// MaxRedirects redirects and no https to http downgrade unless InsecureHTTP.
func newClient(o Options) (*http.Client, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case o.InsecureTLS:
		tlsConf.InsecureSkipVerify = true
	case o.RootCAs != nil:
		tlsConf.RootCAs = o.RootCAs
	case len(o.CABundle) > 0:
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(o.CABundle) {
			return nil, errors.New("ca bundle: no PEM certificate found")
		}
		tlsConf.RootCAs = pool
	}
	dial := o.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: defaultDialTimeout, KeepAlive: 30 * time.Second}).DialContext
	}
	proxy := o.Proxy
	if proxy == nil {
		proxy = http.ProxyFromEnvironment
	}
	respTimeout := o.ResponseTimeout
	if respTimeout == 0 {
		respTimeout = defaultResponseTimeout
	}
	tr := &http.Transport{
		Proxy:                 proxy,
		DialContext:           dial,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   defaultTLSTimeout,
		ResponseHeaderTimeout: respTimeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          10,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	var rt http.RoundTripper = tr
	if o.Auth != nil {
		rt = &authTransport{base: tr, auth: o.Auth, allowHTTP: o.InsecureHTTP}
	}
	return &http.Client{
		Transport: rt,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > MaxRedirects {
				return fmt.Errorf("%w (more than %d) from %s to %s", ErrTooManyRedirects, MaxRedirects, via[0].URL.Redacted(), req.URL.Redacted())
			}
			if req.URL.Scheme != "https" && !o.InsecureHTTP {
				return fmt.Errorf("redirect from %s to non-https %s refused (needs insecure http)", via[len(via)-1].URL.Redacted(), req.URL.Redacted())
			}
			return nil
		},
	}, nil
}

// authTransport adds the credentials of each request's own host, so a
// redirect to another host never carries the first host's credentials.
type authTransport struct {
	base      http.RoundTripper
	auth      Headerer
	allowHTTP bool
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" && !t.allowHTTP {
		return t.base.RoundTrip(req)
	}
	h := t.auth.Header(req.URL.Host)
	if len(h) == 0 {
		return t.base.RoundTrip(req)
	}
	// A RoundTripper must not modify the caller's request.
	r := req.Clone(req.Context())
	for k, v := range h {
		r.Header[k] = append([]string(nil), v...)
	}
	return t.base.RoundTrip(r)
}

// checkScheme refuses URLs that are not https, or http with InsecureHTTP.
func checkScheme(raw string, o Options) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parse url %q: %w", raw, err)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && o.InsecureHTTP:
	case u.Scheme == "http":
		return nil, fmt.Errorf("%s: plain http not allowed (needs insecure http)", u.Redacted())
	default:
		return nil, fmt.Errorf("%s: unsupported url scheme %q", u.Redacted(), u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%s: url without host", u.Redacted())
	}
	return u, nil
}
