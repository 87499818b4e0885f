package stage1

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEntrypointArgs(t *testing.T) {
	s, err := ParseStopArgs([]string{"--force", "--signal=10", "--app=web", "UUID"})
	if err != nil || !cmp.Equal(s, StopArgs{Force: true, Signal: 10, App: "web"}) {
		t.Errorf("ParseStopArgs: %+v, %v", s, err)
	}
	e, err := ParseEnterArgs([]string{"--pid=7", "--appname=web", "--", "/bin/sh", "-c", "x"})
	if err != nil || !cmp.Equal(e, EnterArgs{App: "web", Cmd: []string{"/bin/sh", "-c", "x"}}) {
		t.Errorf("ParseEnterArgs: %+v, %v", e, err)
	}
	g, err := ParseGCArgs([]string{"--debug", "--local-config=/etc/rkt", "UUID"})
	if err != nil || !cmp.Equal(g, GCArgs{LocalConfig: "/etc/rkt", UUID: "UUID"}) {
		t.Errorf("ParseGCArgs: %+v, %v", g, err)
	}
	for _, bad := range [][]string{{"--bogus", "UUID"}, {}, {"a", "b"}} {
		if _, err := ParseGCArgs(bad); err == nil {
			t.Errorf("ParseGCArgs(%q): no error", bad)
		}
	}
	if _, err := ParseStopArgs([]string{"--signal=x"}); err == nil {
		t.Error("ParseStopArgs(--signal=x): no error")
	}
}
