package tests

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// TestMetadataTokenNotInProc: while a pod with the metadata service runs on
// the host's network, its token is in no process's command line or
// environment (other than the app's own AC_METADATA_URL), and the token
// file in the pod directory is root-only.
func TestMetadataTokenNotInProc(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/mds-token")
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	p := c.Start(t, "--insecure-options=image", "run", "--net=host", "--mds-register", "--uuid-file-save="+uuidFile,
		aci, "--", "--print-env=AC_METADATA_URL", "--sleep=60")
	p.WaitOutput(t, "AC_METADATA_URL=", 30*time.Second)
	url := field(t, p.Stdout(), "AC_METADATA_URL")
	token := url[strings.LastIndex(url, "/")+1:]
	if len(token) < 32 {
		t.Fatalf("AC_METADATA_URL %q has no token", url)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	scanned := 0
	for _, dir := range procs {
		comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
		if cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
			scanned++
			if bytes.Contains(cmdline, []byte(token)) {
				t.Errorf("%s (%s) has the token on its command line: %q", dir, bytes.TrimSpace(comm), cmdline)
			}
		}
		environ, err := os.ReadFile(filepath.Join(dir, "environ"))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(environ, []byte{0}) {
			if !bytes.Contains(kv, []byte(token)) {
				continue
			}
			// The app itself is given the URL by appc's contract.
			if string(kv) == "AC_METADATA_URL="+url && strings.TrimSpace(string(comm)) == "inspect" {
				continue
			}
			t.Errorf("%s (%s) has the token in its environment: %q", dir, bytes.TrimSpace(comm), kv)
		}
	}
	if scanned < 3 {
		t.Fatalf("scanned only %d processes", scanned)
	}
	uuid, err := os.ReadFile(uuidFile)
	if err != nil {
		t.Fatal(err)
	}
	podDir := filepath.Join(c.DataDir, "pods", "run", string(uuid))
	fi, err := os.Stat(filepath.Join(podDir, "mds-token"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("mds-token: mode %v owner %d, want 0600 root", fi.Mode().Perm(), fi.Sys().(*syscall.Stat_t).Uid)
	}
	// No other file of the pod directory holds it.
	ents, _ := os.ReadDir(podDir)
	for _, e := range ents {
		if e.Name() == "mds-token" || !e.Type().IsRegular() {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(podDir, e.Name()))
		if bytes.Contains(b, []byte(token)) {
			t.Errorf("pod file %s holds the token", e.Name())
		}
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.Wait(t, 30*time.Second)
}
