package pods

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rkt-ng/rkt/pods/layout"
)

func TestLifecycle(t *testing.T) {
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p, err := d.Create("web")
	if err != nil {
		t.Fatal(err)
	}
	if p.State() != Preparing {
		t.Fatalf("new pod state %s", p.State())
	}
	// Another observer sees it locked in prepare/.
	q, err := d.Get(p.UUID)
	if err != nil || q.State() != Preparing {
		t.Fatalf("Get = %v, %v; want preparing", q, err)
	}
	if err := p.ToPrepared(); err != nil {
		t.Fatal(err)
	}
	if q, _ = d.Get("web"); q == nil || q.UUID != p.UUID || q.State() != Prepared {
		t.Fatalf("Get by name = %+v", q)
	}
	if err := q.TakeLock(); err != nil {
		t.Fatal(err)
	}
	if err := q.ToRun(); err != nil {
		t.Fatal(err)
	}
	if r, _ := d.Get(p.UUID[:8]); r.State() != Running {
		t.Fatalf("state while locked in run/: %s", r.State())
	}
	// The name is taken while the pod lives.
	if _, err := d.Create("web"); !errors.Is(err, ErrNameInUse) {
		t.Fatalf("Create with a live name: %v, want ErrNameInUse", err)
	}
	q.Close() // the pod's process exits: the kernel drops the lock
	r, _ := d.Get(p.UUID)
	if r.State() != Exited || !r.IsFinished() {
		t.Fatalf("state after unlock: %s", r.State())
	}
	// An exited pod's name can be reused.
	n, err := d.Create("web")
	if err != nil {
		t.Fatalf("Create reusing an exited pod's name: %v", err)
	}
	n.Close()
	if err := r.ToGarbage(); err != nil {
		t.Fatal(err)
	}
	if g, _ := d.Get(p.UUID); g.State() != ExitedGarbage {
		t.Fatalf("after ToGarbage: %s", g.State())
	}
}

func TestGetErrors(t *testing.T) {
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"aaaa1111-0000-4000-8000-000000000000", "aaaa2222-0000-4000-8000-000000000000", "bbbb1111-0000-4000-8000-000000000000"} {
		if err := os.Mkdir(filepath.Join(d.Root(), "prepared", u), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		ref  string
		want error
	}{
		{"aaaa", ErrAmbiguous},
		{"cccc", ErrNotFound},
		{"", ErrNotFound},
		{"a", ErrNotFound}, // below the minimum prefix length
	} {
		if _, err := d.Get(tc.ref); !errors.Is(err, tc.want) {
			t.Errorf("Get(%q) = %v, want %v", tc.ref, err, tc.want)
		}
	}
	if p, err := d.Get("aaaa2"); err != nil || p.UUID != "aaaa2222-0000-4000-8000-000000000000" {
		t.Errorf("Get(aaaa2) = %v, %v", p, err)
	}
	if _, err := d.Create("Bad Name"); err == nil {
		t.Errorf("Create accepted an invalid name")
	}
}

func TestNewUUID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		u := NewUUID()
		if !uuidRE.MatchString(u) || u[14] != '4' {
			t.Fatalf("NewUUID() = %q is not a v4 UUID", u)
		}
		if seen[u] {
			t.Fatalf("duplicate UUID %s", u)
		}
		seen[u] = true
	}
}

// TestGetNameVersusPrefix: a pod name that looks like a UUID prefix never
// silently selects another pod (the "rkt stop 5bee" bug).
func TestGetNameVersusPrefix(t *testing.T) {
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const (
		named  = "11111111-0000-4000-8000-000000000000" // named "5bee"
		other  = "5bee0000-0000-4000-8000-000000000000" // UUID prefix 5bee
		other2 = "5bee1111-0000-4000-8000-000000000000"
		cafe   = "cafe0000-0000-4000-8000-000000000000" // named "cafe": its own prefix
		solo   = "22222222-0000-4000-8000-000000000000" // named "dead", no pod has prefix dead
	)
	mk := func(uuid, name string) {
		t.Helper()
		dir := filepath.Join(d.Root(), "prepared", uuid)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if name != "" {
			if err := os.WriteFile(layout.Dir(dir).Name(), []byte(name), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk(named, "5bee")
	mk(other, "")
	mk(cafe, "cafe")
	mk(solo, "dead")
	for _, tc := range []struct {
		name, ref string
		want      string   // UUID, or "" for an error
		err       error    // with want == ""
		mention   []string // words of the error
	}{
		{name: "name and another pod's prefix", ref: "5bee", err: ErrAmbiguous, mention: []string{named, other, "full UUID"}},
		{name: "longer prefix is unique", ref: "5bee0", want: other},
		{name: "name that is its own prefix", ref: "cafe", want: cafe},
		{name: "name only", ref: "dead", want: solo},
		{name: "full UUID", ref: other, want: other},
		{name: "prefix only", ref: "2222", want: solo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := d.Get(tc.ref)
			if tc.want != "" {
				if err != nil || p.UUID != tc.want {
					t.Fatalf("Get(%q) = %v, %v; want %s", tc.ref, p, err, tc.want)
				}
				return
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("Get(%q) = %v, %v; want %v", tc.ref, p, err, tc.err)
			}
			for _, w := range tc.mention {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	// Several pods under one prefix: every candidate is named.
	mk(other2, "")
	_, err = d.Get("5bee")
	if !errors.Is(err, ErrAmbiguous) || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), other2) {
		t.Errorf("Get(5bee) with two prefixed pods = %v", err)
	}
	_, err = d.Get("5be")
	if !errors.Is(err, ErrAmbiguous) || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), other2) {
		t.Errorf("Get(5be) = %v", err)
	}
	if _, err := d.Create(other2); err == nil {
		t.Errorf("Create accepted a UUID as a pod name")
	}
}
