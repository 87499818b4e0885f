package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// TestHostVolumeNotChosenByImage: in a pod of two apps, an image whose mount
// point is named like the pod's host volume does not get it without an
// explicit --mount; the app the user mounted it into does.
func TestHostVolumeNotChosenByImage(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "secret.txt"), []byte("top secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	benign := inspectACI(t, "rkt-ng.test/benign")
	hostile := inspectACI(t, "rkt-ng.test/hostile-mount", testutil.WithMountPoint("secret", "/loot", false))
	r := runInsecure(t, c, "--net=none", "--volume=secret,kind=host,source="+host,
		benign, "--mount=volume=secret,target=/secret", "--", "--print-file=/secret/secret.txt", "---",
		hostile, "--", "--write-file=/loot/pwned", "--content=x", "--print-file=/loot/secret.txt")
	if !strings.Contains(r.Stdout, "top secret") {
		t.Errorf("the app with --mount did not get the host volume\n%s", r)
	}
	if strings.Count(r.Stdout, "top secret") > 1 {
		t.Errorf("the hostile image read the host volume\n%s", r)
	}
	if _, err := os.Stat(filepath.Join(host, "pwned")); err == nil {
		t.Errorf("the hostile image wrote into the host volume")
	}
	if !strings.Contains(r.Stderr, "host volume not mounted") || !strings.Contains(r.Stderr, "app=hostile-mount") {
		t.Errorf("no warning about the unmatched host volume\n%s", r)
	}
	// The hostile app still gets an empty volume at its mount point.
	r = runInsecure(t, c, "--net=none", "--volume=secret,kind=host,source="+host,
		benign, "--", "--exit-code=0", "---",
		hostile, "--", "--write-file=/loot/pwned", "--content=x")
	wantExit(t, r, 0)
	if _, err := os.Stat(filepath.Join(host, "pwned")); err == nil {
		t.Errorf("the hostile image wrote into the host volume")
	}
	// One app: the user's --volume can only be for it; matched, with a warning.
	r = runInsecure(t, c, "--net=none", "--volume=secret,kind=host,source="+host, hostile, "--", "--print-file=/loot/secret.txt")
	wantExit(t, r, 0)
	if !strings.Contains(r.Stdout, "top secret") || !strings.Contains(r.Stderr, "make it explicit with --mount") {
		t.Errorf("one-app pod: host volume by name\n%s", r)
	}
}

// TestPodManifestMountPoints: an app of a pod manifest whose mount points
// are in apps[].app.mountPoints (not apps[].mounts) gets the pod's volume of
// the same name (appc), here a host volume.
func TestPodManifestMountPoints(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	host := t.TempDir()
	aci := inspectACI(t, "rkt-ng.test/pm-mounts")
	id := strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", aci).Stdout)
	pm := filepath.Join(t.TempDir(), "pod.json")
	os.WriteFile(pm, []byte(`{"acKind":"PodManifest","acVersion":"0.8.11",
"volumes":[{"name":"data","kind":"host","source":"`+host+`"}],
"apps":[{"name":"w","image":{"id":"`+id+`"},
"app":{"exec":["/inspect","--write-file=/data/out.txt","--content=from pod"],"user":"0","group":"0",
"mountPoints":[{"name":"data","path":"/data"}]}},
{"name":"v","image":{"id":"`+id+`"},
"app":{"exec":["/inspect","--exit-code=0"],"user":"0","group":"0"}}]}`), 0o644)
	r := c.Run(t, "run", "--net=none", "--pod-manifest="+pm)
	wantExit(t, r, 0)
	if b, err := os.ReadFile(filepath.Join(host, "out.txt")); string(b) != "from pod" {
		t.Errorf("file written through the pod manifest's mount point: %q, %v\n%s", b, err, r)
	}
}
