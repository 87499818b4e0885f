package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// bundleProbe is what the bundle tests' images print: environment, user,
// working directory, capabilities, no_new_privs, seccomp mode, cgroup
// limits and how two syscalls fare.
var bundleProbe = []string{"/inspect",
	"--print-env=PATH", "--print-env=FOO", "--print-env=HOME", "--print-env=USER", "--print-env=AC_APP_NAME", "--print-env=container",
	"--print-user", "--print-groups", "--print-cwd", "--print-caps", "--print-no-new-privs",
	"--print-memorylimit", "--print-cpuquota", "--print-cpushares",
	"--syscall=mkdir", "--syscall=getpid",
	"--print-file=/proc/self/status", "--print-file=/proc/keys",
}

// probeFields collects the KEY=VALUE lines of a probe's output, and the
// Seccomp line of /proc/self/status as SECCOMP.
func probeFields(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "Seccomp:"); ok {
			m["SECCOMP"] = strings.TrimSpace(v)
			continue
		}
		if k, v, ok := strings.Cut(l, "="); ok && k != "" && !strings.ContainsAny(k, " \t:") {
			m[k] = v
		}
	}
	return m
}

// runBundle starts bundle with an OCI runtime (runc or crun) under a state
// directory of its own, waits for it and removes the container.
func runBundle(t *testing.T, runtime, bundle string) (stdout string, code int) {
	t.Helper()
	bin := testutil.RequireCommand(t, runtime)
	root := t.TempDir()
	id := fmt.Sprintf("rktng-bundle-%s-%d", runtime, time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	argv := func(args ...string) []string { return append([]string{bin, "--root", root}, args...) }
	if runtime == "crun" && crunRefusesHybrid() {
		// crun 1.8 refuses every container on a hybrid host whose cgroup2
		// hierarchy has a controller enabled (hugetlb here); it runs with
		// that hierarchy unmounted in a mount namespace of its own (the
		// host's mounts are untouched), using the v1 controllers.
		t.Log("crun: hybrid cgroups with controllers on cgroup2; running crun with /sys/fs/cgroup/unified unmounted in a private mount namespace")
		wrap := argv
		argv = func(args ...string) []string {
			return append([]string{"unshare", "--mount", "--propagation", "private", "sh", "-c",
				`umount -l /sys/fs/cgroup/unified && exec "$0" "$@"`}, wrap(args...)...)
		}
	}
	del := argv("delete", "--force", id)
	defer exec.Command(del[0], del[1:]...).Run()
	run := argv("run", "--bundle", bundle, id)
	cmd := exec.CommandContext(ctx, run[0], run[1:]...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s run: %v\n%s", runtime, err, errb.String())
	}
	if code != 0 {
		t.Logf("%s run exited %d\nstdout:\n%s\nstderr:\n%s", runtime, code, out.String(), errb.String())
	}
	return out.String(), code
}

// crunRefusesHybrid reports whether the host mixes cgroup v1 controllers
// with a cgroup2 hierarchy at /sys/fs/cgroup/unified that has controllers,
// which crun 1.8 refuses ("cgroups in hybrid mode not supported").
func crunRefusesHybrid() bool {
	b, err := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers")
	return err == nil && strings.TrimSpace(string(b)) != ""
}

// TestOCIBundle exports images as OCI runtime bundles and runs them with
// runc and crun: the app sees the same environment, user, working
// directory, capabilities, no_new_privs, seccomp filter and limits as under
// `rkt run`.
func TestOCIBundle(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "runc")
	testutil.RequireCommand(t, "crun")
	c := testutil.NewCtx(t)
	passwd := testutil.WithPasswd("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/false\n")
	group := testutil.WithGroup("root:x:0:\nuser:x:1000:\nextra:x:2000:\n")
	for _, tc := range []struct {
		name string
		opts []testutil.ACIOption
		want map[string]string // a few values checked outright
	}{
		{"root limits", []testutil.ACIOption{
			testutil.WithEnv("FOO", "bar baz"),
			testutil.WithWorkingDir("/etc"),
			testutil.WithIsolator("resource/memory", `{"limit":"64Mi"}`),
			testutil.WithIsolator("resource/cpu", `{"limit":"250m"}`),
			testutil.WithIsolator("os/linux/capabilities-remove-set", `{"set":["CAP_CHOWN"]}`),
			testutil.WithIsolator("os/linux/seccomp-remove-set", `{"set":["mkdir","mkdirat"],"errno":"ENOTSUP"}`),
		}, map[string]string{"FOO": "bar baz", "UID": "0", "CWD": "/etc", "CapEff": "00000000a80425fa",
			"CapBnd": "00000000a80425fa", "MEMORY_LIMIT": "67108864", "CPU_QUOTA": "250", "NoNewPrivs": "1", "SECCOMP": "2",
			"SYSCALL_GETPID": "OK", "SYSCALL_MKDIR": "ENOTSUP"}},
		{"user retain", []testutil.ACIOption{
			testutil.WithUser("user", "user"),
			testutil.WithSupplementaryGIDs(2000),
			testutil.WithIsolator("os/linux/capabilities-retain-set", `{"set":["CAP_NET_BIND_SERVICE"]}`),
		}, map[string]string{"UID": "1000", "GID": "1000", "HOME": "/home/user", "USER": "user", "CWD": "/",
			"CapEff": "0000000000000400", "CapAmb": "0000000000000400", "CapBnd": "0000000000000400", "GROUPS": "2000"}},
		{"user default", []testutil.ACIOption{testutil.WithUser("1000", "1000")},
			map[string]string{"UID": "1000", "CapEff": "0000000000000000", "CapBnd": "00000000a80425fb", "CapAmb": "0000000000000000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := append([]testutil.ACIOption{passwd, group, testutil.WithExec(bundleProbe...)}, tc.opts...)
			aci := inspectACI(t, "rkt-ng.test/bundle-"+strings.ReplaceAll(tc.name, " ", "-"), opts...)
			id := strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", aci).Stdout)
			bundle := filepath.Join(t.TempDir(), "bundle")
			c.MustRun(t, "image", "export", "--format=oci-bundle", id, bundle)

			r := runInsecure(t, c, "--net=host", aci)
			wantExit(t, r, 0)
			want := probeFields(r.Stdout)
			for k, v := range tc.want {
				if want[k] != v && !(k == "SYSCALL_MKDIR" && v == "ENOTSUP" && want[k] == "EOPNOTSUPP") {
					t.Errorf("rkt run: %s = %q, want %q", k, want[k], v)
				}
			}
			for _, rt := range []string{"runc", "crun"} {
				out, code := runBundle(t, rt, bundle)
				if code != 0 {
					t.Errorf("%s: exit %d", rt, code)
					continue
				}
				got := probeFields(out)
				for k, v := range want {
					if got[k] != v {
						t.Errorf("%s: %s = %q, under rkt run %q", rt, k, got[k], v)
					}
				}
				for k := range got {
					if _, ok := want[k]; !ok {
						t.Errorf("%s: %s = %q, not seen under rkt run", rt, k, got[k])
					}
				}
				if strings.Contains(out, "keyring") {
					t.Errorf("%s: /proc/keys is not masked\n%s", rt, out)
				}
			}
		})
	}
}

