package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"

	appcdisc "github.com/appc/spec/discovery"
	"github.com/appc/spec/schema/types"
)

// App is an image request: a name and the labels it must carry. The labels
// version, os and arch default to "latest" and the running system (appc
// names) when absent.
type App struct {
	Name   string
	Labels map[string]string
}

// ParseApp parses a command-line image reference as rkt did:
// "example.com/app:1.0.0,channel=alpha" (the part after ':' is the version).
func ParseApp(s string) (App, error) {
	a, err := appcdisc.NewAppFromString(s)
	if err != nil {
		return App{}, fmt.Errorf("parse image name %q: %w", s, err)
	}
	app := App{Name: a.Name.String(), Labels: make(map[string]string, len(a.Labels))}
	for k, v := range a.Labels {
		app.Labels[k.String()] = v
	}
	return app, nil
}

// String gives the name and, if set, ":version".
func (a App) String() string {
	if v := a.Labels["version"]; v != "" {
		return a.Name + ":" + v
	}
	return a.Name
}

// ACIEndpoint is where an image and its detached signature are downloaded.
type ACIEndpoint struct {
	ACI string
	ASC string
}

// Endpoints is the result of discovery for one image.
type Endpoints struct {
	// ACIEndpoints are in page order; try them in turn.
	ACIEndpoints []ACIEndpoint
	// Keys are the ac-discovery-pubkeys URLs of the nearest page that has
	// any; they may be empty.
	Keys []string
}

// Attempt is one discovery page tried and why it gave nothing.
type Attempt struct {
	URL string
	Err error
}

// NotFoundError is returned when no discovery page gives what was asked for.
type NotFoundError struct {
	Image    string
	What     string // "ac-discovery template" or "ac-discovery-pubkeys key"
	Attempts []Attempt
}

