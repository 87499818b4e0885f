// Package reexec starts a child process (usually this binary again, under a
// hidden entrypoint) with pipes to it, and gives it one cleanup path.
//
// The child's fds are declared in order (AddFile, PipeTo, PipeFrom). Start
// starts it and closes this process's copies of the child's ends, so that a
// reader sees EOF once the child is gone. Finish, deferred with the address
// of the caller's named error, is the only teardown: it closes whatever is
// left of the child's ends, and when the caller fails it also closes this
// process's ends and kills and reaps the child (or hands it to Reap). On
// success this process's ends stay open for the caller, who owns them.
// This is runc's start() (retErr error) pattern, in place of a
// Close/Kill/Wait sequence written out after each error.
package reexec

import (
	"encoding/json"
	"os"
)

// Child is a child process being started. The zero value is ready to use.
type Child struct {
	// Process is the started child; nil before Start succeeds.
	Process *os.Process
	// Reap, if set, replaces Kill and Wait when the caller fails after the
	// child started (an init that reaps its children itself).
	Reap func(*os.Process)

	files  []*os.File // the child's fds, in order
	theirs []*os.File // the child's pipe ends, ours to close after Start
	ours   []*os.File // this process's pipe ends, closed if the caller fails
}

// AddFile gives f to the child as its next fd and returns that fd. The
// caller keeps owning f.
func (c *Child) AddFile(f ...*os.File) int {
	c.files = append(c.files, f...)
	return len(c.files) - 1
}

// PipeTo makes a pipe the child reads from, at its next fd, and returns the
// end this process writes to.
func (c *Child) PipeTo() (w *os.File, fd int, err error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, 0, err
	}
	c.theirs = append(c.theirs, r)
	c.ours = append(c.ours, w)
	return w, c.AddFile(r), nil
}

// PipeFrom makes a pipe the child writes to, at its next fd, and returns
// the end this process reads from.
func (c *Child) PipeFrom() (r *os.File, fd int, err error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, 0, err
	}
	c.theirs = append(c.theirs, w)
	c.ours = append(c.ours, r)
	return r, c.AddFile(w), nil
}

// Start starts name with argv and attr, whose Files it sets to the
// declared fds, and then closes the child's pipe ends in this process.
func (c *Child) Start(name string, argv []string, attr *os.ProcAttr) error {
	a := *attr
	a.Files = c.files
	p, err := os.StartProcess(name, argv, &a)
	c.closeTheirs()
	if err != nil {
		return err
	}
	c.Process = p
	return nil
}

// SendJSON writes v as JSON to w, one of this process's pipe ends, and
// closes it: the child reads to EOF.
func (c *Child) SendJSON(w *os.File, v any) error {
	err := json.NewEncoder(w).Encode(v)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}

// Finish is the one cleanup, deferred as `defer c.Finish(&retErr)`. It
// always closes the child's ends still open; if *errp is not nil it also
// closes this process's ends and kills and reaps the child.
func (c *Child) Finish(errp *error) {
	c.closeTheirs()
	if errp == nil || *errp == nil {
		return
	}
	for _, f := range c.ours {
		f.Close() // an end already closed (SendJSON) gives os.ErrClosed
	}
	c.ours = nil
	if c.Process == nil {
		return
	}
	if c.Reap != nil {
		c.Reap(c.Process)
		return
	}
	c.Process.Kill()
	c.Process.Wait()
}

func (c *Child) closeTheirs() {
	for _, f := range c.theirs {
		f.Close()
	}
	c.theirs = nil
}
