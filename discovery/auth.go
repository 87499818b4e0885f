package discovery

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// maxAuthFile bounds one auth.d file; they hold a few credentials.
const maxAuthFile = 1 << 20

// Auth holds credentials from rkt's auth.d configuration: HTTP headers per
// domain (kind "auth", types "basic" and "oauth") and docker registry
// credentials (kind "dockerAuth"). The zero value and nil have none.
type Auth struct {
	headers map[string]http.Header
	docker  map[string]dockerCred
}

type dockerCred struct{ user, pass string }

var _ Headerer = (*Auth)(nil)

// authFile is one auth.d/*.json file (rkt Documentation/configuration.md).
type authFile struct {
	Kind        string          `json:"rktKind"`
	Version     string          `json:"rktVersion"`
	Domains     []string        `json:"domains"`
	Registries  []string        `json:"registries"`
	Type        string          `json:"type"`
	Credentials json.RawMessage `json:"credentials"`
}

type basicCreds struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

type oauthCreds struct {
	Token string `json:"token"`
}

// LoadAuth reads <systemDir>/auth.d/*.json and then <localDir>/auth.d/*.json;
// a domain or registry configured in the local directory replaces the system
// one. An empty or missing directory contributes nothing. The same domain
// twice in one directory is an error, as in rkt.
func LoadAuth(localDir, systemDir string) (*Auth, error) {
	a := &Auth{headers: map[string]http.Header{}, docker: map[string]dockerCred{}}
	for _, dir := range []string{systemDir, localDir} {
		if dir == "" {
			continue
		}
		layer, err := loadAuthDir(filepath.Join(dir, "auth.d"))
		if err != nil {
			return nil, err
		}
		for d, h := range layer.headers {
			a.headers[d] = h
		}
		for r, c := range layer.docker {
			a.docker[r] = c
		}
	}
	return a, nil
}

func loadAuthDir(dir string) (*Auth, error) {
	a := &Auth{headers: map[string]http.Header{}, docker: map[string]dockerCred{}}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return a, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read auth config: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".json") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	headerFrom := map[string]string{}
	dockerFrom := map[string]string{}
	for _, n := range names {
		p := filepath.Join(dir, n)
		data, err := readBounded(p, maxAuthFile)
		if err != nil {
			return nil, fmt.Errorf("read auth config: %w", err)
		}
		headers, docker, err := parseAuthFile(data)
		if err != nil {
			return nil, fmt.Errorf("auth config %s: %w", p, err)
		}
		for _, d := range headers.domains {
			if prev, ok := headerFrom[d]; ok {
				return nil, fmt.Errorf("auth config %s: domain %s already configured in %s", p, d, prev)
			}
			headerFrom[d] = p
			a.headers[d] = headers.header
		}
		for _, r := range docker.registries {
			if prev, ok := dockerFrom[r]; ok {
				return nil, fmt.Errorf("auth config %s: registry %s already configured in %s", p, r, prev)
			}
			dockerFrom[r] = p
			a.docker[r] = docker.cred
		}
	}
	return a, nil
}

func readBounded(p string, limit int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", p, limit)
	}
	return data, nil
}

type headerEntry struct {
	domains []string
	header  http.Header
}

type dockerEntry struct {
	registries []string
	cred       dockerCred
}

// parseAuthFile decodes one auth.d file. Exactly one of the results is
// non-empty.
func parseAuthFile(data []byte) (headerEntry, dockerEntry, error) {
	var f authFile
	if err := json.Unmarshal(data, &f); err != nil {
		return headerEntry{}, dockerEntry{}, fmt.Errorf("decode: %w", err)
	}
	if f.Version != "v1" {
		return headerEntry{}, dockerEntry{}, fmt.Errorf("unsupported rktVersion %q (want v1)", f.Version)
	}
	switch f.Kind {
	case "auth":
		domains, err := normalizeHosts(f.Domains, "domains")
		if err != nil {
			return headerEntry{}, dockerEntry{}, err
		}
		h, err := authHeader(f.Type, f.Credentials)
		if err != nil {
			return headerEntry{}, dockerEntry{}, err
		}
		return headerEntry{domains: domains, header: h}, dockerEntry{}, nil
	case "dockerAuth":
		regs, err := normalizeHosts(f.Registries, "registries")
		if err != nil {
			return headerEntry{}, dockerEntry{}, err
		}
		var c basicCreds
		if err := decodeCreds(f.Credentials, &c); err != nil {
			return headerEntry{}, dockerEntry{}, err
		}
		if c.User == "" || c.Password == "" {
			return headerEntry{}, dockerEntry{}, errors.New("dockerAuth credentials need user and password")
		}
		return headerEntry{}, dockerEntry{registries: regs, cred: dockerCred{user: c.User, pass: c.Password}}, nil
	default:
		return headerEntry{}, dockerEntry{}, fmt.Errorf("unsupported rktKind %q in auth.d (want auth or dockerAuth)", f.Kind)
	}
}

func normalizeHosts(hosts []string, field string) ([]string, error) {
	if len(hosts) == 0 {
		return nil, fmt.Errorf("no %s", field)
	}
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" || strings.ContainsAny(h, "/ ") {
			return nil, fmt.Errorf("invalid entry %q in %s", h, field)
		}
		out = append(out, h)
	}
	return out, nil
}

func decodeCreds(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return errors.New("no credentials")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decode credentials: %w", err)
	}
	return nil
}

func authHeader(typ string, raw json.RawMessage) (http.Header, error) {
	switch typ {
	case "basic":
		var c basicCreds
		if err := decodeCreds(raw, &c); err != nil {
			return nil, err
		}
		if c.User == "" || c.Password == "" {
			return nil, errors.New("basic credentials need user and password")
		}
		tok := base64.StdEncoding.EncodeToString([]byte(c.User + ":" + c.Password))
		return http.Header{"Authorization": {"Basic " + tok}}, nil
	case "oauth":
		var c oauthCreds
		if err := decodeCreds(raw, &c); err != nil {
			return nil, err
		}
		if c.Token == "" {
			return nil, errors.New("oauth credentials need a token")
		}
		return http.Header{"Authorization": {"Bearer " + c.Token}}, nil
	default:
		return nil, fmt.Errorf("unsupported auth type %q (want basic or oauth)", typ)
	}
}

// Header returns the headers to send to host ("name" or "name:port"); a
// domain configured with a port matches only that port, one without matches
// any. The result is a copy.
func (a *Auth) Header(host string) http.Header {
	if a == nil {
		return nil
	}
	if h, ok := lookupHost(a.headers, host); ok {
		return h.Clone()
	}
	return nil
}

// Docker returns the credentials for a docker registry host.
func (a *Auth) Docker(registry string) (user, pass string, ok bool) {
	if a == nil {
		return "", "", false
	}
	c, ok := lookupHost(a.docker, registry)
	return c.user, c.pass, ok
}

func lookupHost[V any](m map[string]V, host string) (V, bool) {
	host = strings.ToLower(host)
	if v, ok := m[host]; ok {
		return v, true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		v, ok := m[h]
		return v, ok
	}
	var zero V
	return zero, false
}
