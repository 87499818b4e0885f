package store

import (
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/appc/spec/schema/types"
	"github.com/google/go-cmp/cmp"
)

func dep(name string) types.Dependency {
	return types.Dependency{ImageName: *types.MustACIdentifier(name)}
}

// files lists the non-directory files under root with their contents, and
// directories with a trailing slash.
func files(t *testing.T, root string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			got[rel+"/"] = ""
			return nil
		}
		b, err := os.ReadFile(p)
		got[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestRenderOrder(t *testing.T) {
	s := openStore(t)
	// A->[B,C], C->[D]: the order is B, D, C, A. Each image writes "file";
	// bd, bc and dc are written by two images each and tell the order apart.
	d := mustImport(t, s, buildACI(t, imageSpec{name: "example.com/d",
		files: map[string]string{"file": "D", "bd": "D", "dc": "D", "only-d": "D"}}))
	b := mustImport(t, s, buildACI(t, imageSpec{name: "example.com/b",
		files: map[string]string{"file": "B", "bd": "B", "bc": "B", "only-b": "B"}}))
	c := mustImport(t, s, buildACI(t, imageSpec{name: "example.com/c", deps: []types.Dependency{dep("example.com/d")},
		files: map[string]string{"file": "C", "bc": "C", "dc": "C"}}))
	hc, err := types.NewHash(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	cByID := types.Dependency{ImageName: "example.com/c", ImageID: hc, Size: uint(c.Size)}
	a := mustImport(t, s, buildACI(t, imageSpec{name: "example.com/a", deps: []types.Dependency{dep("example.com/b"), cByID},
		files: map[string]string{"file": "A"}}))

	tree, err := s.Render(t.Context(), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"file": "A", "bd": "D", "bc": "C", "dc": "C", "only-b": "B", "only-d": "D"}
	if diff := cmp.Diff(want, files(t, tree.Rootfs)); diff != "" {
		t.Errorf("rendered tree mismatch (-want +got):\n%s", diff)
	}
	order := []string{b.ID, d.ID, c.ID, a.ID}
	h := sha512.Sum512([]byte(strings.Join(order, "")))
	if wantID := "deps-sha512-" + hex.EncodeToString(h[:]); tree.ID != wantID {
		t.Errorf("tree ID = %s, want %s", tree.ID, wantID)
	}
	deps, _ := os.ReadFile(filepath.Join(s.treeDir(tree.ID), "deps"))
	if diff := cmp.Diff(strings.Join(order, "\n")+"\n", string(deps)); diff != "" {
		t.Errorf("deps file mismatch (-want +got):\n%s", diff)
	}

	// An existing tree is reused as it is.
	if err := os.WriteFile(filepath.Join(tree.Rootfs, "file"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := s.Render(t.Context(), a.ID)
	if err != nil || !cmp.Equal(again, tree) {
		t.Fatalf("second Render = %+v, %v; want %+v", again, err, tree)
	}
	if b, _ := os.ReadFile(filepath.Join(tree.Rootfs, "file")); string(b) != "changed" {
		t.Error("second Render re-rendered the tree")
	}
	trees, err := s.Trees()
	if err != nil || len(trees) != 1 || !cmp.Equal(trees[0], tree) {
		t.Errorf("Trees = %v, %v; want [%v]", trees, err, tree)
	}
	if err := s.RemoveTree(t.Context(), tree.ID); err != nil {
		t.Fatal(err)
	}
	if trees, _ := s.Trees(); len(trees) != 0 {
		t.Errorf("Trees after RemoveTree = %v", trees)
	}
	if ents, _ := os.ReadDir(filepath.Join(s.dir, "tree")); len(ents) != 0 {
		t.Errorf("cas/tree after RemoveTree: %v", ents)
	}
}

func TestRenderWhitelist(t *testing.T) {
	s := openStore(t)
	mustImport(t, s, buildACI(t, imageSpec{name: "example.com/base", pwl: []string{"/bin/sh", "/bin/ls", "/lib/libc", "/etc/passwd"},
		files: map[string]string{"bin/sh": "sh", "bin/ls": "ls", "bin/cat": "cat", "lib/libc": "c", "etc/passwd": "p", "etc/shadow": "s"}}))
	top := mustImport(t, s, buildACI(t, imageSpec{name: "example.com/top", deps: []types.Dependency{dep("example.com/base")},
		pwl:   []string{"/bin/sh", "/lib/libc", "/app", "/etc/shadow"},
		files: map[string]string{"app": "app", "notlisted": "x", "var/empty/": ""}}))
	tree, err := s.Render(t.Context(), top.ID)
	if err != nil {
		t.Fatal(err)
	}
	// etc/shadow: in top's whitelist, not in base's own.
	want := map[string]string{"bin/": "", "bin/sh": "sh", "lib/": "", "lib/libc": "c", "etc/": "", "app": "app", "var/": "", "var/empty/": ""}
	if diff := cmp.Diff(want, files(t, tree.Rootfs)); diff != "" {
		t.Errorf("rendered tree mismatch (-want +got):\n%s", diff)
	}
}

func TestRenderErrors(t *testing.T) {
	s := openStore(t)
	base := mustImport(t, s, buildACI(t, imageSpec{name: "example.com/base", labels: map[string]string{"version": "1"}}))
	hb, _ := types.NewHash(base.ID)
	missing, _ := types.NewHash("sha512-" + strings.Repeat("c", 128))
	tests := []struct {
		name    string
		dep     types.Dependency
		wantErr string
	}{
		{"missing by name", dep("example.com/nope"), "not found"},
		{"missing label", types.Dependency{ImageName: "example.com/base", Labels: types.Labels{{Name: "version", Value: "2"}}}, "not found"},
		{"missing by ID", types.Dependency{ImageName: "example.com/base", ImageID: missing}, "not found"},
		{"ID of another name", types.Dependency{ImageName: "example.com/other", ImageID: hb}, "is named example.com/base"},
		{"ID without the labels", types.Dependency{ImageName: "example.com/base", ImageID: hb, Labels: types.Labels{{Name: "version", Value: "2"}}}, "does not have labels"},
		{"wrong size", types.Dependency{ImageName: "example.com/base", ImageID: hb, Size: 1}, "has size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := mustImport(t, s, buildACI(t, imageSpec{name: "example.com/top-" + strings.ToLower(strings.ReplaceAll(tc.name, " ", "-")), deps: []types.Dependency{tc.dep}}))
			_, err := s.Render(t.Context(), img.ID)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Render = %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
	if trees, err := s.Trees(); err != nil || len(trees) != 0 {
		t.Errorf("Trees after failed renders = %v, %v", trees, err)
	}
	if _, err := s.Render(t.Context(), "sha512-"+strings.Repeat("d", 128)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Render of a missing image = %v, want ErrNotFound", err)
	}
}

func TestRenderCycle(t *testing.T) {
	s := openStore(t)
	// x depends on y by name and y on x: only possible by name.
	mustImport(t, s, buildACI(t, imageSpec{name: "example.com/y", deps: []types.Dependency{dep("example.com/x")}}))
	x := mustImport(t, s, buildACI(t, imageSpec{name: "example.com/x", deps: []types.Dependency{dep("example.com/y")}}))
	if _, err := s.Render(t.Context(), x.ID); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("Render of a cycle = %v, want a cycle error", err)
	}
}

func TestRenderConcurrent(t *testing.T) {
	s := openStore(t)
	img := mustImport(t, s, buildACI(t, imageSpec{name: "example.com/app", files: map[string]string{"a/b/c": "x", "big": strings.Repeat("x", 1<<20)}}))
	var wg sync.WaitGroup
	trees := make([]Tree, 4)
	errs := make([]error, 4)
	for i := range trees {
		wg.Go(func() { trees[i], errs[i] = s.Render(t.Context(), img.ID) })
	}
	wg.Wait()
	for i := range trees {
		if errs[i] != nil || !cmp.Equal(trees[i], trees[0]) {
			t.Errorf("Render %d = %v, %v; want %v", i, trees[i], errs[i], trees[0])
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(s.dir, "tree")); len(ents) != 1 {
		t.Errorf("cas/tree holds %v, want one tree", ents)
	}
}
