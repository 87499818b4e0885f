package ns

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/rkt-ng/rkt/internal/atomicfile"
)

// answer is a handler that answers its own text.
type answer string

func (a answer) ServeHTTP(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, string(a)) }

// TestReloadingMDS: the answers of a mutable pod's metadata service are
// rebuilt when the pod manifest is replaced, only then, and a failed
// rebuild keeps the last answers.
func TestReloadingMDS(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pod")
	if err := atomicfile.Replace(path, []byte(`{"v":1}`), 0o640); err != nil {
		t.Fatal(err)
	}
	builds := 0
	var next http.Handler
	var nextErr error
	build := func() (http.Handler, error) {
		builds++
		return next, nextErr
	}
	st, err := statStamp(path)
	if err != nil {
		t.Fatal(err)
	}
	m := &reloadingMDS{path: path, build: build, log: slog.New(slog.DiscardHandler), uuid: "u", stamp: st, cur: answer("one")}
	get := func() string {
		t.Helper()
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
		return rec.Body.String()
	}
	if got := get(); got != "one" || builds != 0 {
		t.Errorf("unchanged manifest: %q after %d builds, want one after 0", got, builds)
	}
	// Same size, new inode: stage0 replaces the file by rename.
	next = answer("two")
	if err := atomicfile.Replace(path, []byte(`{"v":2}`), 0o640); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != "two" || builds != 1 {
		t.Errorf("replaced manifest: %q after %d builds, want two after 1", got, builds)
	}
	if got := get(); got != "two" || builds != 1 {
		t.Errorf("no change since: %q after %d builds, want two after 1", got, builds)
	}
	next, nextErr = nil, errors.New("app manifest missing")
	if err := atomicfile.Replace(path, []byte(`{"v":3}`), 0o640); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != "two" || builds != 2 {
		t.Errorf("failed rebuild: %q after %d builds, want two after 2", got, builds)
	}
	// The failed version is tried again on the next request.
	next, nextErr = answer("three"), nil
	if got := get(); got != "three" || builds != 3 {
		t.Errorf("retried rebuild: %q after %d builds, want three after 3", got, builds)
	}
}
