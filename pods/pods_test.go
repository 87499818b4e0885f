package pods

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
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
