package testutil

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/manifests"
)

type tarEntry struct {
	Type     byte
	Mode     int64
	UID, GID int
	Content  string
	Link     string
}

// readACI returns the decoded manifest and the rootfs entries of an ACI.
func readACI(t *testing.T, p string) (*schema.ImageManifest, map[string]tarEntry) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		if r, err = gzip.NewReader(br); err != nil {
			t.Fatal(err)
		}
	}
	tr := tar.NewReader(r)
	var im *schema.ImageManifest
	entries := map[string]tarEntry{}
	for i := 0; ; i++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if h.Name != "manifest" {
				t.Fatalf("first entry %q, want manifest", h.Name)
			}
			if im, err = manifests.DecodeImage(b); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if !h.ModTime.Equal(aciModTime) {
			t.Errorf("%s: mtime %v, want %v", h.Name, h.ModTime, aciModTime)
		}
		entries[h.Name] = tarEntry{Type: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid, Content: string(b), Link: h.Linkname}
	}
	if im == nil {
		t.Fatal("no manifest in ACI")
	}
	return im, entries
}

func TestNewACIRoundTrip(t *testing.T) {
	t.Parallel()
	host := filepath.Join(t.TempDir(), "tool")
	if err := os.WriteFile(host, []byte("#!/bin/true\n"), 0o750); err != nil {
		t.Fatal(err)
	}
	opts := []ACIOption{
		WithExec("/bin/app", "--flag"),
		WithUser("1000", "100"),
		WithSupplementaryGIDs(10, 20),
		WithWorkingDir("/work"),
		WithEnv("A", "1"),
		WithEnv("B", "two"),
		WithMountPoint("data", "/data", true),
		WithPort("http", "tcp", 8080),
		WithIsolator("resource/memory", `{"limit": "100M"}`),
		WithIsolator("example.com/unknown-isolator", `{"anything": [1, 2]}`),
		WithEventHandler("pre-start", "/bin/pre", "x"),
		WithAnnotation("authors", "someone"),
		WithAnnotation("authors", "someone else"),
		WithLabel("version", "1.0"),
		WithLabel("os", "linux"),
		WithDependency("example.com/base", "", map[string]string{"version": "2", "arch": "amd64"}),
		WithPathWhitelist("/bin/app", "/etc/passwd"),
		WithFile("/etc/app.conf", "key=value\n", 0o640),
		WithFile("/bin/suid", "", 0o4755),
		WithFile("/bin/sgid", "", os.ModeSetgid|0o711),
		WithFileOwned("/home/u/.profile", "x", 0o600, 1000, 100),
		WithDir("/data", 0o1777, 0, 0),
		WithDir("/home/u", 0o700, 1000, 100),
		WithSymlink("/bin/alias", "app"),
		WithHostFile(host, "/bin/app"),
		WithPasswd("root:x:0:0::/:/bin/sh\nu:x:1000:100::/home/u:/bin/sh\n"),
		WithGroup("root:x:0:\nusers:x:100:\n"),
		WithManifest(func(im *schema.ImageManifest) {
			im.Annotations.Set("added-by", "WithManifest")
		}),
	}
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", compress), func(t *testing.T) {
			t.Parallel()
			o := opts
			if compress {
				o = append(append([]ACIOption{}, opts...), WithGzip())
			}
			p := NewACI(t, "example.com/app", o...)
			im, entries := readACI(t, p)

			if im.Name != "example.com/app" {
				t.Errorf("name %q", im.Name)
			}
			labels := map[string]string{}
			for _, l := range im.Labels {
				labels[string(l.Name)] = l.Value
			}
			if diff := cmp.Diff(map[string]string{"os": "linux", "arch": appcArch[runtime.GOARCH], "version": "1.0"}, labels); diff != "" {
				t.Errorf("labels mismatch (-want +got):\n%s", diff)
			}
			app := im.App
			if app == nil {
				t.Fatal("no app")
			}
			gotApp := map[string]any{
				"exec": []string(app.Exec), "user": app.User, "group": app.Group,
				"gids": app.SupplementaryGIDs, "wd": app.WorkingDirectory,
				"env":   fmt.Sprint(app.Environment),
				"mount": fmt.Sprint(app.MountPoints), "ports": fmt.Sprint(app.Ports),
				"handlers": fmt.Sprint(app.EventHandlers),
			}
			wantApp := map[string]any{
				"exec": []string{"/bin/app", "--flag"}, "user": "1000", "group": "100",
				"gids": []int{10, 20}, "wd": "/work",
				"env":      fmt.Sprint(types.Environment{{Name: "A", Value: "1"}, {Name: "B", Value: "two"}}),
				"mount":    fmt.Sprint([]types.MountPoint{{Name: "data", Path: "/data", ReadOnly: true}}),
				"ports":    fmt.Sprint([]types.Port{{Name: "http", Protocol: "tcp", Port: 8080, Count: 1}}),
				"handlers": fmt.Sprint([]types.EventHandler{{Name: "pre-start", Exec: types.Exec{"/bin/pre", "x"}}}),
			}
			if diff := cmp.Diff(wantApp, gotApp); diff != "" {
				t.Errorf("app mismatch (-want +got):\n%s", diff)
			}
			if len(app.Isolators) != 2 {
				t.Fatalf("isolators %v, want 2", app.Isolators)
			}
			mem, ok := app.Isolators[0].Value().(*types.ResourceMemory)
			if !ok || mem.Limit().String() != "100M" {
				t.Errorf("memory isolator %#v", app.Isolators[0].Value())
			}
			if !manifests.IsUnknown(&app.Isolators[1]) || string(*app.Isolators[1].ValueRaw) != `{"anything":[1,2]}` {
				t.Errorf("unknown isolator not kept: %s", *app.Isolators[1].ValueRaw)
			}
			if v, _ := im.Annotations.Get("authors"); v != "someone else" {
				t.Errorf("annotation authors = %q", v)
			}
			if v, _ := im.Annotations.Get("added-by"); v != "WithManifest" {
				t.Errorf("annotation added-by = %q", v)
			}
			wantDeps := types.Dependencies{{ImageName: "example.com/base", Labels: types.Labels{{Name: "arch", Value: "amd64"}, {Name: "version", Value: "2"}}}}
			if diff := cmp.Diff(wantDeps, im.Dependencies, cmp.Comparer(func(a, b types.Hash) bool { return a == b })); diff != "" {
				t.Errorf("dependencies mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"/bin/app", "/etc/passwd"}, im.PathWhitelist); diff != "" {
				t.Errorf("pathWhitelist mismatch (-want +got):\n%s", diff)
			}

			dir := func(mode int64, uid, gid int) tarEntry {
				return tarEntry{Type: tar.TypeDir, Mode: mode, UID: uid, GID: gid}
			}
			want := map[string]tarEntry{
				"rootfs/":                dir(0o755, 0, 0),
				"rootfs/bin/":            dir(0o755, 0, 0),
				"rootfs/bin/app":         {Type: tar.TypeReg, Mode: 0o750, Content: "#!/bin/true\n"},
				"rootfs/bin/suid":        {Type: tar.TypeReg, Mode: 0o4755},
				"rootfs/bin/sgid":        {Type: tar.TypeReg, Mode: 0o2711},
				"rootfs/bin/alias":       {Type: tar.TypeSymlink, Mode: 0o777, Link: "app"},
				"rootfs/data/":           dir(0o1777, 0, 0),
				"rootfs/etc/":            dir(0o755, 0, 0),
				"rootfs/etc/app.conf":    {Type: tar.TypeReg, Mode: 0o640, Content: "key=value\n"},
				"rootfs/etc/passwd":      {Type: tar.TypeReg, Mode: 0o644, Content: "root:x:0:0::/:/bin/sh\nu:x:1000:100::/home/u:/bin/sh\n"},
				"rootfs/etc/group":       {Type: tar.TypeReg, Mode: 0o644, Content: "root:x:0:\nusers:x:100:\n"},
				"rootfs/home/":           dir(0o755, 0, 0),
				"rootfs/home/u/":         dir(0o700, 1000, 100),
				"rootfs/home/u/.profile": {Type: tar.TypeReg, Mode: 0o600, UID: 1000, GID: 100, Content: "x"},
			}
			if diff := cmp.Diff(want, entries); diff != "" {
				t.Errorf("rootfs mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuildInspectStatic(t *testing.T) {
	t.Parallel()
	p := BuildInspect(t)
	f, err := elf.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Errorf("%s has an ELF interpreter: not static", p)
		}
	}
	if p2 := BuildInspect(t); p2 != p {
		t.Errorf("second BuildInspect = %s, want the same %s", p2, p)
	}
}

func TestNewACIReproducible(t *testing.T) {
	t.Parallel()
	a := NewACI(t, "example.com/same", WithFile("/f", "x", 0o644), WithExec("/f"))
	b := NewACI(t, "example.com/same", WithFile("/f", "x", 0o644), WithExec("/f"), WithGzip())
	c := NewACI(t, "example.com/same", WithFile("/f", "y", 0o644), WithExec("/f"))
	idA, idB, idC := ImageID(t, a), ImageID(t, b), ImageID(t, c)
	if !strings.HasPrefix(idA, "sha512-") || len(idA) != len("sha512-")+128 {
		t.Errorf("ImageID = %q, want sha512-<128 hex>", idA)
	}
	if idA != idB {
		t.Errorf("same content: IDs %s and %s (gzip) differ", idA, idB)
	}
	if idA == idC {
		t.Errorf("different content: same ID %s", idA)
	}
}

func TestNewACIWithoutApp(t *testing.T) {
	t.Parallel()
	im, entries := readACI(t, NewACI(t, "example.com/empty", WithoutApp()))
	if im.App != nil {
		t.Errorf("app = %+v, want none", im.App)
	}
	if diff := cmp.Diff(map[string]tarEntry{"rootfs/": {Type: tar.TypeDir, Mode: 0o755}}, entries); diff != "" {
		t.Errorf("rootfs mismatch (-want +got):\n%s", diff)
	}
}

func TestNewACIInspectAndBusybox(t *testing.T) {
	t.Parallel()
	im, entries := readACI(t, NewACI(t, "example.com/inspect", WithInspect(), WithBusybox("sh", "true")))
	if diff := cmp.Diff(types.Exec{"/inspect"}, im.App.Exec); diff != "" {
		t.Errorf("exec mismatch (-want +got):\n%s", diff)
	}
	for _, p := range []string{"rootfs/inspect", "rootfs/bin/busybox"} {
		e := entries[p]
		if e.Type != tar.TypeReg || e.Mode&0o111 == 0 || !strings.HasPrefix(e.Content, "\x7fELF") {
			t.Errorf("%s: type %c mode %o, want an executable ELF file", p, e.Type, e.Mode)
		}
	}
	for _, a := range []string{"sh", "true"} {
		if e := entries["rootfs/bin/"+a]; e.Type != tar.TypeSymlink || e.Link != "busybox" {
			t.Errorf("/bin/%s = %+v, want a symlink to busybox", a, e)
		}
	}
	// WithExec wins over WithInspect's default, in any order.
	im, _ = readACI(t, NewACI(t, "example.com/inspect2", WithExec("/inspect", "--print-msg=x"), WithInspect()))
	if diff := cmp.Diff(types.Exec{"/inspect", "--print-msg=x"}, im.App.Exec); diff != "" {
		t.Errorf("exec mismatch (-want +got):\n%s", diff)
	}
}

func TestNewACIBadIsolator(t *testing.T) {
	t.Parallel()
	// NewACI must fail the test: run it under a recorder.
	rec := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		NewACI(rec, "example.com/bad", WithIsolator("resource/memory", `{"limit": "lots"}`))
	}()
	<-done
	if len(rec.fatals) != 1 || !strings.Contains(rec.fatals[0], "image manifest of example.com/bad") {
		t.Errorf("fatal messages %q, want one about the image manifest", rec.fatals)
	}
}

