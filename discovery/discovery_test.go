package discovery

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDiscoverTemplates(t *testing.T) {
	t.Parallel()
	goos, arch := runtime.GOOS, AppcArch(runtime.GOARCH)
	srv := newTestServer(t, true, pages(map[string]string{
		"example.com/app": page(
			[2]string{"ac-discovery", "example.com/app https://cdn.example.com/{name}/{channel}-{version}-{os}-{arch}.{ext}"},
			[2]string{"ac-discovery", "example.com/app https://example.com/dl/{name}-{version}-{os}-{arch}.{ext}"},
			[2]string{"ac-discovery", "example.com/other https://wrong.example.com/{name}.{ext}"},
			[2]string{"ac-discovery-pubkeys", "example.com https://example.com/pubkeys.gpg"},
			[2]string{"ac-discovery-pubkeys", "example.com/nope https://example.com/nope.gpg"},
		),
	}))
	o := options(srv, nil)

	tests := []struct {
		name   string
		labels map[string]string
		want   []ACIEndpoint
	}{
		{
			name: "defaults",
			want: []ACIEndpoint{{
				ACI: "https://example.com/dl/example.com/app-latest-" + goos + "-" + arch + ".aci",
				ASC: "https://example.com/dl/example.com/app-latest-" + goos + "-" + arch + ".aci.asc",
			}},
		},
		{
			name:   "version os arch",
			labels: map[string]string{"version": "1.2.0", "os": "linux", "arch": "aarch64"},
			want: []ACIEndpoint{{
				ACI: "https://example.com/dl/example.com/app-1.2.0-linux-aarch64.aci",
				ASC: "https://example.com/dl/example.com/app-1.2.0-linux-aarch64.aci.asc",
			}},
		},
		{
			name:   "extra label fills the first template",
			labels: map[string]string{"version": "2", "channel": "alpha", "name": "ignored"},
			want: []ACIEndpoint{
				{
					ACI: "https://cdn.example.com/example.com/app/alpha-2-" + goos + "-" + arch + ".aci",
					ASC: "https://cdn.example.com/example.com/app/alpha-2-" + goos + "-" + arch + ".aci.asc",
				},
				{
					ACI: "https://example.com/dl/example.com/app-2-" + goos + "-" + arch + ".aci",
					ASC: "https://example.com/dl/example.com/app-2-" + goos + "-" + arch + ".aci.asc",
				},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Discover(t.Context(), App{Name: "example.com/app", Labels: tc.labels}, o)
			if err != nil {
				t.Fatalf("Discover: %v", err)
			}
			want := Endpoints{ACIEndpoints: tc.want, Keys: []string{"https://example.com/pubkeys.gpg"}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Discover mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDiscoverWalksUp(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, true, pages(map[string]string{
		"example.com": page(
			[2]string{"ac-discovery", "example.com https://example.com/{name}-{version}.{ext}"},
			[2]string{"ac-discovery-pubkeys", "example.com https://example.com/key.gpg"},
		),
	}))
	got, err := Discover(t.Context(), App{Name: "example.com/group/app", Labels: map[string]string{"version": "3"}}, options(srv, nil))
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	want := Endpoints{
		ACIEndpoints: []ACIEndpoint{{ACI: "https://example.com/example.com/group/app-3.aci", ASC: "https://example.com/example.com/group/app-3.aci.asc"}},
		Keys:         []string{"https://example.com/key.gpg"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Discover mismatch (-want +got):\n%s", diff)
	}
	for _, p := range []string{"example.com/group/app", "example.com/group", "example.com"} {
		if n := srv.count(p); n != 1 {
			t.Errorf("requests for %s = %d, want 1", p, n)
		}
	}
}

func TestDiscoverKeysWalkFurtherThanTemplates(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, true, pages(map[string]string{
		"example.com/app": page([2]string{"ac-discovery", "example.com/app https://example.com/{name}.{ext}"}),
		"example.com":     page([2]string{"ac-discovery-pubkeys", "example.com https://example.com/key.gpg"}),
	}))
	got, err := Discover(t.Context(), App{Name: "example.com/app"}, options(srv, nil))
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	if diff := cmp.Diff([]string{"https://example.com/key.gpg"}, got.Keys); diff != "" {
		t.Errorf("keys mismatch (-want +got):\n%s", diff)
	}
	if len(got.ACIEndpoints) != 1 || got.ACIEndpoints[0].ACI != "https://example.com/example.com/app.aci" {
		t.Errorf("endpoints = %+v", got.ACIEndpoints)
	}
}

func TestDiscoverKeys(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, true, pages(map[string]string{
		"example.com": page(
			[2]string{"ac-discovery-pubkeys", "example.com/etcd https://example.com/etcd.gpg"},
			[2]string{"ac-discovery-pubkeys", "example.com https://example.com/all.gpg"},
			[2]string{"ac-discovery-pubkeys", "example.com/other https://example.com/other.gpg"},
			[2]string{"ac-discovery-pubkeys", "example.com relative/key.gpg"},
		),
	}))
	o := options(srv, nil)
	got, err := DiscoverKeys(t.Context(), "example.com/etcd", o)
	if err != nil {
		t.Fatalf("DiscoverKeys: %v", err)
	}
	if diff := cmp.Diff([]string{"https://example.com/etcd.gpg", "https://example.com/all.gpg"}, got); diff != "" {
		t.Errorf("DiscoverKeys mismatch (-want +got):\n%s", diff)
	}

	_, err = DiscoverKeys(t.Context(), "nokeys.example.com/x", o)
	var nf *NotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("DiscoverKeys without keys: err = %v, want *NotFoundError", err)
	}
	if len(nf.Attempts) != 2 {
		t.Errorf("attempts = %+v, want 2", nf.Attempts)
	}
}

func TestDiscoverNoMatch(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, true, pages(map[string]string{
		"example.com/app": page(
			[2]string{"ac-discovery", "example.com/other https://example.com/{name}.{ext}"},
			[2]string{"ac-discovery", "example.com/app https://example.com/{name}-{unknown}.{ext}"},
			[2]string{"ac-discovery", "example.com/app ftp://example.com/{name}.{ext}"},
		),
	}))
	_, err := Discover(t.Context(), App{Name: "example.com/app", Labels: map[string]string{"version": "1.0"}}, options(srv, nil))
	var nf *NotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("err = %v, want *NotFoundError", err)
	}
	msg := err.Error()
	t.Log(msg)
	for _, want := range []string{"example.com/app:1.0", "https://example.com/app?ac-discovery=1", "https://example.com?ac-discovery=1", "404"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusNotFound {
		t.Errorf("error does not carry the 404 of the parent page: %v", err)
	}
}

func TestDiscoverRedirectLoop(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, true, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.String(), http.StatusFound)
	})
	_, err := Discover(t.Context(), App{Name: "example.com/app"}, options(srv, nil))
	if !errors.Is(err, ErrTooManyRedirects) {
		t.Fatalf("err = %v, want ErrTooManyRedirects", err)
	}
	// One request plus MaxRedirects redirects, for each of the two prefixes.
	if n := srv.count("example.com/app"); n != MaxRedirects+1 {
		t.Errorf("requests for example.com/app = %d, want %d", n, MaxRedirects+1)
	}
}

