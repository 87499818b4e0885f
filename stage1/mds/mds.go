package mds

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/appc/spec/schema/types"

	"github.com/rkt-ng/rkt/manifests"
)

const (
	// MaxBodySize bounds a request body; a larger one gets 413.
	MaxBodySize = 1 << 20

	// MinTokenLen is the shortest token NewHandler accepts: 22 base64
	// characters carry 128 bits, the minimum ace.md asks for.
	MinTokenLen = 22

	// MinKeySize is the shortest HMAC key NewHandler accepts.
	MinKeySize = 32

	apiPrefix = "acMetadata/v1/"

	contentJSON = "application/json"
	contentText = "text/plain; charset=us-ascii"
	contentForm = "application/x-www-form-urlencoded"
)

// Pod is what the metadata service serves for one pod.
type Pod struct {
	// UUID is the pod UUID; it is served in canonical (lowercase, dashed) form.
	UUID string
	// Manifest is the reified pod manifest as stored in the pod directory
	// file "pod"; pod/manifest serves these exact bytes.
	Manifest []byte
	// Apps holds, by app name, every app of the pod manifest.
	Apps map[string]App
}

// App is what the metadata service serves for one app of a pod.
type App struct {
	// ImageManifest is the app's image manifest as stored in
	// appsinfo/<app>/manifest; apps/<app>/image/manifest serves these bytes.
	ImageManifest []byte
	// ImageID is optional: the image ID always comes from the pod manifest,
	// and a non-empty ImageID must equal it.
	ImageID string
}

// URL returns the AC_METADATA_URL of a service listening on l with token:
// "http://ADDR:PORT/<token>", without a trailing slash.
func URL(l net.Listener, token string) string {
	return "http://" + l.Addr().String() + "/" + token
}

// response is a precomputed GET answer.
type response struct {
	contentType string
	body        []byte
}

// Handler serves the metadata service of one pod. It is immutable and safe for
// concurrent use.
type Handler struct {
	token string
	uuid  types.UUID
	key   []byte
	// get maps an API path below acMetadata/v1/ to its answer.
	get map[string]response
}

var _ http.Handler = (*Handler)(nil)

// NewHandler checks p, token and key and precomputes every answer. The caller
// keeps key secret; the handler keeps its own copy.
func NewHandler(p *Pod, token string, key []byte) (*Handler, error) {
	if err := checkToken(token); err != nil {
		return nil, err
	}
	if len(key) < MinKeySize {
		return nil, fmt.Errorf("metadata service hmac key: %d bytes, want at least %d", len(key), MinKeySize)
	}
	uuid, err := types.NewUUID(p.UUID)
	if err != nil {
		return nil, fmt.Errorf("pod uuid %q: %w", p.UUID, err)
	}
	if strings.EqualFold(token, p.UUID) || strings.EqualFold(token, uuid.String()) {
		return nil, errors.New("metadata service token: must not be the pod uuid")
	}
	pm, err := manifests.DecodePod(p.Manifest)
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", uuid, err)
	}
	h := &Handler{
		token: token,
		uuid:  *uuid,
		key:   bytes.Clone(key),
		get:   map[string]response{},
	}
	h.get["pod/manifest"] = response{contentJSON, bytes.Clone(p.Manifest)}
	h.get["pod/uuid"] = response{contentText, []byte(uuid.String())}
	ann, err := podAnnotations(p.Manifest, pm.Annotations)
	if err != nil {
		return nil, fmt.Errorf("pod %s annotations: %w", uuid, err)
	}
	h.get["pod/annotations"] = response{contentJSON, ann}
	// rkt 1.30 served each annotation's value on its own as well
	// (rkt/metadata_service.go: /pod/annotations/{name},
	// /apps/{app}/annotations/{name}).
	h.addValues("pod/annotations/", pm.Annotations)

	seen := map[string]bool{}
	for _, ra := range pm.Apps {
		name := ra.Name.String()
		seen[name] = true
		a, ok := p.Apps[name]
		if !ok {
			return nil, fmt.Errorf("app %s: no image manifest given", name)
		}
		im, err := manifests.DecodeImage(a.ImageManifest)
		if err != nil {
			return nil, fmt.Errorf("app %s: %w", name, err)
		}
		id := ra.Image.ID.String()
		if a.ImageID != "" && a.ImageID != id {
			return nil, fmt.Errorf("app %s: image id %s, but the pod manifest says %s", name, a.ImageID, id)
		}
		// ace.md, App Metadata: image annotations merged with the pod
		// manifest's app annotations. Set keeps the image's order and
		// appends new names, which is the order the ACE validator expects.
		merged := append(types.Annotations(nil), im.Annotations...)
		for _, an := range ra.Annotations {
			merged.Set(an.Name, an.Value)
		}
		ann, err := marshalAnnotations(merged)
		if err != nil {
			return nil, fmt.Errorf("app %s annotations: %w", name, err)
		}
		prefix := "apps/" + name + "/"
		h.get[prefix+"annotations"] = response{contentJSON, ann}
		h.addValues(prefix+"annotations/", merged)
		// The image manifest's own annotations, unmerged: what
		// image/manifest holds, without parsing the whole manifest.
		imageAnn, err := marshalAnnotations(im.Annotations)
		if err != nil {
			return nil, fmt.Errorf("app %s image annotations: %w", name, err)
		}
		h.get[prefix+"image/annotations"] = response{contentJSON, imageAnn}
		h.get[prefix+"image/manifest"] = response{contentJSON, bytes.Clone(a.ImageManifest)}
		h.get[prefix+"image/id"] = response{contentText, []byte(id)}
	}
	for name := range p.Apps {
		if !seen[name] {
			return nil, fmt.Errorf("app %s: not in the pod manifest", name)
		}
	}
	return h, nil
}

