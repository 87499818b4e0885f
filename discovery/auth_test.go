package discovery

import (
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func writeAuth(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	d := filepath.Join(dir, "auth.d")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(d, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestLoadAuth(t *testing.T) {
	t.Parallel()
	system, local := t.TempDir(), t.TempDir()
	writeAuth(t, system, map[string]string{
		"basic.json": `{"rktKind":"auth","rktVersion":"v1","domains":["example.com","Shared.Example.com"],"type":"basic","credentials":{"user":"sys","password":"syspw"}}`,
		"oauth.json": `{"rktKind":"auth","rktVersion":"v1","domains":["auth.example.com"],"type":"oauth","credentials":{"token":"tok"}}`,
		"docker.json": `{"rktKind":"dockerAuth","rktVersion":"v1","registries":["quay.io","registry.example.com:5000"],
			"credentials":{"user":"duser","password":"dpw"}}`,
		"README": "not json, ignored",
	})
	writeAuth(t, local, map[string]string{
		"override.json": `{"rktKind":"auth","rktVersion":"v1","domains":["example.com"],"type":"basic","credentials":{"user":"local","password":"localpw"}}`,
		"docker.json":   `{"rktKind":"dockerAuth","rktVersion":"v1","registries":["quay.io"],"credentials":{"user":"luser","password":"lpw"}}`,
	})
	a, err := LoadAuth(local, system)
	if err != nil {
		t.Fatalf("LoadAuth: %v", err)
	}
	tests := []struct {
		host string
		want http.Header
	}{
		{"example.com", http.Header{"Authorization": {basic("local", "localpw")}}},
		{"example.com:8443", http.Header{"Authorization": {basic("local", "localpw")}}},
		{"shared.example.com", http.Header{"Authorization": {basic("sys", "syspw")}}},
		{"auth.example.com", http.Header{"Authorization": {"Bearer tok"}}},
		{"other.example.com", nil},
		{"example.org", nil},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, a.Header(tc.host)); diff != "" {
			t.Errorf("Header(%q) mismatch (-want +got):\n%s", tc.host, diff)
		}
	}
	// The returned header is a copy.
	a.Header("example.com").Set("Authorization", "changed")
	if got := a.Header("example.com").Get("Authorization"); got != basic("local", "localpw") {
		t.Errorf("Header was changed through a returned copy: %q", got)
	}

	dockerTests := []struct {
		registry, user, pass string
		ok                   bool
	}{
		{"quay.io", "luser", "lpw", true},
		{"registry.example.com:5000", "duser", "dpw", true},
		{"registry.example.com", "", "", false},
		{"docker.io", "", "", false},
	}
	for _, tc := range dockerTests {
		u, p, ok := a.Docker(tc.registry)
		if u != tc.user || p != tc.pass || ok != tc.ok {
			t.Errorf("Docker(%q) = %q, %q, %v; want %q, %q, %v", tc.registry, u, p, ok, tc.user, tc.pass, tc.ok)
		}
	}

	var none *Auth
	if h := none.Header("example.com"); h != nil {
		t.Errorf("nil Auth gave %v", h)
	}
}

func TestLoadAuthMissingDirs(t *testing.T) {
	t.Parallel()
	a, err := LoadAuth(filepath.Join(t.TempDir(), "absent"), "")
	if err != nil {
		t.Fatalf("LoadAuth: %v", err)
	}
	if h := a.Header("example.com"); h != nil {
		t.Errorf("Header = %v, want none", h)
	}
}

func TestLoadAuthErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"bad json", map[string]string{"a.json": `{`}, "decode"},
		{"unknown kind", map[string]string{"a.json": `{"rktKind":"paths","rktVersion":"v1"}`}, `rktKind "paths"`},
		{"bad version", map[string]string{"a.json": `{"rktKind":"auth","rktVersion":"v2"}`}, `rktVersion "v2"`},
		{"unknown type", map[string]string{"a.json": `{"rktKind":"auth","rktVersion":"v1","domains":["a"],"type":"aws","credentials":{}}`}, `auth type "aws"`},
		{"no domains", map[string]string{"a.json": `{"rktKind":"auth","rktVersion":"v1","type":"basic","credentials":{"user":"u","password":"p"}}`}, "no domains"},
		{"no password", map[string]string{"a.json": `{"rktKind":"auth","rktVersion":"v1","domains":["a"],"type":"basic","credentials":{"user":"u"}}`}, "user and password"},
		{"no token", map[string]string{"a.json": `{"rktKind":"auth","rktVersion":"v1","domains":["a"],"type":"oauth","credentials":{}}`}, "token"},
		{"no credentials", map[string]string{"a.json": `{"rktKind":"auth","rktVersion":"v1","domains":["a"],"type":"oauth"}`}, "no credentials"},
		{"docker no user", map[string]string{"a.json": `{"rktKind":"dockerAuth","rktVersion":"v1","registries":["r"],"credentials":{"password":"p"}}`}, "user and password"},
		{"duplicate domain", map[string]string{
			"a.json": `{"rktKind":"auth","rktVersion":"v1","domains":["d.com"],"type":"oauth","credentials":{"token":"1"}}`,
			"b.json": `{"rktKind":"auth","rktVersion":"v1","domains":["D.com"],"type":"oauth","credentials":{"token":"2"}}`,
		}, "domain d.com already configured"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeAuth(t, dir, tc.files)
			_, err := LoadAuth(dir, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadAuth error = %v, want it to contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), filepath.Join(dir, "auth.d")) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

// TestAuthHeadersPerDomain checks that each host gets only its own
// credentials, including across a redirect to another host.
func TestAuthHeadersPerDomain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeAuth(t, dir, map[string]string{
		"basic.json": `{"rktKind":"auth","rktVersion":"v1","domains":["example.com"],"type":"basic","credentials":{"user":"u","password":"p"}}`,
		"oauth.json": `{"rktKind":"auth","rktVersion":"v1","domains":["auth.example.com"],"type":"oauth","credentials":{"token":"secret"}}`,
	})
	a, err := LoadAuth(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := newTestServer(t, true, func(w http.ResponseWriter, r *http.Request) {
		switch r.Host {
		case "example.com":
			http.Redirect(w, r, "https://other.example.com/app?ac-discovery=1", http.StatusFound)
		case "other.example.com":
			w.Write([]byte(page(
				[2]string{"ac-discovery", "example.com https://auth.example.com/{name}.{ext}"},
				[2]string{"ac-discovery-pubkeys", "example.com https://auth.example.com/key.gpg"},
			)))
		case "auth.example.com":
			w.Write([]byte("image"))
		}
	})
	o := options(srv, nil)
	o.Auth = a
	ep, err := Discover(t.Context(), App{Name: "example.com/app"}, o)
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	f, err := NewFetcher(o)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(t.TempDir(), "aci"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := f.Fetch(t.Context(), ep.ACIEndpoints[0].ACI, out, nil); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	want := map[string][]string{
		"example.com":       {basic("u", "p")},
		"other.example.com": {""},
		"auth.example.com":  {"Bearer secret"},
	}
	for host, w := range want {
		if diff := cmp.Diff(w, srv.auth(host)); diff != "" {
			t.Errorf("Authorization sent to %s mismatch (-want +got):\n%s", host, diff)
		}
	}
}
