package testutil

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// ImageServer is an https server for appc meta discovery: it answers every
// "?ac-discovery=1" page with ac-discovery and ac-discovery-pubkeys meta tags
// for its host, and serves the files added to it (images, signatures, keys)
// with ETag, Cache-Control max-age, Range/If-Range and If-None-Match, and
// optionally basic auth, 202 answers and a truncated first download. It
// counts every request per path.
//
// It listens on port 443 of a random 127.x.y.z address: appc discovery has
// no port in image names, and the address makes the image name prefix
// (Host). The certificate is issued by a CA made for the test (CAPEM).
type ImageServer struct {
	// Host is the IP address, the first component of image names.
	Host string
	// CAPEM is the PEM certificate of the CA that issued the server's.
	CAPEM []byte

	srv *httptest.Server

	// mu guards everything below.
	mu       sync.Mutex
	files    map[string]*ServedFile
	counts   map[string]int
	log      []string // "METHOD PATH [Range]" in order
	pubkeys  []string // paths announced as ac-discovery-pubkeys
	template string
	user     string
	pass     string
	page     func(path string) (string, bool)
}

// ServedFile is one file of an ImageServer and how it is served.
type ServedFile struct {
	Body []byte
	// MaxAge, if set, is sent as Cache-Control: max-age.
	MaxAge time.Duration
	// Accepted is how many more GETs are answered 202 Accepted.
	Accepted int
	// TruncateOnce makes the next GET send half the body and break the
	// connection.
	TruncateOnce bool
	// Auth requires the server's basic credentials.
	Auth bool
}

// NewImageServer starts an ImageServer and stops it when the test ends.
func NewImageServer(t testing.TB) *ImageServer {
	t.Helper()
	s := &ImageServer{files: map[string]*ServedFile{}, counts: map[string]int{}}
	var l net.Listener
	var err error
	for range 50 {
		s.Host = fmt.Sprintf("127.%d.%d.%d", mrand.IntN(250)+2, mrand.IntN(250)+1, mrand.IntN(250)+1)
		if l, err = net.Listen("tcp", s.Host+":443"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("listen on a 127/8 address, port 443: %v", err)
	}
	caPEM, cert := issueCert(t, s.Host)
	s.CAPEM = caPEM
	s.template = "https://" + s.Host + "/images/{name}-{version}-{os}-{arch}.{ext}"
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.Listener.Close()
	s.srv.Listener = l
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	return s
}

// issueCert makes a CA and a server certificate for ip signed by it.
func issueCert(t testing.TB, ip string) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rkt-ng test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: ip},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP(ip)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// Trust makes rkt of c trust the server's CA: <local-config>/ca.d/<host>.pem.
func (s *ImageServer) Trust(t testing.TB, c *Ctx) {
	t.Helper()
	dir := filepath.Join(c.LocalConfig, "ca.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, s.Host+".pem"), s.CAPEM, 0o644); err != nil {
		t.Fatal(err)
	}
}

// SetBasicAuth sets the credentials files with Auth require.
func (s *ImageServer) SetBasicAuth(user, pass string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user, s.pass = user, pass
}

