package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// criRecord is one line of a CRI log: <RFC3339Nano> <stream> <F|P> <content>.
var criRecord = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) ([FP]) (.*)$`)

// readCRILog parses a CRI log file; each record must be well formed.
func readCRILog(t *testing.T, path string) [][3]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs [][3]string
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if line == "" {
			continue
		}
		m := criRecord.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("%s: malformed CRI log record %q", path, line)
		}
		if _, err := time.Parse(time.RFC3339Nano, m[1]); err != nil {
			t.Fatalf("%s: record %q: %v", path, line, err)
		}
		recs = append(recs, [3]string{m[2], m[3], m[4]})
	}
	return recs
}

// waitCRILog waits until the CRI log at path has a record with content want.
func waitCRILog(t *testing.T, path, want string) [][3]string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			recs := readCRILog(t, path)
			for _, r := range recs {
				if r[2] == want {
					return recs
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("CRI log %s has no record %q: %v", path, want, recs)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("no CRI log %s: %v", path, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAppCRILog: an app added with --cri-log-path has its stdout and stderr
// written by the pod to that host file in the CRI log format (stream tags,
// F records for whole lines, a line written in pieces joined), while
// `rkt logs` keeps working; after the file is renamed away (the kubelet's
// rotation), `rkt app reopen-log` makes the pod write a new file at the
// path. A symlink at the path is refused, as is reopening the log of an app
// that stopped.
func TestAppCRILog(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := testutil.NewACI(t, "rkt-ng.test/cri-log", testutil.WithBusybox("sh", "echo", "printf", "sleep"),
		testutil.WithExec("/bin/sh"))
	p, uuid := startSandbox(t, c, "--net=host")
	defer func() {
		c.Run(t, "stop", uuid)
		p.Wait(t, 30*time.Second)
	}()
	logDir := t.TempDir()
	path := filepath.Join(logDir, "talker", "0.log")
	script := `echo out1; echo err1 >&2; printf 'in '; sleep 0.3; echo pieces; i=0; while :; do echo tick$i; i=$((i+1)); sleep 0.1; done`
	c.MustRun(t, "--insecure-options=image", "app", "add", "--cri-log-path="+path, uuid, aci, "--name=talker", "--", "-c", script)
	c.MustRun(t, "app", "start", "--app=talker", uuid)
	recs := waitCRILog(t, path, "tick3")
	want := map[string][2]string{"out1": {"stdout", "F"}, "err1": {"stderr", "F"}, "in pieces": {"stdout", "F"}}
	for _, r := range recs {
		if w, ok := want[r[2]]; ok {
			if r[0] != w[0] || r[1] != w[1] {
				t.Errorf("record %q: %s %s, want %s %s", r[2], r[0], r[1], w[0], w[1])
			}
			delete(want, r[2])
		}
	}
	if len(want) != 0 {
		t.Errorf("CRI log lacks %v: %v", want, recs)
	}
	waitLog(t, c, uuid, "talker", "err1") // rkt's own log still gets it
	// Not the pod's own stdout and stderr too: under rkt-cri those go to a
	// file that nobody rotates.
	if out := p.Stdout() + p.Stderr(); strings.Contains(out, "tick") || strings.Contains(out, "err1") {
		t.Errorf("an app with a CRI log also wrote to the pod's stdout/stderr:\n%s", out)
	}

	// Rotation: rename the file away, reopen, and the pod writes a new file.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	c.MustRun(t, "app", "reopen-log", "--app=talker", uuid)
	recs = readCRILog(t, path+".1")
	last := recs[len(recs)-1][2]
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil && len(readCRILog(t, path)) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new CRI log after reopen-log")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if recs := readCRILog(t, path+".1"); recs[len(recs)-1][2] != last {
		t.Errorf("the rotated file still grows after reopen-log: last record %q, was %q", recs[len(recs)-1][2], last)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm()&0o007 != 0 {
		t.Errorf("new CRI log: %v, mode %v", err, st.Mode())
	}

	// A stopped app's log cannot be reopened; one line, exit 254.
	c.MustRun(t, "app", "stop", "--app=talker", uuid)
	r := c.Run(t, "app", "reopen-log", "--app=talker", uuid)
	wantExit(t, r, 254)
	oneLineError(t, r, "talker", "not running")

	// A symlink at the log path is not followed: the app does not start
	// and the symlink's target is untouched.
	target := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(target, []byte("keep\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	evil := filepath.Join(logDir, "evil.log")
	if err := os.Symlink(target, evil); err != nil {
		t.Fatal(err)
	}
	c.MustRun(t, "--insecure-options=image", "app", "add", "--cri-log-path="+evil, uuid, aci, "--name=evil", "--", "-c", "echo pwned")
	r = c.Run(t, "app", "start", "--app=evil", uuid)
	wantExit(t, r, 254)
	oneLineError(t, r, "evil")
	if b, _ := os.ReadFile(target); string(b) != "keep\n" {
		t.Errorf("symlink target written through the CRI log: %q", b)
	}

	// Bad input: a relative path, one line, exit 254, no app added.
	r = c.Run(t, "--insecure-options=image", "app", "add", "--cri-log-path=rel/0.log", uuid, aci, "--name=rel")
	wantExit(t, r, 254)
	oneLineError(t, r, "--cri-log-path", "rel/0.log")
	if r := c.Run(t, "app", "status", "--app=rel", uuid); r.ExitCode != 254 {
		t.Errorf("an app with a bad --cri-log-path was added:\n%s", r)
	}
}
