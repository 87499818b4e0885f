package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// TestHostilePasswd: stage1 reads the image's /etc/passwd and /etc/group as
// host root. A FIFO there must not hang rkt, and a symlink must not read a
// host file.
func TestHostilePasswd(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	run := func(t *testing.T, aci string) testutil.Result {
		t.Helper()
		p := c.Start(t, "--insecure-options=image", "run", "--net=none", aci, "--user=someone", "--", "--print-user")
		return p.Wait(t, 30*time.Second)
	}
	t.Run("fifo passwd", func(t *testing.T) {
		r := run(t, inspectACI(t, "rkt-ng.test/fifo-passwd", testutil.WithFIFO("/etc/passwd")))
		wantExit(t, r, 254)
		oneLineError(t, r, "/etc/passwd", "not a regular file", "FIFO")
	})
	t.Run("fifo group", func(t *testing.T) {
		r := c.Start(t, "--insecure-options=image", "run", "--net=none",
			inspectACI(t, "rkt-ng.test/fifo-group", testutil.WithFIFO("/etc/group")), "--group=somegroup", "--", "--print-user").Wait(t, 30*time.Second)
		wantExit(t, r, 254)
		oneLineError(t, r, "/etc/group", "FIFO")
	})
	t.Run("symlink to host", func(t *testing.T) {
		host := filepath.Join(t.TempDir(), "passwd")
		if err := os.WriteFile(host, []byte("someone:x:4242:4242::/:/bin/sh\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := run(t, inspectACI(t, "rkt-ng.test/link-passwd", testutil.WithSymlink("/etc/passwd", host)))
		if strings.Contains(r.Stdout, "4242") {
			t.Fatalf("the app runs with a uid from a host file\n%s", r)
		}
		wantExit(t, r, 254)
		oneLineError(t, r, "/etc/passwd", "symlink")
	})
}
