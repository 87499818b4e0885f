// Package netns runs Go code inside another network namespace, in the
// process, without cgo. It is Linux-only.
//
// setns(2) and unshare(2) move only the calling thread, and the Go scheduler
// moves goroutines between threads, so the work is done on a thread locked
// to its goroutine (STYLE.md §6, namespace rule 2):
//
//   - [Do] and [DoNew] use a goroutine of their own: lock, switch, run fn,
//     switch back, unlock. If switching back fails the goroutine ends still
//     locked, so the runtime terminates the thread instead of reusing it in
//     the wrong namespace.
//   - [DoLocked] runs fn on the caller's thread, which the caller has locked
//     (for example a process's main thread, where a child forked by fn with
//     Pdeathsig must stay tied to that thread).
//   - [Join] moves the caller's locked thread for good.
//
// fn must not rely on goroutines it starts (they run on other threads, in the
// old namespace). Sockets fn creates belong to the namespace and can be used
// from any thread afterwards.
package netns

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// ThreadPath is the namespace file of the calling thread's network
// namespace. /proc/self/ns/net would be the thread group leader's.
func ThreadPath() string {
	return fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
}

// Do runs fn on a dedicated OS thread inside the network namespace at path
// (a bind-mounted namespace file or /proc/PID/ns/net) and returns fn's error,
// joined with the error of switching back if that fails.
func Do(path string, fn func() error) error {
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open network namespace: %w", err)
	}
	defer target.Close()
	return onThread(func() error { return setns(target) }, fn)
}

// DoNew runs fn on a dedicated OS thread inside a new network namespace
// (unshare(CLONE_NEWNET)). The namespace lives on only if fn keeps it, for
// example by bind-mounting [ThreadPath] somewhere.
func DoNew(fn func() error) error {
	return onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return os.NewSyscallError("unshare", err)
		}
		return nil
	}, fn)
}

// DoLocked is [Do] on the calling goroutine's own thread, which the caller
// must have locked with runtime.LockOSThread. If switching back fails the
// thread stays in the namespace at path and the error says so; the caller
// decides what that thread may still do.
func DoLocked(path string, fn func() error) error {
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open network namespace: %w", err)
	}
	defer target.Close()
	_, err = switched(func() error { return setns(target) }, fn)
	return err
}

// Join moves the calling thread, which the caller has locked for the rest of
// its life, into the network namespace at path.
func Join(path string) error {
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open network namespace: %w", err)
	}
	defer target.Close()
	return setns(target)
}

func setns(f *os.File) error {
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		// EINVAL: not a network namespace; the thread did not move.
		return os.NewSyscallError("setns "+f.Name(), err)
	}
	return nil
}

// onThread runs switched on a goroutine locked to its thread and waits.
func onThread(enter, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// setns/unshare move only this thread: stay on it until it is back.
		// Left locked on purpose if it cannot get back, so that the thread
		// exits with the goroutine.
		runtime.LockOSThread()
		back, err := switched(enter, fn)
		if back {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// switched runs enter, fn and the switch back on the calling (locked)
// thread. back reports whether the thread is in its original network
// namespace on return.
func switched(enter, fn func() error) (back bool, err error) {
	orig, err := os.Open(ThreadPath())
	if err != nil {
		return true, fmt.Errorf("open current network namespace: %w", err)
	}
	defer orig.Close()
	if err := enter(); err != nil {
		return true, err
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		return false, errors.Join(ferr, fmt.Errorf("switch back to the original network namespace: %w", os.NewSyscallError("setns", err)))
	}
	return true, ferr
}