// recorder is a testing.TB whose failures are recorded, not reported.
// Fatalf ends the calling goroutine, as testing's does.
type recorder struct {
	testing.TB
	errors, fatals []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, a ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, a...))
}

func (r *recorder) Fatalf(format string, a ...any) {
	r.fatals = append(r.fatals, fmt.Sprintf(format, a...))
	runtime.Goexit()
}

func (r *recorder) Fatal(a ...any) {
	r.fatals = append(r.fatals, fmt.Sprint(a...))
	runtime.Goexit()
}

func TestKeyPairSignFile(t *testing.T) {
	t.Parallel()
	k := NewKeyPair(t, "Test Signer", "signer@example.com")
	other := NewKeyPair(t, "Other", "other@example.com")
	aci := NewACI(t, "example.com/signed", WithFile("/f", "x", 0o644))
	sig := k.SignFile(t, aci)
	if sig != aci+".asc" {
		t.Errorf("SignFile = %q, want %q", sig, aci+".asc")
	}
	sigBytes, err := os.ReadFile(sig)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(sigBytes, []byte("-----BEGIN PGP SIGNATURE-----")) {
		t.Errorf("signature is not armored: %.40q", sigBytes)
	}
	pub, err := os.ReadFile(k.WritePublicKey(t))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(pub))
	if err != nil {
		t.Fatalf("read armored public key: %v", err)
	}
	if len(ring) != 1 || ring[0].PrivateKey != nil {
		t.Fatalf("key ring %v: want one public-only key", ring)
	}
	if got := fmt.Sprintf("%x", ring[0].PrimaryKey.Fingerprint); got != k.Fingerprint() || len(got) != 40 {
		t.Errorf("fingerprint %s, want %s (40 hex digits)", got, k.Fingerprint())
	}
	verify := func(ring openpgp.EntityList, data []byte) error {
		_, err := openpgp.CheckArmoredDetachedSignature(ring, bytes.NewReader(data), bytes.NewReader(sigBytes), nil)
		return err
	}
	data, err := os.ReadFile(aci)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(ring, data); err != nil {
		t.Errorf("signature does not verify: %v", err)
	}
	tampered := append([]byte{}, data...)
	tampered[len(tampered)/2] ^= 1
	if err := verify(ring, tampered); err == nil {
		t.Error("signature verifies a tampered ACI")
	}
	otherRing, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(other.ArmoredPublicKey(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(otherRing, data); err == nil {
		t.Error("signature verifies with another key")
	}
}

func TestStubStage1Manifest(t *testing.T) {
	t.Parallel()
	im, entries := readACI(t, StubStage1(t, WithAnnotation("coreos.com/rkt/stage1/interface-version", "6")))
	got := map[string]string{}
	for _, a := range im.Annotations {
		got[string(a.Name)] = a.Value
	}
	want := map[string]string{
		"coreos.com/rkt/stage1/run":               "/run-stub",
		"coreos.com/rkt/stage1/enter":             "/enter-stub",
		"coreos.com/rkt/stage1/gc":                "/gc-stub",
		"coreos.com/rkt/stage1/stop":              "/stop-stub",
		"coreos.com/rkt/stage1/interface-version": "6",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("annotations mismatch (-want +got):\n%s", diff)
	}
	if im.App != nil {
		t.Errorf("stage1 has an app: %+v", im.App)
	}
	for _, e := range []string{"run", "enter", "gc", "stop"} {
		if en := entries["rootfs/"+e+"-stub"]; en.Type != tar.TypeReg || en.Mode&0o111 == 0 {
			t.Errorf("/%s-stub: %+v, want an executable", e, en.Mode)
		}
	}
}

// stubPod makes a pod directory with a pod manifest whose first app runs
// exec, and an appsinfo image manifest.
func stubPod(t *testing.T, podApp string, imageExec []string) string {
	t.Helper()
	pod := t.TempDir()
	pm := `{"acKind":"PodManifest","acVersion":"0.8.11","apps":[{"name":"a","image":{"id":"sha512-00"}` + podApp + `}]}`
	if err := os.WriteFile(filepath.Join(pod, "pod"), []byte(pm), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(pod, "appsinfo", "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	im, _ := json.Marshal(map[string]any{"app": map[string]any{"exec": imageExec}})
	if err := os.WriteFile(filepath.Join(pod, "appsinfo", "a", "manifest"), im, 0o644); err != nil {
		t.Fatal(err)
	}
	return pod
}

// runStub runs an entrypoint of the stub stage1 the way stage0 does: cwd is
// the pod dir and, when lock is set, fd 3 is the pod dir holding a flock
// and RKT_LOCK_FD=3.
func runStub(t *testing.T, entry, pod string, lock bool, args ...string) (string, string, int, int) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), entry+"-stub")
	b, err := os.ReadFile(stubBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Dir = pod
	d, err := os.Open(pod)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if lock {
		if err := unix.Flock(int(d.Fd()), unix.LOCK_EX); err != nil {
			t.Fatal(err)
		}
	}
	cmd.ExtraFiles = []*os.File{d}
	cmd.Env = append(os.Environ(), "RKT_LOCK_FD=3")
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	cmd.Run()
	if cmd.ProcessState == nil {
		t.Fatalf("run stub %s: did not start", entry)
	}
	return so.String(), se.String(), cmd.ProcessState.ExitCode(), cmd.Process.Pid
}

// TestStubStage1RunRefuses covers what the stub's run checks before it
// starts any app (running apps needs root: the conformance suite in
// tests/stage1_conformance_test.go does that).
func TestStubStage1RunRefuses(t *testing.T) {
	t.Parallel()
	uuid := "6f3b9e5c-1d2a-4c8e-9b7a-0e1f2d3c4b5a"
	for _, tc := range []struct {
		name    string
		lock    bool
		args    []string
		wantErr string
	}{
		{name: "fd not locked", args: []string{"--net=host", uuid}, wantErr: "holds no flock"},
		{name: "network", lock: true, args: []string{"--net=default", uuid}, wantErr: "only --net=host"},
		{name: "no network flag", lock: true, args: []string{uuid}, wantErr: "only --net=host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pod := stubPod(t, "", []string{"/x"})
			_, stderr, code, _ := runStub(t, "run", pod, tc.lock, tc.args...)
			if code != 254 || !strings.Contains(stderr, tc.wantErr) {
				t.Errorf("exit code %d, stderr %q; want 254 and %q", code, stderr, tc.wantErr)
			}
			if _, err := os.Stat(filepath.Join(pod, "pid")); err == nil {
				t.Errorf("a refused run wrote the pid file")
			}
		})
	}
}

