package discovery

import (
	"io"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Meta tag names of appc discovery (spec/discovery.md).
const (
	metaDiscovery = "ac-discovery"
	metaPubkeys   = "ac-discovery-pubkeys"
)

// maxPage bounds how much of a discovery page is read; meta tags sit in the
// head, and a hostile server must not make us buffer an endless body.
const maxPage = 1 << 20

// Meta is one discovery meta tag: <meta name="Name" content="Prefix Template">.
type Meta struct {
	Name     string // "ac-discovery" or "ac-discovery-pubkeys"
	Prefix   string // a prefix of the image names it applies to
	Template string // URL template (ac-discovery) or key URL (pubkeys)
}

// ParseMeta extracts the ac-discovery and ac-discovery-pubkeys meta tags of
// an HTML page, in document order. Malformed tags are skipped; at most
// maxPage bytes are read.
func ParseMeta(r io.Reader) []Meta {
	var metas []Meta
	z := html.NewTokenizer(io.LimitReader(r, maxPage))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return metas
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			if tok.DataAtom != atom.Meta {
				continue
			}
			if m, ok := metaFromAttrs(tok.Attr); ok {
				metas = append(metas, m)
			}
		}
	}
}

func metaFromAttrs(attrs []html.Attribute) (Meta, bool) {
	var name, content string
	var haveContent bool
	for _, a := range attrs {
		if a.Namespace != "" {
			continue
		}
		switch a.Key {
		case "name":
			name = a.Val
		case "content":
			content, haveContent = a.Val, true
		}
	}
	if name != metaDiscovery && name != metaPubkeys || !haveContent {
		return Meta{}, false
	}
	f := strings.Fields(content)
	if len(f) != 2 {
		return Meta{}, false
	}
	return Meta{Name: name, Prefix: f[0], Template: f[1]}, true
}

// fillTemplate replaces every {var} of tpl with vars[var] in one pass (so a
// value is never expanded again). It reports false if a variable has no value,
// in which case the template does not apply (spec/discovery.md: templates
// with unfilled variables are skipped). As in appc's Go implementation a
// variable runs from '{' to the next '}', so "{a{name}" is the unknown
// variable "a{name"; a '{' without a closing '}' is literal text.
func fillTemplate(tpl string, vars map[string]string) (string, bool) {
	var b strings.Builder
	for {
		open := strings.IndexByte(tpl, '{')
		if open < 0 {
			b.WriteString(tpl)
			return b.String(), true
		}
		end := strings.IndexByte(tpl[open:], '}')
		if end < 0 {
			b.WriteString(tpl)
			return b.String(), true
		}
		end += open
		v, ok := vars[tpl[open+1:end]]
		if !ok {
			return "", false
		}
		b.WriteString(tpl[:open])
		b.WriteString(v)
		tpl = tpl[end+1:]
	}
}