// addValues serves the value of each annotation of a at prefix+name, as
// text/plain.
func (h *Handler) addValues(prefix string, a types.Annotations) {
	for _, an := range a {
		h.get[prefix+an.Name.String()] = response{contentText, []byte(an.Value)}
	}
}

// checkToken accepts only RFC 3986 unreserved characters, so the token needs
// no escaping in a URL path.
func checkToken(token string) error {
	if len(token) < MinTokenLen {
		return fmt.Errorf("metadata service token: %d characters, want at least %d", len(token), MinTokenLen)
	}
	for _, c := range token {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-._~", c)
		if !ok {
			return fmt.Errorf("metadata service token: character %q is not URL-safe", c)
		}
	}
	return nil
}

type nameValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// podAnnotations returns the pod/annotations answer: the manifest's
// annotations shaped as stored, so that it decodes to exactly what the
// annotations of pod/manifest decode to (the ACE validator compares the two
// with reflect.DeepEqual, and a nil list is not an empty one). A list,
// empty or not, is served as a JSON array; a manifest whose annotations are
// null or missing gets null.
func podAnnotations(manifest []byte, a types.Annotations) ([]byte, error) {
	var probe struct {
		Annotations json.RawMessage `json:"annotations"`
	}
	if err := json.Unmarshal(manifest, &probe); err != nil {
		return nil, err
	}
	if probe.Annotations == nil || string(probe.Annotations) == "null" {
		return []byte("null"), nil
	}
	return marshalAnnotations(a)
}

// marshalAnnotations encodes annotations as the JSON array of the pod and image
// specs; an empty list is [] (RFC 4627 wants an array here, not null).
func marshalAnnotations(a types.Annotations) ([]byte, error) {
	out := make([]nameValue, 0, len(a))
	for _, an := range a {
		out = append(out, nameValue{an.Name.String(), an.Value})
	}
	return json.Marshal(out)
}

// ServeHTTP answers one metadata request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	route, ok := h.route(r.URL.Path)
	if !ok {
		fail(w, http.StatusNotFound)
		return
	}
	switch route {
	case "pod/hmac/sign", "pod/hmac/verify":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			fail(w, http.StatusMethodNotAllowed)
			return
		}
		form, code := readForm(w, r)
		if code != http.StatusOK {
			fail(w, code)
			return
		}
		if route == "pod/hmac/sign" {
			h.sign(w, form)
		} else {
			h.verify(w, form)
		}
		return
	}
	resp, ok := h.get[route]
	if !ok {
		fail(w, http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		fail(w, http.StatusMethodNotAllowed)
		return
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", resp.contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(resp.body)))
		w.WriteHeader(http.StatusOK)
		return
	}
	write(w, http.StatusOK, resp.contentType, resp.body)
}

