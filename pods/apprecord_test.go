package pods

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/pods/layout"
)

// TestAppRecordHostile: the status records are the pod's files; AppRecord
// reads only regular files of sane content and never follows a symlink or
// blocks on a FIFO.
func TestAppRecordHostile(t *testing.T) {
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p, err := d.Create("")
	if err != nil {
		t.Fatal(err)
	}
	status := layout.Dir(p.Path()).InStage1(layout.StatusDir)
	if err := os.MkdirAll(status, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("42"), 0o600)
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(status, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("ok", "3")
	write("ok"+layout.StartedSuffix, "")
	write("started", "")
	os.Rename(filepath.Join(status, "started"), filepath.Join(status, "started"+layout.StartedSuffix))
	write("garbage", "not a number")
	write("negative", "-1")
	write("huge", strings.Repeat("1", 10000))
	write("big", "300")
	if err := os.Symlink(secret, filepath.Join(status, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(status, "linkstart"+layout.StartedSuffix)); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(status, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name            string
		started, exited bool
		code            int
	}{
		{"ok", true, true, 3},
		{"started", true, false, 0},
		{"garbage", false, false, 0},
		{"negative", false, false, 0},
		{"huge", false, false, 0},
		{"big", false, false, 0},
		{"link", false, false, 0},
		{"linkstart", false, false, 0},
		{"fifo", false, false, 0},
		{"absent", false, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := p.AppRecord(tc.name)
			if got := !r.Started.IsZero(); got != tc.started {
				t.Errorf("started = %v, want %v", got, tc.started)
			}
			if got := !r.Finished.IsZero(); got != tc.exited {
				t.Errorf("exited = %v, want %v (code %d)", got, tc.exited, r.Code)
			}
			if tc.exited && r.Code != tc.code {
				t.Errorf("code = %d, want %d", r.Code, tc.code)
			}
		})
	}
}

// FuzzAppRecord: whatever the pod writes as an app's status record,
// AppRecord neither fails nor reports a code outside 0..255.
func FuzzAppRecord(f *testing.F) {
	for _, s := range []string{"0", "3", "143", "254", "-1", "256", " 7\n", "", "x", "99999999999999999999"} {
		f.Add([]byte(s))
	}
	d, err := OpenDir(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	p, err := d.Create("")
	if err != nil {
		f.Fatal(err)
	}
	status := layout.Dir(p.Path()).InStage1(layout.StatusDir)
	if err := os.MkdirAll(status, 0o755); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 8192 {
			data = data[:8192]
		}
		if err := os.WriteFile(filepath.Join(status, "app"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		r := p.AppRecord("app")
		if !r.Finished.IsZero() && (r.Code < 0 || r.Code > 255) {
			t.Errorf("AppRecord(%q) code %d", data, r.Code)
		}
	})
}