// WriteAuthConfig writes an auth.d file giving rkt of c the server's basic
// credentials.
func (s *ImageServer) WriteAuthConfig(t testing.TB, c *Ctx) {
	t.Helper()
	dir := filepath.Join(c.LocalConfig, "auth.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	body := fmt.Sprintf(`{"rktKind":"auth","rktVersion":"v1","domains":[%q],"type":"basic","credentials":{"user":%q,"password":%q}}`, s.Host, s.user, s.pass)
	s.mu.Unlock()
	if err := os.WriteFile(filepath.Join(dir, "test.json"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// SetPage replaces the discovery page: page(path) gives the HTML for the
// request path, or false for 404.
func (s *ImageServer) SetPage(page func(path string) (string, bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.page = page
}

// ImagePath is the path where the template puts the image name with
// version and ext (aci or aci.asc), on linux/amd64 as appc names it.
func (s *ImageServer) ImagePath(name, version, os, arch, ext string) string {
	return fmt.Sprintf("/images/%s-%s-%s-%s.%s", name, version, os, arch, ext)
}

// AddImage serves an ACI file and its signature (if sigPath is not "") at
// the discovery template's URLs for name:version on linux/arch, and returns
// the image's path.
func (s *ImageServer) AddImage(t testing.TB, name, version, arch, aciPath, sigPath string, f ServedFile) string {
	t.Helper()
	body, err := os.ReadFile(aciPath)
	if err != nil {
		t.Fatal(err)
	}
	p := s.ImagePath(name, version, "linux", arch, "aci")
	f.Body = body
	s.Add(p, f)
	if sigPath != "" {
		sig, err := os.ReadFile(sigPath)
		if err != nil {
			t.Fatal(err)
		}
		s.Add(p+".asc", ServedFile{Body: sig, Auth: f.Auth})
	}
	return p
}

// Add serves f at path.
func (s *ImageServer) Add(path string, f ServedFile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ff := f
	s.files[path] = &ff
}

// Update changes the file at path under the server's lock.
func (s *ImageServer) Update(path string, fn func(*ServedFile)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s.files[path])
}

// AddKey serves an armored public key and announces it in discovery pages.
func (s *ImageServer) AddKey(armored []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := fmt.Sprintf("/keys/%d.asc", len(s.pubkeys))
	s.files[p] = &ServedFile{Body: armored}
	s.pubkeys = append(s.pubkeys, p)
}

// Count is the number of requests for path so far; "" counts all.
func (s *ImageServer) Count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if path == "" {
		n := 0
		for _, c := range s.counts {
			n += c
		}
		return n
	}
	return s.counts[path]
}

// Log returns the requests so far, "GET /path" or "GET /path Range=...".
func (s *ImageServer) Log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

func (s *ImageServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.counts[r.URL.Path]++
	entry := r.Method + " " + r.URL.Path
	if rg := r.Header.Get("Range"); rg != "" {
		entry += " Range=" + rg
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		entry += " If-None-Match"
	}
	s.log = append(s.log, entry)
	if r.URL.Query().Get("ac-discovery") == "1" {
		page, ok := s.discoveryPage(r.URL.Path)
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, page)
		return
	}
	f, ok := s.files[r.URL.Path]
	if !ok {
		s.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	if f.Auth {
		u, p, ok := r.BasicAuth()
		if !ok || u != s.user || p != s.pass {
			s.mu.Unlock()
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
	}
	if f.Accepted > 0 {
		f.Accepted--
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		return
	}
	truncate := f.TruncateOnce
	f.TruncateOnce = false
	body, maxAge := f.Body, f.MaxAge
	s.mu.Unlock()

	sum := sha256.Sum256(body)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
	if maxAge > 0 {
		w.Header().Set("Cache-Control", fmt.Sprintf("max-age=%d", int(maxAge.Seconds())))
	}
	if truncate && r.Header.Get("Range") == "" {
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // break the connection mid-body
	}
	http.ServeContent(w, r, filepath.Base(r.URL.Path), time.Time{}, bytes.NewReader(body))
}

// discoveryPage must be called with mu held.
func (s *ImageServer) discoveryPage(path string) (string, bool) {
	if s.page != nil {
		return s.page(path)
	}
	var b strings.Builder
	b.WriteString("<html><head>\n")
	fmt.Fprintf(&b, "<meta name=\"ac-discovery\" content=\"%s %s\">\n", s.Host, s.template)
	for _, k := range s.pubkeys {
		fmt.Fprintf(&b, "<meta name=\"ac-discovery-pubkeys\" content=\"%s https://%s%s\">\n", s.Host, s.Host, k)
	}
	b.WriteString("</head></html>\n")
	return b.String(), true
}
