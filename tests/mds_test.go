package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// TestMetadataServiceFromApp reads the metadata service from inside a pod on
// each network mode, checks the token is required, and that event handlers
// get the same appc environment as the app.
func TestMetadataServiceFromApp(t *testing.T) {
	testutil.RequireRoot(t)
	shared := t.TempDir()
	aci := testutil.NewACI(t, "rkt-ng.test/mds", testutil.WithBusybox("sh", "wget", "cat", "env", "echo", "sed"),
		testutil.WithMountPoint("shared", "/shared", false),
		testutil.WithAnnotation("example.com/who", "image"),
		testutil.WithEventHandler("pre-start", "/bin/sh", "-c", "env > /shared/prestart.env"))
	script := `set -e
test -n "$AC_METADATA_URL"
case "$AC_METADATA_URL" in */) echo "trailing slash"; exit 1;; esac
u="$AC_METADATA_URL/acMetadata/v1"
echo "uuid=$(wget -q -O - $u/pod/uuid)"
echo "id=$(wget -q -O - $u/apps/mds/image/id)"
wget -q -O - $u/apps/mds/annotations | sed 's/^/annotations=/'; echo
bad=$(echo "$AC_METADATA_URL" | sed 's|/[^/]*$|/not-the-token|')
if wget -q -O - "$bad/acMetadata/v1/pod/uuid"; then echo "bad token accepted"; exit 1; fi
echo done`
	for _, net := range []string{"host", "default", "none"} {
		t.Run(net, func(t *testing.T) {
			c := testutil.NewCtx(t)
			r := runInsecure(t, c, "--net="+net, "--volume=shared,kind=host,source="+shared, aci, "--exec=/bin/sh", "--", "-c", script)
			wantExit(t, r, 0)
			uuid := field(t, r.Stdout, "uuid")
			if len(uuid) != 36 {
				t.Errorf("pod/uuid = %q", uuid)
			}
			if id := field(t, r.Stdout, "id"); id != testutil.ImageID(t, aci) {
				t.Errorf("image/id = %q, want %s", id, testutil.ImageID(t, aci))
			}
			if !strings.Contains(r.Stdout, `"example.com/who"`) {
				t.Errorf("app annotations lack the image's:\n%s", r.Stdout)
			}
			env, err := os.ReadFile(filepath.Join(shared, "prestart.env"))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"AC_APP_NAME=mds", "container=rkt", "AC_METADATA_URL=http://", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"} {
				if !strings.Contains(string(env), want) {
					t.Errorf("pre-start handler environment lacks %q:\n%s", want, env)
				}
			}
		})
	}
}

// TestRenderingOrderAndWhitelist runs an image with dependencies A->[B,C],
// C->[D] that all write /order, and a whitelist.
func TestRenderingOrderAndWhitelist(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	fetch := func(aci string) string {
		return strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", aci).Stdout)
	}
	d := testutil.NewACI(t, "rkt-ng.test/dep-d", testutil.WithoutApp(), testutil.WithFile("/order", "D", 0o644), testutil.WithFile("/only-d", "d", 0o644))
	dID := fetch(d)
	b := testutil.NewACI(t, "rkt-ng.test/dep-b", testutil.WithoutApp(), testutil.WithFile("/order", "B", 0o644), testutil.WithFile("/only-b", "b", 0o644))
	bID := fetch(b)
	cc := testutil.NewACI(t, "rkt-ng.test/dep-c", testutil.WithoutApp(), testutil.WithFile("/order", "C", 0o644),
		testutil.WithDependency("rkt-ng.test/dep-d", dID, nil))
	cID := fetch(cc)
	a := inspectACI(t, "rkt-ng.test/dep-a",
		testutil.WithDependency("rkt-ng.test/dep-b", bID, nil), testutil.WithDependency("rkt-ng.test/dep-c", cID, nil))
	r := runInsecure(t, c, "--net=host", a, "--", "--stat-file=/only-b", "--stat-file=/only-d", "--print-file=/order")
	wantExit(t, r, 0)
	// Laid down B, D, C, A: C's /order overrides D's and B's, and every
	// dependency's own files are there.
	if !strings.HasPrefix(r.Stdout, "CSTAT=") || !strings.Contains(r.Stdout, "STAT=/only-b") || !strings.Contains(r.Stdout, "STAT=/only-d") {
		t.Errorf("/order is not C's (B, D, C, A order):\n%q", r.Stdout)
	}
	// A whitelist on the top image drops what it does not list.
	w := inspectACI(t, "rkt-ng.test/dep-w",
		testutil.WithDependency("rkt-ng.test/dep-b", bID, nil),
		testutil.WithPathWhitelist("/inspect", "/order"))
	r = runInsecure(t, c, "--net=host", w, "--", "--print-file=/order", "--stat-file=/only-b")
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, "only-b") {
		t.Errorf("a file outside the whitelist is present:\n%s", r)
	}
}