// TestOCIBundleLayout checks what export writes: config.json of
// runtime-spec 1.0.2 with the masked and read-only paths of the ns flavor,
// a rootfs with the image's files, and nothing else next to the bundle.
func TestOCIBundleLayout(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/bundle-layout", testutil.WithFile("/etc/hello", "hi\n", 0o644))
	id := strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", aci).Stdout)
	parent := t.TempDir()
	bundle := filepath.Join(parent, "b")
	c.MustRun(t, "image", "export", "--format=oci-bundle", id, bundle)
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Version string `json:"ociVersion"`
		Root    struct {
			Path string `json:"path"`
		} `json:"root"`
		Process struct {
			Args []string `json:"args"`
		} `json:"process"`
		Linux struct {
			MaskedPaths   []string `json:"maskedPaths"`
			ReadonlyPaths []string `json:"readonlyPaths"`
			Seccomp       *struct {
				DefaultAction string `json:"defaultAction"`
			} `json:"seccomp"`
		} `json:"linux"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("config.json: %v\n%s", err, b)
	}
	if cfg.Version != "1.0.2" || cfg.Root.Path != "rootfs" || len(cfg.Process.Args) != 1 || cfg.Process.Args[0] != "/inspect" {
		t.Errorf("config.json: version %q root %q args %q", cfg.Version, cfg.Root.Path, cfg.Process.Args)
	}
	if !strings.Contains(strings.Join(cfg.Linux.MaskedPaths, " "), "/proc/kcore") ||
		!strings.Contains(strings.Join(cfg.Linux.ReadonlyPaths, " "), "/proc/sys") {
		t.Errorf("masked %q read-only %q", cfg.Linux.MaskedPaths, cfg.Linux.ReadonlyPaths)
	}
	if cfg.Linux.Seccomp == nil || cfg.Linux.Seccomp.DefaultAction != "SCMP_ACT_KILL_PROCESS" {
		t.Errorf("seccomp profile: %+v, want the default retain set killing what it blocks", cfg.Linux.Seccomp)
	}
	if got, err := os.ReadFile(filepath.Join(bundle, "rootfs/etc/hello")); err != nil || string(got) != "hi\n" {
		t.Errorf("rootfs/etc/hello: %q %v", got, err)
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 1 {
		t.Errorf("left next to the bundle: %v", ents)
	}
	// An existing bundle is kept unless --overwrite.
	r := c.Run(t, "image", "export", "--format=oci-bundle", id, bundle)
	wantExit(t, r, 254)
	oneLineError(t, r, bundle, "--overwrite")
	c.MustRun(t, "image", "export", "--format=oci-bundle", "--overwrite", id, bundle)
	if ents, _ := os.ReadDir(parent); len(ents) != 1 {
		t.Errorf("left next to the bundle after --overwrite: %v", ents)
	}
}

// TestOCIBundleBadInput: one line, exit 254 (2 for a bad flag value), and
// no bundle directory or temporary left behind.
func TestOCIBundleBadInput(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	wide := inspectACI(t, "rkt-ng.test/bundle-wide", testutil.WithIsolator("os/linux/capabilities-retain-set", `{"set":["CAP_SYS_ADMIN"]}`))
	wideID := strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", wide).Stdout)
	noApp := testutil.NewACI(t, "rkt-ng.test/bundle-noapp", testutil.WithoutApp())
	noAppID := strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", noApp).Stdout)
	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		words []string
	}{
		{"unknown image", []string{"rkt-ng.test/no-such-image"}, 254, []string{"no-such-image"}},
		{"widening isolator", []string{wideID}, 254, []string{"os/linux/capabilities-retain-set"}},
		{"no app", []string{noAppID}, 254, []string{"bundle-noapp", "no app"}},
		{"bad format", []string{"--format=docker", wideID}, 2, []string{"docker"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			out := filepath.Join(parent, "b")
			args := append([]string{"image", "export"}, tc.args...)
			if !strings.HasPrefix(tc.args[0], "--format") {
				args = append([]string{"image", "export", "--format=oci-bundle"}, tc.args...)
			}
			r := c.Run(t, append(args, out)...)
			wantExit(t, r, tc.code)
			oneLineError(t, r, tc.words...)
			if ents, _ := os.ReadDir(parent); len(ents) != 0 {
				t.Errorf("left behind: %v", ents)
			}
		})
	}
}

// TestOCIBundlePreparedPod exports an app of a prepared pod: the bundle
// carries the app as prepared, with the user's flags (user, environment,
// capability grant, memory limit), and runc and crun show what
// run-prepared shows. The image asks for CAP_SYS_ADMIN, which `rkt image
// export` refuses and --caps-retain grants here.
func TestOCIBundlePreparedPod(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "runc")
	testutil.RequireCommand(t, "crun")
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/bundle-prepared",
		testutil.WithPasswd("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/false\n"),
		testutil.WithGroup("root:x:0:\nuser:x:1000:\n"),
		testutil.WithExec(bundleProbe...),
		testutil.WithIsolator("os/linux/capabilities-retain-set", `{"set":["CAP_SYS_ADMIN"]}`))
	r := c.MustRun(t, "--insecure-options=image", "prepare", "--quiet", aci,
		"--user=user", "--group=user", "--environment=FOO=prepared", "--memory=48Mi",
		"--caps-retain=CAP_SYS_ADMIN,CAP_NET_BIND_SERVICE")
	uuid := strings.TrimSpace(r.Stdout)
	parent := t.TempDir()
	bundle := filepath.Join(parent, "b")
	// Only a prepared pod's app: a wrong --app is one line, and nothing is written.
	r = c.Run(t, "export", "--format=oci-bundle", "--app=nope", uuid, bundle)
	wantExit(t, r, 254)
	oneLineError(t, r, "nope")
	c.MustRun(t, "export", "--format=oci-bundle", uuid, bundle)

	r = c.Run(t, "run-prepared", "--net=host", uuid)
	wantExit(t, r, 0)
	want := probeFields(r.Stdout)
	for k, v := range map[string]string{"UID": "1000", "FOO": "prepared", "MEMORY_LIMIT": "50331648",
		"CapEff": "0000000000200400", "CapAmb": "0000000000200400", "CapBnd": "0000000000200400"} {
		if want[k] != v {
			t.Errorf("run-prepared: %s = %q, want %q", k, want[k], v)
		}
	}
	for _, rt := range []string{"runc", "crun"} {
		out, code := runBundle(t, rt, bundle)
		if code != 0 {
			t.Errorf("%s: exit %d", rt, code)
			continue
		}
		got := probeFields(out)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, under run-prepared %q", rt, k, got[k], v)
			}
		}
	}
	// The pod has run: it is no longer prepared.
	r = c.Run(t, "export", "--format=oci-bundle", uuid, filepath.Join(parent, "again"))
	wantExit(t, r, 254)
	oneLineError(t, r, "want prepared")
	if ents, _ := os.ReadDir(parent); len(ents) != 1 {
		t.Errorf("left next to the bundle: %v", ents)
	}
}