func (e *NotFoundError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "discover %s: no matching %s", e.Image, e.What)
	for i, a := range e.Attempts {
		if i == 0 {
			b.WriteString(" (tried ")
		} else {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %s", a.URL, attemptReason(a.Err))
	}
	if len(e.Attempts) > 0 {
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap gives the error of each attempt, so errors.Is(err,
// ErrTooManyRedirects) or errors.As(err, **StatusError) see them.
func (e *NotFoundError) Unwrap() []error {
	errs := make([]error, 0, len(e.Attempts))
	for _, a := range e.Attempts {
		errs = append(errs, a.Err)
	}
	return errs
}

// attemptReason is err without the URL that NotFoundError prints anyway.
func attemptReason(err error) string {
	var se *StatusError
	if errors.As(err, &se) {
		return fmt.Sprintf("HTTP %d %s", se.Status, http.StatusText(se.Status))
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return fmt.Sprint(err)
}

var (
	errNoTemplate = errors.New("no ac-discovery template matched")
	errNoKey      = errors.New("no ac-discovery-pubkeys matched")
)

// Discover runs appc meta discovery (spec/discovery.md) for app: it fetches
// https://<name>?ac-discovery=1 and then each shorter path prefix until a page
// has an ac-discovery template that matches the name and whose variables can
// all be filled. Keys come from the first page, walking up from the same
// point, with matching ac-discovery-pubkeys.
func Discover(ctx context.Context, app App, o Options) (Endpoints, error) {
	if _, err := types.NewACIdentifier(app.Name); err != nil {
		return Endpoints{}, fmt.Errorf("discover %q: invalid image name: %w", app.Name, err)
	}
	c, err := newClient(o)
	if err != nil {
		return Endpoints{}, fmt.Errorf("discover %s: %w", app.String(), err)
	}
	vars := templateVars(app)
	var ep Endpoints
	attempts, err := walk(ctx, c, app.Name, o, func(pageURL string, metas []Meta) (bool, error) {
		if ep.ACIEndpoints == nil {
			ep.ACIEndpoints = aciEndpoints(app.Name, metas, vars)
		}
		if ep.Keys == nil {
			ep.Keys = keyURLs(app.Name, metas)
		}
		if ep.ACIEndpoints == nil {
			return false, errNoTemplate
		}
		if ep.Keys == nil {
			return false, errNoKey
		}
		return true, nil
	})
	if err != nil {
		return Endpoints{}, fmt.Errorf("discover %s: %w", app.String(), err)
	}
	if ep.ACIEndpoints == nil {
		return Endpoints{}, &NotFoundError{Image: app.String(), What: "ac-discovery template", Attempts: attempts}
	}
	o.logger().Debug("image discovered", "image", app.String(), "aci", ep.ACIEndpoints[0].ACI, "keys", len(ep.Keys))
	return ep, nil
}

// DiscoverKeys finds the ac-discovery-pubkeys URLs for an image name prefix
// (what `rkt trust --prefix` asks for), walking up the path like Discover.
func DiscoverKeys(ctx context.Context, prefix string, o Options) ([]string, error) {
	if _, err := types.NewACIdentifier(prefix); err != nil {
		return nil, fmt.Errorf("discover keys for %q: invalid prefix: %w", prefix, err)
	}
	c, err := newClient(o)
	if err != nil {
		return nil, fmt.Errorf("discover keys for %s: %w", prefix, err)
	}
	var keys []string
	attempts, err := walk(ctx, c, prefix, o, func(pageURL string, metas []Meta) (bool, error) {
		keys = keyURLs(prefix, metas)
		if keys == nil {
			return false, errNoKey
		}
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("discover keys for %s: %w", prefix, err)
	}
	if keys == nil {
		return nil, &NotFoundError{Image: prefix, What: "ac-discovery-pubkeys key", Attempts: attempts}
	}
	return keys, nil
}

// walk visits the discovery page of name and of each shorter prefix, until
// visit says stop. A page that cannot be fetched over https is tried over
// http when InsecureHTTP is set. It returns the attempts that gave nothing,
// and an error only if ctx ended.
func walk(ctx context.Context, c *http.Client, name string, o Options, visit func(pageURL string, metas []Meta) (bool, error)) ([]Attempt, error) {
	schemes := []string{"https"}
	if o.InsecureHTTP {
		schemes = append(schemes, "http")
	}
	parts := strings.Split(name, "/")
	var attempts []Attempt
	for end := len(parts); end > 0; end-- {
		prefix := strings.Join(parts[:end], "/")
		for _, scheme := range schemes {
			u := pageURL(scheme, prefix, o.Port)
			metas, err := fetchPage(ctx, c, u)
			if err != nil {
				if ctx.Err() != nil {
					return attempts, ctx.Err()
				}
				o.logger().Debug("discovery page failed", "url", u, "err", err)
				attempts = append(attempts, Attempt{URL: u, Err: err})
				continue
			}
			stop, why := visit(u, metas)
			if stop {
				return attempts, nil
			}
			attempts = append(attempts, Attempt{URL: u, Err: why})
			break // the page was there; plain http would not say more
		}
	}
	return attempts, nil
}

func pageURL(scheme, prefix string, port int) string {
	host, path, _ := strings.Cut(prefix, "/")
	if port != 0 {
		host += ":" + strconv.Itoa(port)
	}
	u := url.URL{Scheme: scheme, Host: host, RawQuery: "ac-discovery=1"}
	if path != "" {
		u.Path = "/" + path
	}
	return u.String()
}

func fetchPage(ctx context.Context, c *http.Client, u string) ([]Meta, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{URL: u, Status: resp.StatusCode}
	}
	return ParseMeta(resp.Body), nil
}

// templateVars are the values of a template's variables for app, without
// {ext}. A label called "name" cannot override the name.
func templateVars(app App) map[string]string {
	vars := map[string]string{
		"version": "latest",
		"os":      runtime.GOOS,
		"arch":    AppcArch(runtime.GOARCH),
	}
	for k, v := range app.Labels {
		if k != "" && v != "" {
			vars[k] = v
		}
	}
	vars["name"] = app.Name
	return vars
}

// aciEndpoints fills the matching ac-discovery templates. Templates with a
// variable left unfilled, or whose result is not an absolute http(s) URL, are
// skipped. It returns nil when none is left.
func aciEndpoints(name string, metas []Meta, vars map[string]string) []ACIEndpoint {
	var eps []ACIEndpoint
	withExt := make(map[string]string, len(vars)+1)
	for k, v := range vars {
		withExt[k] = v
	}
	for _, m := range metas {
		if m.Name != metaDiscovery || !strings.HasPrefix(name, m.Prefix) {
			continue
		}
		withExt["ext"] = "aci"
		aci, ok := fillTemplate(m.Template, withExt)
		if !ok || !isHTTPURL(aci) {
			continue
		}
		withExt["ext"] = "aci.asc"
		asc, ok := fillTemplate(m.Template, withExt)
		if !ok || !isHTTPURL(asc) {
			continue
		}
		eps = append(eps, ACIEndpoint{ACI: aci, ASC: asc})
	}
	return eps
}

// keyURLs returns the matching ac-discovery-pubkeys URLs, or nil.
func keyURLs(name string, metas []Meta) []string {
	var keys []string
	for _, m := range metas {
		if m.Name == metaPubkeys && strings.HasPrefix(name, m.Prefix) && isHTTPURL(m.Template) {
			keys = append(keys, m.Template)
		}
	}
	return keys
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// AppcArch maps a GOARCH to the appc arch label value (spec/types.md:
// amd64, i386, aarch64, armv7l, ...). Unknown architectures keep their Go name.
func AppcArch(goarch string) string {
	switch goarch {
	case "386":
		return "i386"
	case "arm64":
		return "aarch64"
	case "arm":
		// GOARM is not visible at run time; armv7l is what current 32-bit
		// ARM distributions run.
		return "armv7l"
	case "arm64be":
		return "aarch64_be"
	default:
		return goarch
	}
}
