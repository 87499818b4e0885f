package mds

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLoadKeyCreatesOnce(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "mds")
	path := filepath.Join(dir, "hmac-key")
	k1, err := LoadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != KeySize || bytes.Equal(k1, make([]byte, KeySize)) {
		t.Fatalf("key %x: want %d random bytes", k1, KeySize)
	}
	k2, err := LoadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1, k2) {
		t.Error("second LoadKey returned another key")
	}
	for p, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, path: 0o600, filepath.Dir(dir): 0o755 | os.ModeDir} {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode() & (os.ModeType | os.ModePerm); got != want {
			t.Errorf("%s: mode %v, want %v", p, got, want)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("key directory holds %v, want only the key (no temporary files)", entries)
	}
}

func TestLoadKeyConcurrent(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "mds", "hmac-key")
	const n = 16
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			keys[i], errs[i] = LoadKey(path)
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("LoadKey %d: %v", i, errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("LoadKey %d returned another key than LoadKey 0", i)
		}
	}
}

// TestLoadKeyHelperProcess is run by TestLoadKeyProcesses in child processes.
func TestLoadKeyHelperProcess(t *testing.T) {
	path := os.Getenv("MDS_LOADKEY_PATH")
	if path == "" {
		t.Skip("helper process of TestLoadKeyProcesses; runs only there")
	}
	k, err := LoadKey(path)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("key:", hex.EncodeToString(k))
	os.Exit(0)
}

func TestLoadKeyProcesses(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "mds", "hmac-key")
	const n = 8
	cmds := make([]*exec.Cmd, n)
	outs := make([]bytes.Buffer, n)
	for i := range n {
		cmds[i] = exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestLoadKeyHelperProcess$", "-test.count=1")
		cmds[i].Env = append(os.Environ(), "MDS_LOADKEY_PATH="+path)
		cmds[i].Stdout = &outs[i]
		cmds[i].Stderr = &outs[i]
	}
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	var first string
	for i, c := range cmds {
		err := c.Wait()
		var key string
		for line := range strings.Lines(outs[i].String()) {
			if k, ok := strings.CutPrefix(line, "key: "); ok {
				key = strings.TrimSpace(k)
			}
		}
		if err != nil || key == "" {
			t.Fatalf("process %d: %v\n%s", i, err, outs[i].String())
		}
		if i == 0 {
			first = key
		} else if key != first {
			t.Errorf("process %d got key %s, process 0 got %s", i, key, first)
		}
	}
	k, err := LoadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(k) != first {
		t.Error("the stored key differs from the one the processes got")
	}
}

func TestLoadKeyRejects(t *testing.T) {
	t.Parallel()
	good := bytes.Repeat([]byte{7}, KeySize)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir, path string)
		want  string
	}{
		{"key readable by others", func(t *testing.T, dir, path string) {
			mustWrite(t, path, good, 0o644)
		}, "want 0600"},
		{"short key", func(t *testing.T, dir, path string) {
			mustWrite(t, path, good[:10], 0o600)
		}, "10 bytes"},
		{"empty key", func(t *testing.T, dir, path string) {
			mustWrite(t, path, nil, 0o600)
		}, "0 bytes"},
		{"symlink key", func(t *testing.T, dir, path string) {
			other := filepath.Join(dir, "other")
			mustWrite(t, other, good, 0o600)
			if err := os.Symlink(other, path); err != nil {
				t.Fatal(err)
			}
		}, "open"},
		{"key is a directory", func(t *testing.T, dir, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
		{"open directory", func(t *testing.T, dir, path string) {
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}, "want 0700"},
		{"directory is a file", func(t *testing.T, dir, path string) {
			if err := os.Remove(dir); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, dir, nil, 0o600)
		}, "not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "mds")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "hmac-key")
			tc.setup(t, dir, path)
			k, err := LoadKey(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadKey: %x, %v; want an error containing %q", k, err, tc.want)
			}
		})
	}
}

func mustWrite(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