// route returns the API path below /<token>/acMetadata/v1/, or false when the
// token is wrong or the path is outside the API.
func (h *Handler) route(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/")
	if !ok {
		return "", false
	}
	tok, rest, ok := strings.Cut(rest, "/")
	// Constant time, so response timing does not reveal a token prefix.
	if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(h.token)) != 1 {
		return "", false
	}
	return strings.CutPrefix(rest, apiPrefix)
}

// readForm parses a bounded application/x-www-form-urlencoded body and returns
// its fields, or the status code to fail with.
func readForm(w http.ResponseWriter, r *http.Request) (map[string][]string, int) {
	if r.ContentLength > MaxBodySize {
		return nil, http.StatusRequestEntityTooLarge
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != contentForm {
		return nil, http.StatusUnsupportedMediaType
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodySize)
	if err := r.ParseForm(); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, http.StatusRequestEntityTooLarge
		}
		return nil, http.StatusBadRequest
	}
	// PostForm only: query parameters are not part of the form (ace.md: "POST
	// a form").
	return r.PostForm, http.StatusOK
}

// field returns the single value of a form field.
func field(form map[string][]string, name string) (string, bool) {
	v := form[name]
	if len(v) != 1 {
		return "", false
	}
	return v[0], true
}

// mac computes the pod identity HMAC: HMAC-SHA512 over the 16 raw bytes of the
// signing pod's UUID followed by the content (the scheme of rkt's metadata
// service, so signatures stay comparable).
func (h *Handler) mac(uuid types.UUID, content string) []byte {
	m := hmac.New(sha512.New, h.key)
	m.Write(uuid[:])
	m.Write([]byte(content))
	return m.Sum(nil)
}

func (h *Handler) sign(w http.ResponseWriter, form map[string][]string) {
	content, ok := field(form, "content")
	if !ok {
		fail(w, http.StatusBadRequest)
		return
	}
	sig := base64.StdEncoding.EncodeToString(h.mac(h.uuid, content))
	write(w, http.StatusOK, contentText, []byte(sig))
}

func (h *Handler) verify(w http.ResponseWriter, form map[string][]string) {
	content, ok1 := field(form, "content")
	uuidStr, ok2 := field(form, "uuid")
	sigStr, ok3 := field(form, "signature")
	if !ok1 || !ok2 || !ok3 {
		fail(w, http.StatusBadRequest)
		return
	}
	uuid, err := types.NewUUID(uuidStr)
	if err != nil {
		fail(w, http.StatusBadRequest)
		return
	}
	// An undecodable signature is a failed check, like a wrong one.
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(sigStr))
	if err != nil || !hmac.Equal(sig, h.mac(*uuid, content)) {
		fail(w, http.StatusForbidden)
		return
	}
	write(w, http.StatusOK, contentText, nil)
}

func write(w http.ResponseWriter, code int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	w.Write(body) //nolint:errcheck // the client went away; nothing to do
}

// fail answers with a status and its fixed text only, never pod data.
func fail(w http.ResponseWriter, code int) {
	write(w, code, contentText, []byte(http.StatusText(code)+"\n"))
}

// Server timeouts: every answer is precomputed or one HMAC, so a slow client
// is the only reason for a request to take long.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = 60 * time.Second
	shutdownTimeout   = 2 * time.Second
	maxHeaderBytes    = 16 << 10
)

// Serve serves h on l until ctx is done, then shuts the server down (waiting
// briefly for requests in flight) and returns nil. It returns an error if
// serving fails before that. Serve closes l. Server-internal errors (bad
// requests, broken connections) are logged at debug level to log, which may be
// nil.
func Serve(ctx context.Context, l net.Listener, h http.Handler, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("metadata service on %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Requests still running after the grace period are cut off.
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metadata service on %s: %w", l.Addr(), err)
	}
	return nil
}
