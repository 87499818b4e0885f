package cni

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIPTaken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const uuid = "6733c088-a507-4694-aabf-edbe4fc5266f"
	if err := os.MkdirAll(filepath.Join(dir, "lan"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"10.1.1.5": uuid + "\r\neth0", "10.1.1.6": "not-a-uuid\neth0"} {
		if err := os.WriteFile(filepath.Join(dir, "lan", name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("10.1.1.5", filepath.Join(dir, "lan", "10.1.1.7")); err != nil {
		t.Fatal(err)
	}
	conf := []byte(`{"name":"lan","plugins":[{"type":"bridge","ipam":{"type":"host-local","dataDir":"` + dir + `"}}]}`)
	cause := errors.New("plugin says no")
	for _, tc := range []struct {
		name string
		args [][2]string
		conf []byte
		want string // "" for no IPTakenError
	}{
		{name: "taken by a pod", args: [][2]string{{"IP", "10.1.1.5"}}, conf: conf,
			want: `network "lan": IP 10.1.1.5 (asked for with --net=lan:IP=10.1.1.5) is already taken by pod ` + uuid},
		{name: "lease without a uuid", args: [][2]string{{"IP", "10.1.1.6"}}, conf: conf,
			want: `network "lan": IP 10.1.1.6 (asked for with --net=lan:IP=10.1.1.6) is already taken by another pod`},
		{name: "free", args: [][2]string{{"IP", "10.1.1.9"}}, conf: conf},
		{name: "symlink is no lease", args: [][2]string{{"IP", "10.1.1.7"}}, conf: conf},
		{name: "no IP arg", args: [][2]string{{"FOO", "10.1.1.5"}}, conf: conf},
		{name: "not host-local", args: [][2]string{{"IP", "10.1.1.5"}},
			conf: []byte(`{"name":"lan","plugins":[{"type":"bridge","ipam":{"type":"dhcp","dataDir":"` + dir + `"}}]}`)},
		{name: "name escaping the data dir", args: [][2]string{{"IP", "10.1.1.5"}},
			conf: []byte(`{"name":"..","plugins":[{"type":"bridge","ipam":{"type":"host-local","dataDir":"` + dir + `/lan/x"}}]}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := ipTaken("lan", tc.conf, tc.args, cause)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("ipTaken = %v, want nil", err)
				}
				return
			}
			var te *IPTakenError
			if !errors.As(err, &te) || err.Error() != tc.want || !errors.Is(err, cause) {
				t.Fatalf("ipTaken = %v, want %q wrapping the plugin's error", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error has several lines: %q", err)
			}
		})
	}
}
