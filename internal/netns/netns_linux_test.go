package netns

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// inode returns the network namespace inode behind path.
func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// newNS creates a network namespace bind-mounted in a temporary directory,
// unmounted at the end of the test.
func newNS(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ns")
	if err := os.WriteFile(p, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	err := DoNew(func() error { return unix.Mount(ThreadPath(), p, "none", unix.MS_BIND, "") })
	if err != nil {
		t.Fatalf("DoNew: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(p, unix.MNT_DETACH) })
	return p
}

// checkAllThreadsHome fails if any thread of the process is outside the
// test's original network namespace.
func checkAllThreadsHome(t *testing.T, home uint64) {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join("/proc/self/task", task.Name(), "ns/net"), &st); err != nil {
			continue // the thread exited
		}
		if st.Ino != home {
			t.Errorf("thread %s is in network namespace %d, want %d", task.Name(), st.Ino, home)
		}
	}
}

func TestDo(t *testing.T) {
	testutil.RequireRoot(t)
	home := inode(t, "/proc/self/ns/net")
	p := newNS(t)
	want := inode(t, p)
	if want == home {
		t.Fatal("new namespace has the host's inode")
	}
	var got uint64
	if err := Do(p, func() error { got = inode(t, ThreadPath()); return nil }); err != nil {
		t.Fatalf("Do: %v", err)
	}
	if got != want {
		t.Errorf("fn ran in namespace %d, want %d", got, want)
	}
	sentinel := errors.New("fn failed")
	if err := Do(p, func() error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("Do = %v, want fn's error", err)
	}
	checkAllThreadsHome(t, home)
}

func TestDoLocked(t *testing.T) {
	testutil.RequireRoot(t)
	home := inode(t, "/proc/self/ns/net")
	p := newNS(t)
	want := inode(t, p)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	var got uint64
	var fnTid int
	err := DoLocked(p, func() error {
		got, fnTid = inode(t, ThreadPath()), unix.Gettid()
		return nil
	})
	if err != nil {
		t.Fatalf("DoLocked: %v", err)
	}
	if got != want || fnTid != tid {
		t.Errorf("fn ran in namespace %d on thread %d, want %d on the caller's thread %d", got, fnTid, want, tid)
	}
	if ino := inode(t, ThreadPath()); ino != home {
		t.Errorf("caller's thread is in namespace %d after DoLocked, want %d", ino, home)
	}
}

func TestJoin(t *testing.T) {
	testutil.RequireRoot(t)
	p := newNS(t)
	want := inode(t, p)
	errc := make(chan error, 1)
	var got uint64
	go func() {
		// Join is for good; the test switches back itself so that the
		// thread (possibly the main one, which never exits) does not stay
		// in the test namespace. Left locked if that fails.
		runtime.LockOSThread()
		orig, err := os.Open(ThreadPath())
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := Join(p); err != nil {
			errc <- err
			return
		}
		got = inode(t, ThreadPath())
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatalf("Join: %v", err)
	}
	if got != want {
		t.Errorf("thread in namespace %d after Join, want %d", got, want)
	}
}

func TestNotANamespace(t *testing.T) {
	testutil.RequireRoot(t)
	home := inode(t, "/proc/self/ns/net")
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ran := false
	err := Do(f, func() error { ran = true; return nil })
	if !errors.Is(err, unix.EINVAL) || ran {
		t.Errorf("Do(regular file) = %v, ran fn: %v; want EINVAL without running fn", err, ran)
	}
	if err := Do(filepath.Join(t.TempDir(), "missing"), func() error { return nil }); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Do(missing) = %v, want ErrNotExist", err)
	}
	checkAllThreadsHome(t, home)
}
