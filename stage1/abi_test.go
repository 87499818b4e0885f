package stage1

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRunArgsRoundTrip(t *testing.T) {
	in := RunArgs{Debug: true, Net: "default,foo:IP=1.2.3.4", MDSToken: "tok", Hostname: "h", DisableSeccomp: true,
		DNSConfMode: "resolv=stage0,hosts=default", IPC: "private", UUID: "0f0f0f0f-0000-4000-8000-000000000000"}
	argv, dropped := in.Argv(InterfaceVersion)
	if len(dropped) != 0 {
		t.Fatalf("dropped %v at the current version", dropped)
	}
	out, err := ParseRunArgs(argv)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
}

func TestRunArgsDropsNewerFlags(t *testing.T) {
	in := RunArgs{Hostname: "h", IPC: "parent", DNSConfMode: "resolv=host", UUID: "u"}
	argv, dropped := in.Argv(1)
	if diff := cmp.Diff([]string{"u"}, argv); diff != "" {
		t.Errorf("argv (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"--hostname=h", "--dns-conf-mode=resolv=host", "--ipc=parent"}, dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
}

func TestParseRunArgsErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"unknown flag", []string{"--bogus", "u"}},
		{"no uuid", []string{"--debug"}},
		{"uuid not last", []string{"u", "--debug"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseRunArgs(tc.args); err == nil {
				t.Errorf("ParseRunArgs(%q) succeeded", tc.args)
			}
		})
	}
}
