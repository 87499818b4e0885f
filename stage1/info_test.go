package stage1

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestInfoRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := map[string]string{"accelerator": "tcg", "machine": "pc-q35-7.2"}
	if err := WriteInfo(dir, in); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, InfoFile))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "accelerator=tcg\nmachine=pc-q35-7.2\n" {
		t.Errorf("content %q", b)
	}
	if diff := cmp.Diff(in, ParseInfo(b)); diff != "" {
		t.Errorf("ParseInfo (-want +got):\n%s", diff)
	}
	if got := FormatInfoList(in); got != "accelerator=tcg,machine=pc-q35-7.2" {
		t.Errorf("FormatInfoList = %q", got)
	}
}

func TestFormatInfoRefuses(t *testing.T) {
	t.Parallel()
	for _, m := range []map[string]string{
		{"Accel": "kvm"}, {"": "kvm"}, {"a b": "kvm"}, {"a=b": "kvm"},
		{"accel": ""}, {"accel": "k vm"}, {"accel": "kvm\nx=y"}, {"accel": "a,b"}, {"accel": strings.Repeat("v", MaxInfoValLen+1)},
		{strings.Repeat("k", MaxInfoKeyLen+1): "v"},
	} {
		if _, err := FormatInfo(m); err == nil {
			t.Errorf("FormatInfo(%q) accepted", m)
		}
	}
}

// The file is the pod's: bad lines are skipped, nothing fails.
func TestParseInfoHostile(t *testing.T) {
	t.Parallel()
	var many strings.Builder
	for i := range MaxInfoKeys + 5 {
		many.WriteString("k" + strings.Repeat("x", i) + "=v\n")
	}
	for _, tc := range []struct {
		in   string
		want map[string]string
	}{
		{"", nil},
		{"accelerator=kvm", map[string]string{"accelerator": "kvm"}},
		{"accelerator=kvm\naccelerator=tcg\n", map[string]string{"accelerator": "kvm"}},
		{"x\nBAD=1\nstate=running\x1b[2J\nok=1\nsp=a b\n=1\ncomma=a,b\n", map[string]string{"ok": "1"}},
		{"a=b=c\n", map[string]string{"a": "b=c"}},
		{strings.Repeat("a", MaxInfoBytes+1), nil},
	} {
		if diff := cmp.Diff(tc.want, ParseInfo([]byte(tc.in))); diff != "" {
			t.Errorf("ParseInfo(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
	if got := len(ParseInfo([]byte(many.String()))); got != MaxInfoKeys {
		t.Errorf("ParseInfo kept %d keys, want %d", got, MaxInfoKeys)
	}
}
