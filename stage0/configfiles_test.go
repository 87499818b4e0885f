package stage0

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func writeConfig(t *testing.T, dir, sub, name, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, sub, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadConfigFiles(t *testing.T) {
	t.Parallel()
	type file struct{ dir, sub, name, body string }
	for _, tc := range []struct {
		name    string
		files   []file
		want    ConfigFiles
		wantErr string
	}{
		{name: "none"},
		{
			name: "local overrides system per value",
			files: []file{
				{"system", "paths.d", "p.json", `{"rktKind":"paths","rktVersion":"v1","data":"/sys/data","stage1-images":"/sys/s1"}`},
				{"local", "paths.d", "p.json", `{"rktKind":"paths","rktVersion":"v1","data":"/loc/data"}`},
				{"system", "stage1.d", "s.json", `{"rktKind":"stage1","rktVersion":"v1","name":"a.io/s1","version":"1","location":"/sys/s1.aci"}`},
				{"local", "stage1.d", "s.json", `{"rktKind":"stage1","rktVersion":"v1","location":"https://a.io/s1.aci"}`},
			},
			want: ConfigFiles{DataDir: "/loc/data", Stage1ImagesDir: "/sys/s1", Stage1: Stage1Default{"a.io/s1", "1", "https://a.io/s1.aci"}},
		},
		{
			name:  "non-json and subdirectories ignored",
			files: []file{{"local", "paths.d", "p.txt", `garbage`}, {"local", "paths.d/sub", "p.json", `garbage`}},
		},
		{name: "relative data", files: []file{{"local", "paths.d", "p.json", `{"rktKind":"paths","rktVersion":"v1","data":"rel/data"}`}}, wantErr: "absolute"},
		{name: "relative stage1 images", files: []file{{"local", "paths.d", "p.json", `{"rktKind":"paths","rktVersion":"v1","stage1-images":"./s1"}`}}, wantErr: "absolute"},
		{name: "relative location", files: []file{{"local", "stage1.d", "s.json", `{"rktKind":"stage1","rktVersion":"v1","location":"stage1.aci"}`}}, wantErr: "relative path"},
		{name: "bad scheme", files: []file{{"local", "stage1.d", "s.json", `{"rktKind":"stage1","rktVersion":"v1","location":"ftp://x/s1.aci"}`}}, wantErr: `scheme "ftp"`},
		{name: "name without version", files: []file{{"local", "stage1.d", "s.json", `{"rktKind":"stage1","rktVersion":"v1","name":"a.io/s1"}`}}, wantErr: "both or neither"},
		{name: "wrong kind", files: []file{{"local", "stage1.d", "s.json", `{"rktKind":"paths","rktVersion":"v1"}`}}, wantErr: `rktKind "paths"`},
		{name: "wrong version", files: []file{{"local", "paths.d", "s.json", `{"rktKind":"paths","rktVersion":"v2"}`}}, wantErr: "v2"},
		{
			name: "twice in one directory",
			files: []file{
				{"local", "paths.d", "a.json", `{"rktKind":"paths","rktVersion":"v1","data":"/a"}`},
				{"local", "paths.d", "b.json", `{"rktKind":"paths","rktVersion":"v1","data":"/b"}`},
			},
			wantErr: "already specified",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			for _, f := range tc.files {
				writeConfig(t, filepath.Join(root, f.dir), f.sub, f.name, f.body)
			}
			got, err := LoadConfigFiles(filepath.Join(root, "system"), filepath.Join(root, "local"), "")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("LoadConfigFiles error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("LoadConfigFiles mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
