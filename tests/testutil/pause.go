package testutil

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Pause is a pause point of rkt (internal/pausepoint) armed for the
// commands of one Ctx.
type Pause struct {
	dir, name string
}

// PausePoint arms the pause point name for every later command of c, which
// then stops there until Release. The returned Pause belongs to the test.
// The copy of c it returns runs commands with the point armed; c itself
// is unchanged.
func (c *Ctx) PausePoint(t testing.TB, name string) (*Ctx, *Pause) {
	t.Helper()
	p := &Pause{dir: t.TempDir(), name: name}
	cc := *c
	cc.Env = append(append([]string(nil), c.Env...), "RKT_PAUSE_AT="+name, "RKT_PAUSE_DIR="+p.dir)
	// Release at the end in any case, so that nothing waits forever.
	t.Cleanup(func() { _ = os.WriteFile(filepath.Join(p.dir, name+".release"), nil, 0o600) })
	return &cc, p
}

// Wait waits until a command reached the point, and ends the test if none
// does within timeout.
func (p *Pause) Wait(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(filepath.Join(p.dir, p.name+".reached")); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rkt did not reach pause point %s within %v", p.name, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Release lets the paused command go on.
func (p *Pause) Release(t testing.TB) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(p.dir, p.name+".release"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}