func TestDiscoverFollowsRedirect(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, true, func(w http.ResponseWriter, r *http.Request) {
		if r.Host == "example.com" {
			http.Redirect(w, r, "https://www.example.com/meta?ac-discovery=1", http.StatusMovedPermanently)
			return
		}
		pages(map[string]string{"www.example.com/meta": page(
			[2]string{"ac-discovery", "example.com https://www.example.com/{name}.{ext}"},
		)})(w, r)
	})
	got, err := Discover(t.Context(), App{Name: "example.com/app"}, options(srv, nil))
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	if got.ACIEndpoints[0].ACI != "https://www.example.com/example.com/app.aci" {
		t.Errorf("endpoints = %+v", got.ACIEndpoints)
	}
}

func TestDiscoverInsecureHTTP(t *testing.T) {
	t.Parallel()
	tlsSrv := newTestServer(t, true, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	})
	plainSrv := newTestServer(t, false, pages(map[string]string{
		"example.com/app": page([2]string{"ac-discovery", "example.com/app http://example.com/{name}.{ext}"}),
	}))
	o := options(tlsSrv, plainSrv)

	_, err := Discover(t.Context(), App{Name: "example.com/app"}, o)
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusInternalServerError {
		t.Fatalf("secure discovery: err = %v, want the https 500", err)
	}
	if n := plainSrv.total(); n != 0 {
		t.Errorf("plain http server got %d requests without InsecureHTTP", n)
	}

	o.InsecureHTTP = true
	got, err := Discover(t.Context(), App{Name: "example.com/app"}, o)
	if err != nil {
		t.Fatalf("insecure discovery: %v", err)
	}
	if got.ACIEndpoints[0].ACI != "http://example.com/example.com/app.aci" {
		t.Errorf("endpoints = %+v", got.ACIEndpoints)
	}
}

func TestDiscoverRefusesDowngradeRedirect(t *testing.T) {
	t.Parallel()
	tlsSrv := newTestServer(t, true, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://example.com"+r.URL.RequestURI(), http.StatusFound)
	})
	plainSrv := newTestServer(t, false, pages(map[string]string{
		"example.com/app": page([2]string{"ac-discovery", "example.com/app https://example.com/{name}.{ext}"}),
	}))
	_, err := Discover(t.Context(), App{Name: "example.com/app"}, options(tlsSrv, plainSrv))
	if err == nil || !strings.Contains(err.Error(), "non-https") {
		t.Fatalf("err = %v, want refused downgrade", err)
	}
	if n := plainSrv.total(); n != 0 {
		t.Errorf("plain http server got %d requests", n)
	}
}

