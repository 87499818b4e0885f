package layout

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestPaths(t *testing.T) {
	d := Dir("/p")
	for _, tc := range []struct{ name, got, want string }{
		{"manifest", d.PodManifest(), "/p/pod"},
		{"stage1 manifest", d.Stage1Manifest(), "/p/stage1/manifest"},
		{"app manifest", d.AppManifest("a"), "/p/appsinfo/a/manifest"},
		{"stage1 upper", d.OverlayUpper("deps-sha512-x", ""), "/p/overlay/deps-sha512-x/upper"},
		{"app work", d.OverlayWork("deps-sha512-x", "a"), "/p/overlay/deps-sha512-x/work/a"},
		{"status host", d.InStage1(StatusDir), "/p/stage1/rootfs/rkt/status"},
		{"app rootfs host", d.AppRootfs("a"), "/p/stage1/rootfs/opt/stage2/a/rootfs"},
		{"cwd", Dir(".").PID(), "pid"},
		{"enter socket from cwd", Dir("").InStage1(EnterSocket), "stage1/rootfs/rkt/stage2.sock"},
		{"started", AppStarted("a"), "/rkt/status/a-started"},
		{"rotated index", Index(Rotated(AppLog("a"))), "/rkt/logs/a.1.idx"},
		{"notify", AppNotifySocket("a"), "/rkt/notify/a/notify.sock"},
		{"notify in app", AppNotifySocketInApp(), "/run/rkt/notify/notify.sock"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

// repoRoot is the module root, two levels up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found: %v", err)
	}
	return root
}

// TestDocNamesEveryEntry checks that docs/stage1-abi.md names every entry of
// the layout, each as a code span of its own (`stage1/rootfs/rkt/status`).
func TestDocNamesEveryEntry(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "stage1-abi.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	spans := map[string]bool{}
	for _, m := range regexp.MustCompile("`([^`\n]+)`").FindAllStringSubmatch(doc, -1) {
		spans[m[1]] = true
	}
	for _, e := range All() {
		if !spans[e] {
			t.Errorf("docs/stage1-abi.md does not name `%s`", e)
		}
	}
	for _, c := range layoutLiterals(t) {
		if !strings.Contains(doc, c) {
			t.Errorf("docs/stage1-abi.md does not mention %q", c)
		}
	}
}

// layoutLiterals are the string constants of layout.go.
func layoutLiterals(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "layout.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(s, "<") && s != "" && s != "path/filepath" { // not placeholders of All, nor the import
				out = append(out, s)
			}
		}
		return true
	})
	slices.Sort(out)
	return slices.Compact(out)
}

// notLayout are names that layout.go spells but that are not the pod
// layout's own: the appc ACI format names its manifest and rootfs so too
// (manifests, stage0/store, export), and the pod layout borrows them; "run"
// (of /run/rkt/notify) is also the pods/ state directory of running pods.
var notLayout = map[string]bool{"manifest": true, "rootfs": true, "run": true}

// allowed are literals of other packages that equal a layout name and are
// something else, by file (slash-separated, relative to the module root).
var allowed = map[string]map[string]string{
	"stage1/abi.go":                 {"mds-token": "the v1 run flag --mds-token, not the file"},
	"stage0/stage1.go":              {"rkt": "the host's lib/rkt/stage1-images"},
	"stage1/podnet/podnet_linux.go": {"rkt": "usr/lib/rkt/plugins/net of the stage1 image"},
	"stage1/ns/run_linux.go":        {"stage2": "the ns flavor's own /stage2 program, not part of the ABI"},
}

// fileCalls are calls whose string arguments are paths: a layout name
// spelled there is a layout file. Plain words (pid, netns, name) are only
// looked for in such calls, because elsewhere they are log keys and flags.
var fileCalls = map[string]bool{
	"Join": true, "ReadFile": true, "WriteFile": true, "Replace": true, "Open": true, "OpenFile": true,
	"Create": true, "Stat": true, "Lstat": true, "Mkdir": true, "MkdirAll": true, "Remove": true,
	"RemoveAll": true, "Readlink": true, "Symlink": true, "Rename": true, "UnmountAll": true,
	"ReadDir": true, "Chmod": true, "Chown": true, "Lchown": true,
}

var plainWord = regexp.MustCompile(`^[a-z0-9]+$`)

// TestNoLayoutLiteralsElsewhere fails when a Go source outside this package
// (and outside tests/ and _test.go files) spells a layout name: every user
// must go through this package.
func TestNoLayoutLiteralsElsewhere(t *testing.T) {
	root := repoRoot(t)
	var anywhere, multi, inPathCalls []string
	for _, l := range layoutLiterals(t) {
		bare := strings.TrimPrefix(l, "/")
		segs := strings.Split(bare, "/")
		switch {
		case notLayout[bare]:
		case plainWord.MatchString(bare):
			inPathCalls = append(inPathCalls, bare)
		default:
			anywhere = append(anywhere, l, bare)
		}
		if len(segs) > 1 {
			multi = append(multi, bare)
			for _, s := range segs {
				if !notLayout[s] {
					inPathCalls = append(inPathCalls, s)
				}
			}
		}
	}
	self, _ := filepath.Abs(".")
	err := filepath.WalkDir(root, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if de.IsDir() {
			if path == self || rel == "tests" || strings.HasPrefix(de.Name(), ".") || de.Name() == "vendor" ||
				de.Name() == "testdata" || rel == "build" || rel == "bin" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		check := func(lit *ast.BasicLit, inCall bool) {
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return
			}
			if _, ok := allowed[rel][s]; ok {
				return
			}
			if inCall {
				if slices.Contains(inPathCalls, s) {
					t.Errorf("%s: path literal %q is a layout name; use pods/layout", rel, s)
				}
				return
			}
			// A path counts with or without its leading slash ("rkt/status"
			// is "/rkt/status"), and inside a longer path.
			if slices.Contains(anywhere, s) {
				t.Errorf("%s: literal %q is a layout name; use pods/layout", rel, s)
				return
			}
			for _, m := range multi {
				if strings.Contains(s, m) {
					t.Errorf("%s: literal %q spells the layout's %q; use pods/layout", rel, s, m)
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ImportSpec:
				return false
			case *ast.Field:
				// Struct tags (json:"name") are not paths; visit the rest.
				if n.Type != nil {
					ast.Inspect(n.Type, func(m ast.Node) bool { return visitLits(m, check) })
				}
				return false
			case *ast.CallExpr:
				name := ""
				switch fn := n.Fun.(type) {
				case *ast.SelectorExpr:
					name = fn.Sel.Name
				case *ast.Ident:
					name = fn.Name
				}
				if fileCalls[name] {
					for _, a := range n.Args {
						if lit, ok := a.(*ast.BasicLit); ok && lit.Kind == token.STRING {
							check(lit, true)
						}
					}
				}
			case *ast.BasicLit:
				if n.Kind == token.STRING {
					check(n, false)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func visitLits(n ast.Node, check func(*ast.BasicLit, bool)) bool {
	if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
		check(lit, false)
	}
	return true
}

// TestImports keeps the package dependency-free, so that every stage
// program (stage2 has a size budget) can import it.
func TestImports(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "layout.go", nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p != "path/filepath" {
			t.Errorf("layout.go imports %s; only path/filepath is allowed", p)
		}
	}
}
