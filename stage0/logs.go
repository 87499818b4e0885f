package stage0

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rkt-ng/rkt/internal/untrusted"
	"github.com/rkt-ng/rkt/pods"
	"github.com/rkt-ng/rkt/pods/layout"
	"github.com/rkt-ng/rkt/stage1"
)

// LogOptions are `rkt logs`'s flags.
type LogOptions struct {
	App    string
	Follow bool
	Since  time.Duration // 0: from the start
	Tail   int           // <0: everything
}

// Logs writes an app's captured output: while the pod runs and after it has
// exited, until gc removes the pod.
func (c *Config) Logs(ctx context.Context, ref string, o LogOptions, w io.Writer) error {
	p, err := c.pod(ref)
	if err != nil {
		return err
	}
	app, err := pickApp(p, o.App)
	if err != nil {
		return err
	}
	cur := p.AppLogPath(app)
	var since time.Time
	if o.Since > 0 {
		since = time.Now().Add(-o.Since)
	}
	var data []byte
	for _, f := range []string{layout.Rotated(cur), cur} {
		b, err := readLogFrom(f, since)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		data = append(data, b...)
	}
	if data == nil && !fileExists(cur) && !o.Follow {
		return fmt.Errorf("pod %s: app %s has no log (it ran on a terminal, or logs were off)", p.UUID, app)
	}
	if o.Tail >= 0 {
		data = lastLines(data, o.Tail)
	}
	if _, err := w.Write(data); err != nil || !o.Follow {
		return err
	}
	return follow(ctx, c, p.UUID, cur, w)
}

func pickApp(p *pods.Pod, app string) (string, error) {
	st := StatusOf(p)
	if app == "" {
		if len(st.Apps) != 1 {
			return "", fmt.Errorf("pod %s has %d apps: choose one with --app", p.UUID, len(st.Apps))
		}
		return st.Apps[0].Name, nil
	}
	for _, a := range st.Apps {
		if a.Name == app {
			return app, nil
		}
	}
	// An app removed from a sandbox (rkt app rm) keeps its log.
	if _, err := stage1.AppName(app); err == nil {
		if _, err := os.Lstat(p.AppLogPath(app)); err == nil {
			return app, nil
		}
	}
	return "", fmt.Errorf("pod %s has no app %q", p.UUID, app)
}

// maxLogRead bounds one log or index file read: stage2 rotates at
// stage2.DefaultLogCap (16 MiB), so anything much larger was not written by it.
const maxLogRead = 64 << 20

// readLogFrom reads a log file from the first index record at or after
// since (the whole file for the zero time).
//
// Logs and their indexes are written inside the pod: they are read as
// untrusted files, bounded by what stage2 ever writes.
func readLogFrom(path string, since time.Time) ([]byte, error) {
	b, err := untrusted.ReadFile(path, maxLogRead)
	if err != nil || since.IsZero() {
		return b, err
	}
	// A rotated log's index is rotated with it (layout.Index of layout.Rotated).
	idx, err := untrusted.ReadFile(layout.Index(path), maxLogRead)
	if err != nil {
		return b, nil
	}
	off := int64(len(b))
	sc := bufio.NewScanner(bytes.NewReader(idx))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		ns, err1 := strconv.ParseInt(f[0], 10, 64)
		o, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 == nil && err2 == nil && !time.Unix(0, ns).Before(since) && o <= int64(len(b)) {
			off = o
			break
		}
	}
	return b[off:], nil
}

func lastLines(b []byte, n int) []byte {
	if n == 0 {
		return nil
	}
	end := len(b)
	if end > 0 && b[end-1] == '\n' {
		end--
	}
	for i := end - 1; i >= 0; i-- {
		if b[i] == '\n' {
			n--
			if n == 0 {
				return b[i+1:]
			}
		}
	}
	return b
}

// follow streams what is appended to the log until the pod has exited and
// the log is drained, or ctx ends. It polls: a daemonless tool has no event
// source to wait on, and 100 ms is what `status --wait` uses too.
func follow(ctx context.Context, c *Config, uuid, path string, w io.Writer) error {
	f, err := untrusted.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		for errors.Is(err, os.ErrNotExist) {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond):
			}
			f, err = untrusted.Open(path)
		}
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		return err
	}
	for {
		if _, err := io.Copy(w, f); err != nil {
			return err
		}
		p, err := c.pod(uuid)
		if err != nil || p.IsFinished() {
			_, err := io.Copy(w, f)
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}
