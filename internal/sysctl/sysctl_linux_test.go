package sysctl

import (
	"os"
	"strings"
	"testing"

	"github.com/rkt-ng/rkt/internal/netns"
	"github.com/rkt-ng/rkt/tests/testutil"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		key  string
		ok   bool
	}{
		{name: "net key", key: "net.ipv4.ip_forward", ok: true},
		{name: "interface", key: "net.ipv4.conf.eth0.rp_filter", ok: true},
		{name: "single element", key: "kernel", ok: true},
		{name: "empty", key: ""},
		{name: "dot dot", key: "net..ipv4"},
		{name: "parent", key: "net.ipv4.conf.../../kernel"},
		{name: "slash", key: "net/ipv4/ip_forward"},
		{name: "leading dot", key: ".net.ipv4"},
		{name: "trailing dot", key: "net.ipv4."},
		{name: "only dot", key: "."},
		{name: "NUL", key: "net.ipv4\x00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := Check(tc.key); (err == nil) != tc.ok {
				t.Errorf("Check(%q) = %v, want ok=%v", tc.key, err, tc.ok)
			}
		})
	}
}

func TestPath(t *testing.T) {
	t.Parallel()
	if got, want := Path("net.ipv4.ip_forward"), "/proc/sys/net/ipv4/ip_forward"; got != want {
		t.Errorf("Path = %q, want %q", got, want)
	}
}

// TestWriteRefusesBeforeWriting checks that one bad key stops every write,
// including those of good keys.
func TestWriteRefusesBeforeWriting(t *testing.T) {
	t.Parallel()
	err := Write(map[string]string{"a.nonexistent.key": "1", "net..x": "1"})
	if err == nil || !strings.Contains(err.Error(), "invalid sysctl key") {
		t.Errorf("Write = %v, want an invalid key error", err)
	}
}

func TestWriteInNetNS(t *testing.T) {
	testutil.RequireRoot(t)
	const key, file = "net.ipv4.ip_forward", "/proc/sys/net/ipv4/ip_forward"
	host, err := os.ReadFile(file)
	if err != nil {
		t.Skipf("no %s: %v", file, err)
	}
	var got []byte
	err = netns.DoNew(func() error {
		cur, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		want := "1"
		if strings.TrimSpace(string(cur)) == "1" {
			want = "0"
		}
		if err := Write(map[string]string{key: want}); err != nil {
			return err
		}
		got, err = os.ReadFile(file)
		if strings.TrimSpace(string(got)) != want {
			t.Errorf("%s = %q after Write, want %q", key, got, want)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(file); string(after) != string(host) {
		t.Errorf("host %s changed from %q to %q", key, host, after)
	}
	if err := Write(map[string]string{"net.no.such.key": "1"}); err == nil {
		t.Error("Write of a missing key succeeded")
	}
}
