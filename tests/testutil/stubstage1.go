package testutil

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// StubStage1Name is the image name of the stage1 that StubStage1 builds.
const StubStage1Name = "rkt-ng.test/stub-stage1"

// StubInterfaceVersion is the stage1 interface version the stub declares
// unless an option overrides the annotation: one less than rkt-ng's, so that
// tests see stage0 drop the newer arguments.
const StubInterfaceVersion = "5"

// stubSource is the stub stage1 program: one binary copied to the four
// entrypoints, telling them apart by its own file name.
//
// run checks the stage1 ABI's lock fd (an open fd of the pod directory, which
// is the working directory, holding a flock), writes `pid`, prints
// "stub stage1 ran: <uuid>" and "stub stage1 args: <args>", and exits with N
// when the first app's exec has an argument --exit=N (from the pod manifest,
// or from the app's image manifest in appsinfo/), else 0. The other
// entrypoints print "stub stage1 <entry>: <uuid>" and their args and exit 0.
// Errors print "stub stage1: ..." and exit 254.
const stubSource = `package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

func main() {
	entry := "run"
	if exe, err := os.Executable(); err == nil {
		entry = strings.TrimSuffix(filepath.Base(exe), "-stub")
	}
	args := os.Args[1:]
	uuid := ""
	if len(args) > 0 {
		uuid = args[len(args)-1]
	}
	if entry != "run" {
		fmt.Printf("stub stage1 %s: %s\n", entry, uuid)
		fmt.Printf("stub stage1 args: %s\n", strings.Join(args, " "))
		return
	}
	os.Exit(run(uuid, args))
}

func fail(format string, a ...any) int {
	fmt.Fprintf(os.Stderr, "stub stage1: "+format+"\n", a...)
	return 254
}

func run(uuid string, args []string) int {
	s := os.Getenv("RKT_LOCK_FD")
	fd, err := strconv.Atoi(s)
	if err != nil || fd < 0 {
		return fail("RKT_LOCK_FD %q: not a file descriptor", s)
	}
	li, err := os.NewFile(uintptr(fd), "RKT_LOCK_FD").Stat()
	if err != nil {
		return fail("RKT_LOCK_FD %d: %v", fd, err)
	}
	wd, err := os.Stat(".")
	if err != nil {
		return fail("working directory: %v", err)
	}
	if !os.SameFile(li, wd) {
		return fail("RKT_LOCK_FD %d is not the pod directory (the working directory)", fd)
	}
	info, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if err != nil {
		return fail("RKT_LOCK_FD %d: %v", fd, err)
	}
	if !strings.Contains(string(info), "FLOCK") {
		return fail("RKT_LOCK_FD %d holds no flock", fd)
	}
	if err := os.WriteFile("pid.tmp", []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return fail("write pid: %v", err)
	}
	if err := os.Rename("pid.tmp", "pid"); err != nil {
		return fail("write pid: %v", err)
	}
	fmt.Printf("stub stage1 ran: %s\n", uuid)
	fmt.Printf("stub stage1 args: %s\n", strings.Join(args, " "))
	code, err := exitCode()
	if err != nil {
		return fail("%v", err)
	}
	return code
}

type appSection struct {
	Exec []string ` + "`json:\"exec\"`" + `
}

func exitCode() (int, error) {
	b, err := os.ReadFile("pod")
	if err != nil {
		return 0, err
	}
	var pm struct {
		Apps []struct {
			Name string      ` + "`json:\"name\"`" + `
			App  *appSection ` + "`json:\"app\"`" + `
		} ` + "`json:\"apps\"`" + `
	}
	if err := json.Unmarshal(b, &pm); err != nil {
		return 0, fmt.Errorf("pod manifest: %v", err)
	}
	if len(pm.Apps) == 0 {
		return 0, nil
	}
	app := pm.Apps[0].App
	if app == nil {
		b, err := os.ReadFile(filepath.Join("appsinfo", pm.Apps[0].Name, "manifest"))
		if err != nil {
			return 0, err
		}
		var im struct {
			App *appSection ` + "`json:\"app\"`" + `
		}
		if err := json.Unmarshal(b, &im); err != nil {
			return 0, fmt.Errorf("image manifest of %s: %v", pm.Apps[0].Name, err)
		}
		if app = im.App; app == nil {
			return 0, nil
		}
	}
	for _, a := range app.Exec {
		if v, ok := strings.CutPrefix(a, "--exit="); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 255 {
				return 0, fmt.Errorf("exec argument %q: want --exit=0..255", a)
			}
			return n, nil
		}
	}
	return 0, nil
}
`

var (
	stubOnce sync.Once
	stubPath string
	stubErr  error
)

// stubBinary builds the stub stage1 program once per test binary.
func stubBinary(t testing.TB) string {
	t.Helper()
	stubOnce.Do(func() {
		src, err := os.MkdirTemp("", "rkt-ng-stub-stage1-")
		if err != nil {
			stubErr = err
			return
		}
		defer os.RemoveAll(src)
		files := map[string]string{
			"go.mod":  "module rkt-ng.test/stubstage1\n\ngo 1.22\n",
			"main.go": stubSource,
		}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
				stubErr = err
				return
			}
		}
		sum := sha256.Sum256([]byte(stubSource))
		stubPath, stubErr = goBuild(src, ".", "stub-stage1-"+hex.EncodeToString(sum[:6]))
	})
	if stubErr != nil {
		t.Fatalf("build stub stage1: %v", stubErr)
	}
	return stubPath
}

// StubStage1 builds a minimal stage1 ACI for stage1 ABI tests and returns its
// path: its entrypoints /run-stub, /enter-stub, /gc-stub and /stop-stub are
// named by the coreos.com/rkt/stage1/{run,enter,gc,stop} annotations, and it
// declares interface version StubInterfaceVersion. opts are applied last, so
// WithAnnotation can change or add annotations.
func StubStage1(t testing.TB, opts ...ACIOption) string {
	t.Helper()
	bin := stubBinary(t)
	base := []ACIOption{
		WithoutApp(),
		WithAnnotation("coreos.com/rkt/stage1/interface-version", StubInterfaceVersion),
	}
	for _, e := range []string{"run", "enter", "gc", "stop"} {
		base = append(base,
			WithHostFile(bin, "/"+e+"-stub"),
			WithAnnotation("coreos.com/rkt/stage1/"+e, "/"+e+"-stub"))
	}
	return NewACI(t, StubStage1Name, append(base, opts...)...)
}
