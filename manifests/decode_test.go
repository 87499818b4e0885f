package manifests

import (
	"strings"
	"testing"
	"time"
)

const apparmorImage = `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/app",
"app":{"exec":["/bin/true"],"user":"0","group":"0","isolators":[
 {"name":"os/linux/apparmor-profile","value":{"profile":"x"}},
 {"name":"os/linux/no-new-privileges","value":true}]}}`

func TestDecodeImageUnknownIsolator(t *testing.T) {
	im, err := DecodeImage([]byte(apparmorImage))
	if err != nil {
		t.Fatalf("DecodeImage: %v", err)
	}
	isos := im.App.Isolators
	if len(isos) != 2 || !IsUnknown(&isos[0]) || IsUnknown(&isos[1]) {
		t.Fatalf("isolators decoded wrong: %+v", isos)
	}
	out, err := im.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"profile":"x"`) {
		t.Errorf("unknown isolator value lost on re-marshal: %s", out)
	}
}

func TestDecodeImageInvalid(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"not json", `{`},
		{"bad name", `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"Bad Name"}`},
		{"wrong kind", `{"acKind":"PodManifest","acVersion":"0.8.11","name":"a"}`},
		// appc v0.8.11 panicked on these (nil value dereference).
		{"known isolator without value", `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"a","app":{"exec":["/x"],"user":"0","group":"0","isolators":[{"name":"os/linux/no-new-privileges"}]}}`},
		{"known isolator with null value", `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"a","app":{"exec":["/x"],"user":"0","group":"0","isolators":[{"name":"resource/memory","value":null}]}}`},
		{"bad known isolator", `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"a","app":{"exec":["/x"],"user":"0","group":"0","isolators":[{"name":"resource/memory","value":{"limit":"1X"}}]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeImage([]byte(tc.in)); err == nil {
				t.Errorf("DecodeImage(%s) succeeded, want error", tc.in)
			}
		})
	}
}

func FuzzDecodeImage(f *testing.F) {
	f.Add([]byte(apparmorImage))
	f.Add([]byte(`{"acKind":"ImageManifest","acVersion":"0.8.11","name":"a","labels":[{"name":"os","value":"linux"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := DecodeImage(b)
		if err != nil {
			return
		}
		out, err := im.MarshalJSON()
		if err != nil {
			return // the library may refuse to marshal what it decoded; it must not panic
		}
		if _, err := DecodeImage(out); err != nil {
			t.Errorf("re-decode of marshalled manifest failed: %v\n%s", err, out)
		}
	})
}

func FuzzDecodePod(f *testing.F) {
	f.Add([]byte(`{"acKind":"PodManifest","acVersion":"0.8.11","apps":[],"volumes":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DecodePod(b)
	})
}

// A resource isolator whose quantity has a huge exponent is refused before
// the appc library's parser, which would compute 10^exponent for ever.
func TestDecodeHugeQuantityExponent(t *testing.T) {
	for _, q := range []string{"1e77777777720", "922368503E724775807", "1e-999999999"} {
		m := `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"x","app":{"exec":["/x"],"user":"0","group":"0",` +
			`"isolators":[{"name":"resource/memory","value":{"limit":"` + q + `"}}]}}`
		done := make(chan error, 1)
		go func() { _, err := DecodeImage([]byte(m)); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "exponent") {
				t.Errorf("DecodeImage with limit %q: %v, want an exponent error", q, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("DecodeImage with limit %q did not return", q)
		}
	}
	if _, err := DecodeImage([]byte(`{"acKind":"ImageManifest","acVersion":"0.8.11","name":"x","app":{"exec":["/x"],"user":"0","group":"0","isolators":[{"name":"resource/memory","value":{"limit":"1e9"}}]}}`)); err != nil {
		t.Errorf("an ordinary exponent was refused: %v", err)
	}
}
