package stage0

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/stage1"
)

// TestMountOverlayManyLayers mounts more long-named lower dirs than fit in
// mount(2)'s one-page option string.
func TestMountOverlayManyLayers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("requires root (uid=%d) to mount overlayfs; run: sudo -E go test ./stage0/", os.Geteuid())
	}
	base := filepath.Join(t.TempDir(), strings.Repeat("d", 100))
	var lowers []string // topmost first
	for i := range 60 {
		l := filepath.Join(base, fmt.Sprintf("%064x", i), "rootfs")
		if err := os.MkdirAll(l, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(l, "file"), fmt.Appendf(nil, "%d", i), 0o644)
		os.WriteFile(filepath.Join(l, fmt.Sprintf("only-%d", i)), nil, 0o644)
		lowers = append([]string{l}, lowers...)
	}
	if n := len(strings.Join(lowers, ":")); n < maxMountData {
		t.Fatalf("lower dirs take %d bytes: the test needs more than %d", n, maxMountData)
	}
	dir := t.TempDir()
	target, upper, work := filepath.Join(dir, "m"), filepath.Join(dir, "u"), filepath.Join(dir, "w")
	for _, d := range []string{target, upper, work} {
		os.Mkdir(d, 0o755)
	}
	if err := mountOverlay(target, lowers, upper, work); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(target, unix.MNT_DETACH)
	if b, err := os.ReadFile(filepath.Join(target, "file")); err != nil || string(b) != "59" {
		t.Errorf("file = %q, %v; want the top layer's 59", b, err)
	}
	for _, f := range []string{"only-0", "only-59"} {
		if _, err := os.Stat(filepath.Join(target, f)); err != nil {
			t.Errorf("%s from a layer missing: %v", f, err)
		}
	}
}

func TestStopSignals(t *testing.T) {
	t.Parallel()
	pm := schema.BlankPodManifest()
	for _, a := range []struct{ name, sig string }{{"a", "SIGINT"}, {"b", ""}, {"c", "SIGQUIT"}} {
		app := &types.App{User: "0", Group: "0"}
		if a.sig != "" {
			app.UserAnnotations = types.UserAnnotations{"appc.io/docker/stopsignal": a.sig}
		}
		pm.Apps = append(pm.Apps, schema.RuntimeApp{Name: types.ACName(a.name), App: app})
	}
	got := stopSignals(map[string]stage1.AppOptions{"c": {StopSignal: "SIGUSR1"}}, pm)
	want := map[string]stage1.AppOptions{"a": {StopSignal: "SIGINT"}, "c": {StopSignal: "SIGUSR1"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stopSignals (-want +got):\n%s", diff)
	}
}
