package tests

import (
	"os"
	"path/filepath"
	"slices"
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

// TestMetadataServiceEndpoints reads every GET endpoint of the metadata
// service from inside a pod: appc's (ace.md: pod/uuid, pod/manifest,
// pod/annotations, apps/NAME/annotations, apps/NAME/image/manifest,
// apps/NAME/image/id), the single-annotation endpoints rkt 1.30 served as
// well (pod/annotations/NAME and apps/NAME/annotations/NAME, text/plain,
// 404 for an unknown name), and apps/NAME/image/annotations, the image
// manifest's own annotations (not merged with the app's).
func TestMetadataServiceEndpoints(t *testing.T) {
	testutil.RequireRoot(t)
	aci := testutil.NewACI(t, "rkt-ng.test/mdsall", testutil.WithBusybox("sh", "wget", "echo", "grep"),
		testutil.WithAnnotation("example.com/who", "image"),
		testutil.WithAnnotation("example.com/kept", "from-image"))
	script := `u="$AC_METADATA_URL/acMetadata/v1"
for p in pod/uuid pod/manifest pod/annotations apps/mdsall/annotations apps/mdsall/image/manifest apps/mdsall/image/id \
	apps/mdsall/image/annotations apps/mdsall/annotations/example.com/who apps/mdsall/annotations/example.com/kept; do
	echo "$p=$(wget -q -O - $u/$p)"
done
if wget -q -O - $u/apps/mdsall/annotations/example.com/nope; then echo "unknown annotation served"; fi
echo done`
	c := testutil.NewCtx(t)
	r := runInsecure(t, c, "--net=host", aci, "--annotation=example.com/who=app", "--exec=/bin/sh", "--", "-c", script)
	wantExit(t, r, 0)
	// Whole lines: pod/manifest holds the script itself.
	if lines := strings.Split(r.Stdout, "\n"); slices.Contains(lines, "unknown annotation served") || !slices.Contains(lines, "done") {
		t.Errorf("output:\n%s", r.Stdout)
	}
	for _, p := range []string{"pod/uuid", "pod/manifest", "pod/annotations", "apps/mdsall/annotations", "apps/mdsall/image/manifest", "apps/mdsall/image/id"} {
		if field(t, r.Stdout, p) == "" {
			t.Errorf("%s: empty answer\n%s", p, r.Stdout)
		}
	}
	for p, want := range map[string]string{
		"apps/mdsall/image/id":                     testutil.ImageID(t, aci),
		"apps/mdsall/annotations/example.com/who":  "app",
		"apps/mdsall/annotations/example.com/kept": "from-image",
		"apps/mdsall/image/annotations":            `[{"name":"example.com/who","value":"image"},{"name":"example.com/kept","value":"from-image"}]`,
	} {
		if got := field(t, r.Stdout, p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
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
