package discovery

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// testServer is an httptest server on 127.0.0.1 that answers for every host
// name: the client's dialer sends every connection to it, and handlers look
// at r.Host. It counts requests per host+path (without a trailing slash).
type testServer struct {
	srv *httptest.Server

	mu sync.Mutex
	// hits counts requests by r.Host+r.URL.Path; guarded by mu.
	hits map[string]int
	// seen records the Authorization header per r.Host; guarded by mu.
	seen map[string][]string
}

func newTestServer(t *testing.T, useTLS bool, h http.HandlerFunc) *testServer {
	t.Helper()
	s := &testServer{hits: map[string]int{}, seen: map[string][]string{}}
	wrapped := func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[strings.TrimSuffix(r.Host+r.URL.Path, "/")]++
		s.seen[r.Host] = append(s.seen[r.Host], r.Header.Get("Authorization"))
		s.mu.Unlock()
		h(w, r)
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(wrapped))
	// Handshake failures are expected in the untrusted certificate test.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if useTLS {
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	t.Cleanup(s.srv.Close)
	return s
}

func (s *testServer) count(hostPath string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[hostPath]
}

func (s *testServer) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.hits {
		n += c
	}
	return n
}

func (s *testServer) auth(host string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen[host]...)
}

// options pins the client to the TLS server's CA and dials tlsSrv for every
// address, except port 80 which goes to plainSrv when given.
func options(tlsSrv, plainSrv *testServer) Options {
	pool := x509.NewCertPool()
	if tlsSrv != nil {
		pool.AddCert(tlsSrv.srv.Certificate())
	}
	var d net.Dialer
	return Options{
		RootCAs: pool,
		Proxy:   func(*http.Request) (*url.URL, error) { return nil, nil },
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			target := ""
			if tlsSrv != nil {
				target = tlsSrv.srv.Listener.Addr().String()
			}
			if strings.HasSuffix(addr, ":80") && plainSrv != nil {
				target = plainSrv.srv.Listener.Addr().String()
			}
			if target == "" {
				return nil, fmt.Errorf("test dialer: no server for %s", addr)
			}
			return d.DialContext(ctx, network, target)
		},
	}
}

// page is a discovery HTML page with the given meta tags (name, content).
func page(metas ...[2]string) string {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><head>\n")
	for _, m := range metas {
		fmt.Fprintf(&b, "<meta name=%q content=%q>\n", m[0], m[1])
	}
	b.WriteString("</head><body>discovery</body></html>\n")
	return b.String()
}

// pages serves discovery pages keyed by host+path for ?ac-discovery=1
// requests, 404 otherwise.
func pages(m map[string]string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, ok := m[strings.TrimSuffix(r.Host+r.URL.Path, "/")]
		if !ok || r.URL.Query().Get("ac-discovery") != "1" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, body)
	}
}
