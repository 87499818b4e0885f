package mds

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rkt-ng/rkt/stage1"
	"github.com/rkt-ng/rkt/tests/testutil"
)

// aciManifest returns the manifest file of an uncompressed ACI.
func aciManifest(t *testing.T, aci string) []byte {
	t.Helper()
	f, err := os.Open(aci)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s: no manifest: %v", aci, err)
		}
		if h.Name == "manifest" {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}

// TestACEValidator runs appc's own ACE validator ("ace-validator main")
// against the handler, chrooted into a directory that satisfies its file
// checks. Only its mount point check cannot pass there (no /proc, /db is not
// a mount), so that must be the only failure; every metadata service check
// (content types, UUID, manifests, merged annotations, image IDs, sign and
// verify, each within the validator's 100 ms client timeout) must pass.
func TestACEValidator(t *testing.T) {
	testutil.RequireRoot(t) // chroot
	mainACI, sideACI := testutil.ACEImages(t)
	bin := testutil.ACEValidator(t)
	mainIM, sideIM := aciManifest(t, mainACI), aciManifest(t, sideACI)
	mainID, sideID := testutil.ImageID(t, mainACI), testutil.ImageID(t, sideACI)

	for _, tc := range []struct {
		name           string
		podAnnotations string
		appAnnotations string
	}{
		{"annotations", `[{"name": "ip-address", "value": "10.1.2.3"}]`, `[{"name": "lorem", "value": "from-pod"}, {"name": "extra", "value": "x"}]`},
		{"empty annotations", `[]`, `[]`},
		{"null annotations", `null`, `null`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			manifest := `{"acVersion": "0.8.11", "acKind": "PodManifest",
  "apps": [
    {"name": "ace-validator-main", "image": {"name": "coreos.com/ace-validator-main", "id": "` + mainID + `"},
     "annotations": ` + tc.appAnnotations + `,
     "mounts": [{"volume": "database", "path": "/db"}]},
    {"name": "ace-validator-sidekick", "image": {"name": "coreos.com/ace-validator-sidekick", "id": "` + sideID + `"},
     "mounts": [{"volume": "database", "path": "/db"}]}
  ],
  "volumes": [{"name": "database", "kind": "empty", "mode": "0755", "uid": 0, "gid": 0}],
  "isolators": [], "ports": [],
  "annotations": ` + tc.podAnnotations + `}`
			tok, err := stage1.NewMDSToken()
			if err != nil {
				t.Fatal(err)
			}
			h := newHandler(t, &Pod{
				UUID:     uuidA,
				Manifest: []byte(manifest),
				Apps: map[string]App{
					"ace-validator-main":     {ImageManifest: mainIM, ImageID: mainID},
					"ace-validator-sidekick": {ImageManifest: sideIM, ImageID: sideID},
				},
			}, tok, testKey)
			u := serve(t, h, tok)

			root := t.TempDir()
			for _, d := range []string{"opt/acvalidator", "db"} {
				if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			// The pre-start handler ran; the sidekick is up.
			for _, f := range []string{"prestart", "db/sidekick"} {
				if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			b, err := os.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, "ace-validator"), b, 0o755); err != nil {
				t.Fatal(err)
			}

			// The validator gives each request 100 ms. On a loaded machine
			// (go test ./... builds and runs other packages alongside) a
			// request can miss that for want of CPU alone, so a run whose
			// only extra failures are client timeouts is retried; any other
			// failure, or timeouts three times in a row, fails the test.
			for attempt := 1; ; attempt++ {
				for _, f := range []string{"main", "db/main"} {
					if err := os.Remove(filepath.Join(root, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
						t.Fatal(err)
					}
				}
				failures, out := runValidator(t, root, u)
				if len(failures) == 0 {
					t.Fatalf("ace-validator main: %s; want the /db mount check to fail in a chroot", out)
				}
				var other []string
				timeouts := 0
				for _, f := range failures[1:] {
					if strings.Contains(f, "Client.Timeout exceeded") {
						timeouts++
					} else {
						other = append(other, f)
					}
				}
				// The one check a chroot without /proc cannot satisfy.
				if !strings.Contains(failures[0], "mountinfo") || len(other) > 0 ||
					timeouts > 0 && attempt == 3 {
					t.Fatalf("ace-validator main (attempt %d): %s\nfailures (want only the /db mount check):\n%s",
						attempt, out, strings.Join(failures, "\n"))
				}
				if timeouts == 0 {
					break
				}
				t.Logf("attempt %d: %d requests timed out; retrying", attempt, timeouts)
			}
			if _, err := os.Stat(filepath.Join(root, "db/main")); err != nil {
				t.Errorf("the validator did not finish its checks: %v", err)
			}
		})
	}
}

// runValidator runs "ace-validator main" chrooted into root with the
// environment an executor gives the main app, and returns its failure lines
// and output.
func runValidator(t *testing.T, root, mdsURL string) ([]string, string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "/ace-validator", "main")
	cmd.Path = "/ace-validator"
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	cmd.Dir = "/opt/acvalidator"
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"AC_APP_NAME=ace-validator-main",
		"AC_METADATA_URL=" + mdsURL,
		"IN_ACE_VALIDATOR=correct",
		"container=rkt-ng",
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var failures []string
	for line := range strings.Lines(stderr.String()) {
		if f, ok := strings.CutPrefix(line, "==> "); ok {
			failures = append(failures, strings.TrimSpace(f))
		}
	}
	return failures, fmt.Sprintf("%v; stdout %q", err, stdout.String())
}
