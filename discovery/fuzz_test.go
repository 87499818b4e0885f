package discovery

import (
	"strings"
	"testing"
)

func FuzzParseMeta(f *testing.F) {
	f.Add(`<html><head><meta name="ac-discovery" content="example.com https://example.com/{name}-{version}.{ext}"></head></html>`)
	f.Add(`<meta name="ac-discovery-pubkeys" content="example.com https://example.com/key.gpg"/>`)
	f.Add(`<meta name=ac-discovery content='a b'><meta name="ac-discovery" content="`)
	f.Add(`<svg><meta xlink:name="ac-discovery" content="a b"></svg><!-- <meta name="ac-discovery" content="c d"> -->`)
	f.Fuzz(func(t *testing.T, in string) {
		if len(in) > 64<<10 {
			return
		}
		for _, m := range ParseMeta(strings.NewReader(in)) {
			if m.Name != metaDiscovery && m.Name != metaPubkeys {
				t.Fatalf("unexpected meta name %q", m.Name)
			}
			if m.Prefix == "" || m.Template == "" || strings.ContainsAny(m.Prefix+m.Template, " \t\n\r\f") {
				t.Fatalf("malformed meta %+v", m)
			}
		}
	})
}

func FuzzFillTemplate(f *testing.F) {
	f.Add("https://example.com/{name}-{version}-{os}-{arch}.{ext}", "1.0")
	f.Add("{a{name}}{", "")
	f.Add("{}{{}}}{", "{version}")
	f.Fuzz(func(t *testing.T, tpl, version string) {
		if len(tpl) > 4096 || len(version) > 256 {
			return
		}
		vars := map[string]string{"name": "example.com/app", "version": version, "os": "linux", "arch": "amd64", "ext": "aci"}
		out, ok := fillTemplate(tpl, vars)
		if !ok {
			return
		}
		// With brace-free values, a filled template has no {var} left.
		if strings.ContainsAny(version, "{}") {
			return
		}
		if i := strings.IndexByte(out, '{'); i >= 0 && strings.IndexByte(out[i:], '}') >= 0 {
			t.Fatalf("fillTemplate(%q) = %q still has a variable", tpl, out)
		}
	})
}

func FuzzParseHeaders(f *testing.F) {
	f.Add("bytes 0-99/100", "max-age=60, public")
	f.Add("bytes 5-4/*", `no-cache, max-age="9"`)
	f.Add("bytes 9223372036854775807-9223372036854775807/9223372036854775807", "max-age=18446744073709551615")
	f.Fuzz(func(t *testing.T, contentRange, cacheControl string) {
		if start, size, ok := parseContentRange(contentRange); ok {
			if start < 0 || (size != -1 && size <= start) {
				t.Fatalf("parseContentRange(%q) = %d, %d", contentRange, start, size)
			}
		}
		if age := parseMaxAge([]string{cacheControl}); age < 0 || age > maxMaxAge {
			t.Fatalf("parseMaxAge(%q) = %v", cacheControl, age)
		}
	})
}
