package testutil

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/appc/spec/schema/types"
	"github.com/google/go-cmp/cmp"
)

func TestACEImages(t *testing.T) {
	mainACI, sideACI := ACEImages(t)
	bin := ACEValidator(t)
	binBytes, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}

	type want struct {
		name        string
		exec        []string
		handlers    map[string][]string
		workdir     string
		mountPoints []types.MountPoint
		ports       []types.Port
		isolators   []string
		annotations map[string]string
		env         map[string]string
	}
	arch := appcArch[runtime.GOARCH]
	for _, tc := range []struct {
		aci  string
		want want
	}{
		{mainACI, want{
			name: "coreos.com/ace-validator-main",
			exec: []string{"/ace-validator", "main"},
			handlers: map[string][]string{
				"pre-start": {"/ace-validator", "prestart"},
				"post-stop": {"/ace-validator", "poststop"},
			},
			workdir:     "/opt/acvalidator",
			mountPoints: []types.MountPoint{{Name: "database", Path: "/db"}},
			ports:       []types.Port{{Name: "www", Protocol: "tcp", Port: 80, Count: 1}},
			isolators:   []string{"resource/memory"},
			annotations: map[string]string{
				"created":       "2014-10-27T19:32:27.67021798Z",
				"authors":       "Carly Container <carly@example.com>, Nat Network <nat@example.com>",
				"homepage":      "https://github.com/appc/spec",
				"documentation": "https://github.com/appc/spec/blob/master/README.md",
				"lorem":         "ipsum",
			},
			env: map[string]string{"IN_ACE_VALIDATOR": "correct"},
		}},
		{sideACI, want{
			name:        "coreos.com/ace-validator-sidekick",
			exec:        []string{"/ace-validator", "sidekick"},
			handlers:    map[string][]string{},
			mountPoints: []types.MountPoint{{Name: "database", Path: "/db"}},
			annotations: map[string]string{},
			env:         map[string]string{},
		}},
	} {
		t.Run(tc.want.name, func(t *testing.T) {
			im, entries := readACI(t, tc.aci)
			a := im.App
			if a == nil {
				t.Fatal("no app")
			}
			got := want{
				name:        im.Name.String(),
				exec:        a.Exec,
				handlers:    map[string][]string{},
				workdir:     a.WorkingDirectory,
				mountPoints: a.MountPoints,
				ports:       a.Ports,
				annotations: map[string]string{},
				env:         map[string]string{},
			}
			for _, h := range a.EventHandlers {
				got.handlers[h.Name] = h.Exec
			}
			for _, i := range a.Isolators {
				got.isolators = append(got.isolators, i.Name.String())
			}
			for _, an := range im.Annotations {
				got.annotations[an.Name.String()] = an.Value
			}
			for _, e := range a.Environment {
				got.env[e.Name] = e.Value
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("manifest mismatch (-want +got):\n%s", diff)
			}
			if a.User != "0" || a.Group != "0" {
				t.Errorf("user:group %s:%s, want 0:0", a.User, a.Group)
			}
			labels := map[string]string{}
			for _, l := range im.Labels {
				labels[l.Name.String()] = l.Value
			}
			wantLabels := map[string]string{"version": "0.8.11", "os": "linux", "arch": arch}
			if diff := cmp.Diff(wantLabels, labels); diff != "" {
				t.Errorf("labels mismatch (-want +got):\n%s", diff)
			}

			v, ok := entries["rootfs/ace-validator"]
			if !ok || v.Type != tar.TypeReg || v.Mode&0o111 == 0 || v.UID != 0 || v.GID != 0 {
				t.Fatalf("rootfs/ace-validator = %+v, %v; want an executable regular file owned by root", v, ok)
			}
			if !bytes.Equal([]byte(v.Content), binBytes) {
				t.Errorf("rootfs/ace-validator differs from %s", bin)
			}
			if d, ok := entries["rootfs/opt/acvalidator/"]; !ok || d.Type != tar.TypeDir {
				t.Errorf("rootfs/opt/acvalidator = %+v, %v; want a directory", d, ok)
			}
		})
	}

	// The binary is static (a pod has no libc) and is the validator: without
	// a mode it prints its usage and exits 64 (ace/validator.go).
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked", bin)
		}
	}
	out, err := exec.CommandContext(t.Context(), bin).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 64 || !bytes.Contains(out, []byte("usage:")) {
		t.Errorf("%s without arguments: %v, output %q; want exit 64 and a usage line", bin, err, out)
	}
}