func TestStubStage1OtherEntrypoints(t *testing.T) {
	t.Parallel()
	pod := stubPod(t, "", []string{"/x"})
	// gc of a pod that never started an app: nothing to do, every time.
	for range 2 {
		stdout, stderr, code, _ := runStub(t, "gc", pod, false, "--local-config=/etc/rkt", "uuid-1")
		if code != 0 || stdout != "" || stderr != "" {
			t.Errorf("gc: code %d stdout %q stderr %q, want 0 and no output", code, stdout, stderr)
		}
	}
	// stop of a pod whose run never wrote its pid: an error of the stage1.
	if _, stderr, code, _ := runStub(t, "stop", pod, false, "uuid-1"); code != 254 || !strings.Contains(stderr, "pid") {
		t.Errorf("stop without a pid file: code %d stderr %q, want 254 naming pid", code, stderr)
	}
	// enter of an app that is not running.
	if _, stderr, code, _ := runStub(t, "enter", pod, false, "--pid=1", "--appname=a", "--", "/bin/true"); code != 254 || !strings.Contains(stderr, "not running") {
		t.Errorf("enter: code %d stderr %q, want 254 and \"not running\"", code, stderr)
	}
}

func TestStubStage1LockFdNotPodDir(t *testing.T) {
	t.Parallel()
	pod := stubPod(t, "", []string{"/x"})
	bin := filepath.Join(t.TempDir(), "run-stub")
	b, err := os.ReadFile(stubBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{"RKT_LOCK_FD=", "RKT_LOCK_FD=2"} {
		cmd := exec.CommandContext(t.Context(), bin, "uuid")
		cmd.Dir = pod
		cmd.Env = append(os.Environ(), env)
		out, err := cmd.CombinedOutput()
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 254 || !strings.Contains(string(out), "RKT_LOCK_FD") {
			t.Errorf("%s: %v %q, want exit 254 naming RKT_LOCK_FD", env, err, out)
		}
	}
}

func TestParseMountPoints(t *testing.T) {
	t.Parallel()
	in := "22 1 0:21 / / rw - ext4 /dev/vda rw\n" +
		"36 22 0:30 / /tmp/a\\040b rw - tmpfs tmpfs rw\n" +
		"37 36 0:31 / /tmp/a\\040b/c\\134d rw shared:3 - tmpfs tmpfs rw\n"
	want := []string{"/", "/tmp/a b", `/tmp/a b/c\d`}
	if diff := cmp.Diff(want, parseMountPoints(in)); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

// fakeRkt writes a shell script standing in for rkt: it appends its
// arguments to log, prints to both streams, and exits with the number after
// "exit-with" when given.
func fakeRkt(t *testing.T) (bin, log string) {
	t.Helper()
	dir := t.TempDir()
	bin, log = filepath.Join(dir, "rkt"), filepath.Join(dir, "log")
	script := `#!/bin/sh
echo "$*" >> ` + log + `
echo "out:$5"
echo "err:$5" >&2
if [ "$5" = exit-with ]; then exit "$6"; fi
if [ "$5" = sleep ]; then echo started; exec sleep 60; fi
`
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, log
}

func TestCtx(t *testing.T) {
	bin, log := fakeRkt(t)
	t.Setenv("RKT", bin)
	var flags string
	t.Run("commands", func(t *testing.T) {
		c := NewCtx(t)
		flags = strings.Join(c.Args(), " ")
		// The data dir is root-only, like /var/lib/rkt's store; the config
		// dirs are readable.
		for d, mode := range map[string]os.FileMode{c.DataDir: 0o700, c.LocalConfig: 0o755, c.SystemConfig: 0o755, c.UserConfig: 0o755} {
			if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != mode {
				t.Errorf("dir %s: %v, want mode %o", d, err, mode)
			}
		}
		res := c.Run(t, "exit-with", "3")
		if res.MaxRSS <= 0 {
			t.Errorf("Run: MaxRSS %d KiB, want the command's peak RSS", res.MaxRSS)
		}
		res.MaxRSS = 0
		if diff := cmp.Diff(Result{Stdout: "out:exit-with\n", Stderr: "err:exit-with\n", ExitCode: 3}, res); diff != "" {
			t.Errorf("Run mismatch (-want +got):\n%s", diff)
		}
		c.MustRun(t, "status")
		p := c.Start(t, "sleep")
		p.WaitOutput(t, "started", 10*time.Second)
		if p.Exited() {
			t.Error("sleeping rkt exited")
		}
		if err := p.Signal(unix.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if res := p.Wait(t, 10*time.Second); res.ExitCode != -1 {
			t.Errorf("after SIGTERM: exit code %d, want -1 (signal)", res.ExitCode)
		}
	})
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{flags + " exit-with 3", flags + " status", flags + " sleep", flags + " gc --grace-period=0s --expire-prepared=0s"}
	if diff := cmp.Diff(want, strings.Split(strings.TrimSpace(string(b)), "\n")); diff != "" {
		t.Errorf("rkt invocations mismatch (-want +got):\n%s", diff)
	}
	for _, f := range []string{"--dir=", "--local-config=", "--system-config=", "--user-config="} {
		if !strings.Contains(flags, f) {
			t.Errorf("global flags %q lack %s", flags, f)
		}
	}
}

func TestCtxCleanupReportsLeakedMounts(t *testing.T) {
	RequireRoot(t)
	bin, _ := fakeRkt(t)
	t.Setenv("RKT", bin)
	c := NewCtx(t)
	leak := filepath.Join(c.DataDir, "pods", "run", "x", "stage1", "rootfs")
	if err := os.MkdirAll(leak, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("leak", leak, "tmpfs", 0, ""); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	inner := filepath.Join(leak, "proc")
	if err := os.Mkdir(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("leak2", inner, "tmpfs", 0, ""); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	rec := &recorder{TB: t}
	c.cleanup(rec)
	want := []string{"cleanup: mount leaked after gc: " + leak, "cleanup: mount leaked after gc: " + inner}
	if diff := cmp.Diff(want, rec.errors); diff != "" {
		t.Errorf("cleanup errors mismatch (-want +got):\n%s", diff)
	}
	if left, err := mountsUnder(c.DataDir); err != nil || len(left) != 0 {
		t.Errorf("mounts left after cleanup: %v %v", left, err)
	}
}

func TestRequireCommand(t *testing.T) {
	t.Parallel()
	if p := RequireCommand(t, "sh"); !filepath.IsAbs(p) {
		t.Errorf("RequireCommand(sh) = %q, want an absolute path", p)
	}
	rec := &skipRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		RequireCommand(rec, "no-such-command-rkt-ng")
	}()
	<-done
	if !strings.Contains(rec.msg, "requires no-such-command-rkt-ng") || !strings.Contains(rec.msg, "apt-get install") {
		t.Errorf("skip message %q", rec.msg)
	}
}

type skipRecorder struct {
	testing.TB
	msg string
}

func (s *skipRecorder) Helper() {}

func (s *skipRecorder) Skipf(format string, a ...any) {
	s.msg = fmt.Sprintf(format, a...)
	runtime.Goexit()
}
