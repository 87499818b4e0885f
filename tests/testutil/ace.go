package testutil

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/appc/spec/schema"

	"github.com/rkt-ng/rkt/manifests"
)

// acePackage is the appc executor conformance validator, a main package of
// the appc/spec module pinned in go.mod.
const (
	aceModule  = "github.com/appc/spec"
	acePackage = aceModule + "/ace"
)

var (
	aceOnce sync.Once
	aceBin  string
	aceDir  string // the appc/spec module source, for the manifest templates
	aceErr  error
)

// ACEValidator returns the appc ACE validator program (`ace` of
// github.com/appc/spec v0.8.11, the `ace-validator` of appc's build script),
// built static once per test binary like BuildInspect, or $ACE_VALIDATOR if
// set. Its first argument selects the mode: main, sidekick, prestart or
// poststop.
func ACEValidator(t testing.TB) string {
	t.Helper()
	bin, _ := aceBuild(t)
	return bin
}

func aceBuild(t testing.TB) (bin, srcDir string) {
	t.Helper()
	root := RepoRoot(t)
	aceOnce.Do(func() {
		aceDir, aceErr = moduleDir(root, aceModule)
		if aceErr != nil {
			return
		}
		if p := os.Getenv("ACE_VALIDATOR"); p != "" {
			if _, aceErr = os.Stat(p); aceErr != nil {
				aceErr = fmt.Errorf("ACE_VALIDATOR: %w", aceErr)
			}
			aceBin = p
			return
		}
		sum := sha256.Sum256([]byte(root))
		aceBin, aceErr = goBuild(root, acePackage, "ace-validator-"+hex.EncodeToString(sum[:6]))
	})
	if aceErr != nil {
		t.Fatalf("ace validator: %v", aceErr)
	}
	return aceBin, aceDir
}

// moduleDir returns the source directory of a module required by the
// checkout at root (in the module cache).
func moduleDir(root, module string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool(), "list", "-m", "-f", "{{.Dir}}", module)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return "", fmt.Errorf("go list -m %s: %w", module, err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("go list -m %s: module not downloaded", module)
	}
	return dir, nil
}

// ACEImages builds the two ACIs of appc's scripts/build-ace-validator-acis:
// coreos.com/ace-validator-main and coreos.com/ace-validator-sidekick, each
// with the manifest of ace/image_manifest_{main,sidekick}.json.in (os and arch
// filled in as the script does) and a rootfs holding /ace-validator and the
// directory /opt/acvalidator. Run them together in one pod with an empty
// volume named "database":
//
//	rkt run --insecure-options=image --mds-register --volume database,kind=empty MAIN SIDEKICK
//
// and expect "prestart OK", "main OK", "sidekick OK" and "poststop OK".
func ACEImages(t testing.TB) (main, sidekick string) {
	t.Helper()
	bin, dir := aceBuild(t)
	build := func(typ string) string {
		t.Helper()
		tmpl := filepath.Join(dir, "ace", "image_manifest_"+typ+".json.in")
		b, err := os.ReadFile(tmpl)
		if err != nil {
			t.Fatalf("ace validator manifest: %v", err)
		}
		arch := appcArch[runtime.GOARCH]
		if arch == "" {
			arch = runtime.GOARCH
		}
		b = []byte(strings.NewReplacer("@ACI_OS@", runtime.GOOS, "@ACI_ARCH@", arch).Replace(string(b)))
		im, err := manifests.DecodeImage(b)
		if err != nil {
			t.Fatalf("ace validator manifest %s: %v", tmpl, err)
		}
		return NewACI(t, im.Name.String(),
			WithHostFile(bin, "/ace-validator"),
			WithDir("/opt/acvalidator", 0o755, 0, 0),
			WithManifest(func(m *schema.ImageManifest) { *m = *im }),
		)
	}
	return build("main"), build("sidekick")
}
