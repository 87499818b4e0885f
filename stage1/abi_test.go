package stage1

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func TestRunArgsRoundTrip(t *testing.T) {
	in := RunArgs{Debug: true, Mutable: true, Net: "default,foo:IP=1.2.3.4", MDSToken: "tok", Hostname: "h", DisableSeccomp: true,
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

func TestReadMDSToken(t *testing.T) {
	write := func(t *testing.T, content string, mode os.FileMode) string {
		t.Helper()
		dir := t.TempDir()
		p := filepath.Join(dir, MDSTokenFile)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	if tok, err := ReadMDSToken(t.TempDir()); err != nil || tok != "" {
		t.Errorf("no file: %q, %v; want \"\", nil", tok, err)
	}
	if tok, err := ReadMDSToken(write(t, "abc123\n", 0o600)); err != nil || tok != "abc123" {
		t.Errorf("0600 file: %q, %v; want abc123", tok, err)
	}
	for _, tc := range []struct {
		name string
		dir  func(t *testing.T) string
	}{
		{"world readable", func(t *testing.T) string { return write(t, "abc", 0o644) }},
		{"empty", func(t *testing.T) string { return write(t, "", 0o600) }},
		{"too long", func(t *testing.T) string { return write(t, strings.Repeat("a", 2000), 0o600) }},
		{"symlink", func(t *testing.T) string {
			dir := t.TempDir()
			os.Symlink(filepath.Join(write(t, "abc", 0o600), MDSTokenFile), filepath.Join(dir, MDSTokenFile))
			return dir
		}},
		{"fifo", func(t *testing.T) string {
			dir := t.TempDir()
			if err := unix.Mkfifo(filepath.Join(dir, MDSTokenFile), 0o600); err != nil {
				t.Fatal(err)
			}
			return dir
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tok, err := ReadMDSToken(tc.dir(t)); err == nil {
				t.Errorf("accepted, token %q", tok)
			}
		})
	}
}

func TestEntrypointsMDSTokenFile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value string
		want  bool
	}{
		{"declared", "true", true},
		{"other value", "yes", false},
		{"absent", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im := schema.BlankImageManifest()
			im.Name = "example.com/stage1"
			im.Annotations.Set(AnnotationRun, "/init")
			if tc.value != "" {
				im.Annotations.Set(AnnotationMDSTokenFile, tc.value)
			}
			ep, err := EntrypointsOf(im)
			if err != nil {
				t.Fatal(err)
			}
			if ep.MDSTokenFile != tc.want {
				t.Errorf("MDSTokenFile = %v, want %v", ep.MDSTokenFile, tc.want)
			}
		})
	}
}

func TestEntrypointsMutable(t *testing.T) {
	all := map[string]string{AnnotationAppAdd: "/app-add", AnnotationAppStart: "/app-start", AnnotationAppStop: "/app-stop", AnnotationAppRm: "/app-rm"}
	for _, tc := range []struct {
		name    string
		without string
		wantErr bool
	}{
		{"all four", "", false},
		{"no app/add", AnnotationAppAdd, true},
		{"no app/rm", AnnotationAppRm, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im := schema.BlankImageManifest()
			im.Name = "example.com/stage1"
			im.Annotations.Set(AnnotationRun, "/init")
			for k, v := range all {
				if k != tc.without {
					im.Annotations.Set(types.ACIdentifier(k), v)
				}
			}
			ep, err := EntrypointsOf(im)
			if err != nil {
				t.Fatal(err)
			}
			err = ep.Mutable()
			if (err != nil) != tc.wantErr {
				t.Fatalf("Mutable() = %v, want error %v", err, tc.wantErr)
			}
			if err != nil && (!errors.Is(err, ErrNoAppEntrypoints) || !strings.Contains(err.Error(), tc.without)) {
				t.Errorf("Mutable() = %v, want ErrNoAppEntrypoints naming %s", err, tc.without)
			}
		})
	}
}

// TestEntrypointsReopenLog: app/reopen-log is optional (a stage1 without it
// writes no CRI logs and stays mutable).
func TestEntrypointsReopenLog(t *testing.T) {
	im := schema.BlankImageManifest()
	im.Name = "example.com/stage1"
	im.Annotations.Set(AnnotationRun, "/init")
	ep, err := EntrypointsOf(im)
	if err != nil || ep.AppReopenLog != "" {
		t.Fatalf("EntrypointsOf without app/reopen-log = %q, %v", ep.AppReopenLog, err)
	}
	im.Annotations.Set(AnnotationAppReopenLog, "/app-reopen-log")
	if ep, err = EntrypointsOf(im); err != nil || ep.AppReopenLog != "/app-reopen-log" {
		t.Fatalf("EntrypointsOf with app/reopen-log = %q, %v", ep.AppReopenLog, err)
	}
}

func TestAppArgs(t *testing.T) {
	in := AppArgs{Debug: true, Force: true, Stdin: true, TTY: true, App: "web", UUID: "0f0f0f0f-0000-4000-8000-000000000000"}
	out, err := ParseAppArgs(in.Argv())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
	for _, bad := range [][]string{
		{"--app=web"},
		{"--app=Bad_Name", "u"},
		{"--app=../x", "u"},
		{"--bogus", "--app=web", "u"},
		{"u", "--app=web"},
	} {
		if _, err := ParseAppArgs(bad); err == nil {
			t.Errorf("ParseAppArgs(%q) succeeded", bad)
		}
	}
}