func TestDiscoverUntrustedCertificate(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, true, pages(map[string]string{
		"example.com/app": page([2]string{"ac-discovery", "example.com/app https://example.com/{name}.{ext}"}),
	}))
	o := options(srv, nil)
	o.RootCAs = nil // system roots do not know httptest's CA
	if _, err := Discover(t.Context(), App{Name: "example.com/app"}, o); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err = %v, want a certificate error", err)
	}
	o.InsecureTLS = true
	if _, err := Discover(t.Context(), App{Name: "example.com/app"}, o); err != nil {
		t.Fatalf("Discover with InsecureTLS: %v", err)
	}
}

func TestDiscoverCanceled(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, true, pages(nil))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := Discover(ctx, App{Name: "example.com/a/b/c"}, options(srv, nil))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := srv.total(); n != 0 {
		t.Errorf("%d requests after cancel", n)
	}
}

func TestDiscoverInvalidName(t *testing.T) {
	t.Parallel()
	if _, err := Discover(t.Context(), App{Name: "Example.com/App"}, Options{}); err == nil {
		t.Fatal("Discover accepted an upper-case name")
	}
}

func TestParseApp(t *testing.T) {
	t.Parallel()
	got, err := ParseApp("example.com/app:1.0.0,channel=alpha")
	if err != nil {
		t.Fatalf("ParseApp: %v", err)
	}
	want := App{Name: "example.com/app", Labels: map[string]string{"version": "1.0.0", "channel": "alpha"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseApp mismatch (-want +got):\n%s", diff)
	}
	if got.String() != "example.com/app:1.0.0" {
		t.Errorf("String() = %q", got.String())
	}
	if _, err := ParseApp("example.com/app:1:2"); err == nil {
		t.Error("ParseApp accepted two colons")
	}
}

func TestFillTemplate(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"name": "a/b", "version": "{os}", "os": "linux"}
	tests := []struct {
		tpl  string
		want string
		ok   bool
	}{
		{"https://x/{name}-{os}", "https://x/a/b-linux", true},
		{"https://x/{version}", "https://x/{os}", true}, // values are not expanded again
		{"https://x/{arch}", "", false},
		{"https://x/{}", "", false},
		{"https://x/{name", "https://x/{name", true},
		{"https://x/{a{name}", "", false},
		{"https://x/}{name}{", "https://x/}a/b{", true},
		{"no vars", "no vars", true},
	}
	for _, tc := range tests {
		got, ok := fillTemplate(tc.tpl, vars)
		if got != tc.want || ok != tc.ok {
			t.Errorf("fillTemplate(%q) = %q, %v; want %q, %v", tc.tpl, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseMeta(t *testing.T) {
	t.Parallel()
	in := `<html><head>
<meta name="ac-discovery" content="example.com https://example.com/{name}.{ext}">
<META NAME="ac-discovery-pubkeys" CONTENT="  example.com   https://example.com/k.gpg ">
<meta name="ac-discovery" content="only-one-field">
<meta name="description" content="example.com https://x">
<meta name="ac-discovery" content="a b c">
<meta name="ac-discovery-pubkeys" content="example.org https://example.org/k.gpg"/>
</head><body><meta name="ac-discovery" content="late https://late/{name}"></body></html>`
	want := []Meta{
		{Name: "ac-discovery", Prefix: "example.com", Template: "https://example.com/{name}.{ext}"},
		{Name: "ac-discovery-pubkeys", Prefix: "example.com", Template: "https://example.com/k.gpg"},
		{Name: "ac-discovery-pubkeys", Prefix: "example.org", Template: "https://example.org/k.gpg"},
		{Name: "ac-discovery", Prefix: "late", Template: "https://late/{name}"},
	}
	if diff := cmp.Diff(want, ParseMeta(strings.NewReader(in))); diff != "" {
		t.Errorf("ParseMeta mismatch (-want +got):\n%s", diff)
	}
}

func TestAppcArch(t *testing.T) {
	t.Parallel()
	for goarch, want := range map[string]string{"amd64": "amd64", "arm64": "aarch64", "386": "i386", "arm": "armv7l", "riscv64": "riscv64", "ppc64le": "ppc64le"} {
		if got := AppcArch(goarch); got != want {
			t.Errorf("AppcArch(%q) = %q, want %q", goarch, got, want)
		}
	}
}

func TestDiscoverCABundleAndPort(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, true, pages(map[string]string{
		"example.com:8443/app": page([2]string{"ac-discovery", "example.com https://example.com:8443/{name}.{ext}"}),
	}))
	o := options(srv, nil)
	o.RootCAs = nil
	o.CABundle = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.srv.Certificate().Raw})
	o.Port = 8443
	got, err := Discover(t.Context(), App{Name: "example.com/app"}, o)
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	if got.ACIEndpoints[0].ACI != "https://example.com:8443/example.com/app.aci" {
		t.Errorf("endpoints = %+v", got.ACIEndpoints)
	}

	o.CABundle = []byte("not pem")
	if _, err := Discover(t.Context(), App{Name: "example.com/app"}, o); err == nil || !strings.Contains(err.Error(), "ca bundle") {
		t.Errorf("bad CA bundle: err = %v", err)
	}
}
