package stage2

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/eintr"
	"github.com/rkt-ng/rkt/pods/layout"
)

// LogDir is where stage2 keeps each app's output inside the pod (and so in
// the pod directory, through the stage1 rootfs), for `rkt logs`.
const LogDir = layout.LogDir

// DefaultLogCap bounds one log file; at the cap it is rotated to <app>.1
// (layout.Rotated)
// (one generation kept), so an app's log never takes more than twice this.
const DefaultLogCap = 16 << 20

// indexEvery is how often a log's index gets a (time, offset) record, which
// is what `rkt logs --since` searches; one per interval keeps the index tiny.
const indexEvery = 100 * time.Millisecond

// appLog is an app's log: stdout and stderr interleaved as written, plus an
// index of "unixnano offset" lines.
type appLog struct {
	dir, app string
	cap      int64

	// mu guards the files and counters below; both streams of the app write.
	mu        sync.Mutex
	f, idx    *os.File
	size      int64
	lastIndex time.Time
	// cut is set once a write to the log failed (a full disk): from then on
	// the app's output goes to the pod's streams only, so that the log
	// ends at one known point instead of having holes.
	cut bool
	// warn gets the one line that says where the log was cut (the pod's
	// stderr).
	warn io.Writer
}

// errLogCut is returned for writes after the log was cut.
var errLogCut = errors.New("log cut")

// cutAt stops the log for good after err and says so once; l.mu is held.
func (l *appLog) cutAt(err error) error {
	if !l.cut {
		l.cut = true
		if l.warn != nil {
			fmt.Fprintf(l.warn, "rkt: app %s: log cut at byte %d: %v (its output still goes to the pod's stdout and stderr)\n", l.app, l.size, err)
		}
	}
	return err
}

func openAppLog(dir, app string, cap int64) (*appLog, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	l := &appLog{dir: dir, app: app, cap: cap, warn: os.Stderr}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *appLog) open() error {
	// Not O_APPEND: splice(2) refuses appending files; the offset is ours.
	f, err := os.OpenFile(filepath.Join(l.dir, l.app), os.O_WRONLY|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	idx, err := os.OpenFile(layout.Index(filepath.Join(l.dir, l.app)), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		f.Close()
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		idx.Close()
		return err
	}
	l.f, l.idx, l.size, l.lastIndex = f, idx, fi.Size(), time.Time{}
	return nil
}

// rotate moves the full log to <app>.1 and starts a new one.
func (l *appLog) rotate() error {
	l.f.Close()
	l.idx.Close()
	log := filepath.Join(l.dir, l.app)
	for _, mv := range [][2]string{
		{log, layout.Rotated(log)},
		{layout.Index(log), layout.Index(layout.Rotated(log))},
	} {
		if err := os.Rename(mv[0], mv[1]); err != nil {
			return err
		}
	}
	return l.open()
}

// Write appends p to the log.
func (l *appLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut {
		return 0, errLogCut
	}
	if l.size > 0 && l.size+int64(len(p)) > l.cap {
		if err := l.rotate(); err != nil {
			return 0, l.cutAt(err)
		}
	}
	if now := time.Now(); now.Sub(l.lastIndex) >= indexEvery {
		l.lastIndex = now
		l.idx.WriteString(strconv.FormatInt(now.UnixNano(), 10) + " " + strconv.FormatInt(l.size, 10) + "\n")
	}
	n, err := l.f.WriteAt(p, l.size)
	l.size += int64(n)
	if err != nil {
		return n, l.cutAt(err)
	}
	return n, nil
}

// spliceFrom moves n bytes from the pipe fd into the log without copying
// them through user space. It returns how many it moved: on an error the
// rest is still in the pipe, for the caller to drain.
func (l *appLog) spliceFrom(fd int, n int) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut {
		return 0, errLogCut
	}
	if l.size > 0 && l.size+int64(n) > l.cap {
		if err := l.rotate(); err != nil {
			return 0, l.cutAt(err)
		}
	}
	if now := time.Now(); now.Sub(l.lastIndex) >= indexEvery {
		l.lastIndex = now
		l.idx.WriteString(strconv.FormatInt(now.UnixNano(), 10) + " " + strconv.FormatInt(l.size, 10) + "\n")
	}
	moved := 0
	for moved < n {
		var off int64
		m, err := eintr.Retry2(func() (int64, error) {
			off = l.size
			return unix.Splice(fd, nil, int(l.f.Fd()), &off, n-moved, unix.SPLICE_F_MOVE)
		})
		if err != nil {
			return moved, l.cutAt(err)
		}
		if m == 0 {
			return moved, l.cutAt(io.ErrShortWrite)
		}
		l.size, moved = off, moved+int(m)
	}
	return moved, nil
}

func (l *appLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return errors.Join(l.f.Close(), l.idx.Close())
}

// capture gives an app pipes for stdout and stderr whose data goes on to
// the pod's stdout and stderr (so a supervisor's journal still gets it) and
// into the app's log. The copy goroutines are owned by the supervisor and end
// when every holder of the pipes' write ends has exited; wait blocks for that.
// An app on the pod's terminal (--interactive) gets it directly and is not
// logged.
func (s *supervisor) capture(app *App) (stdout, stderr *os.File, done func(), err error) {
	if app.Terminal {
		return os.Stdout, os.Stderr, func() {}, nil
	}
	l, err := openAppLog(LogDir, app.Name, DefaultLogCap)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open log: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		l.Close()
		return nil, nil, nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		l.Close()
		outR.Close()
		outW.Close()
		return nil, nil, nil, err
	}
	var wg sync.WaitGroup
	cri, fo := s.criLogs[app.Name], s.fanouts[app.Name]
	var left atomic.Int32
	left.Store(2)
	copyStream := func(r *os.File, to *os.File, stream string) {
		defer wg.Done()
		defer r.Close()
		if cri == nil && fo == nil {
			pump(r, to, l)
			return
		}
		// The CRI log and attach clients need the bytes in user space.
		var also []io.Writer
		if cri != nil {
			// The CRI log is where such an app's output goes (the
			// kubelet reads and rotates it), beside rkt's own capped
			// log: not also the pod's stdout, which under rkt-cri is a
			// file nobody rotates.
			to = nil
			cs := newCRIStream(cri, stream)
			defer cs.Close()
			also = append(also, cs)
		}
		if fo != nil {
			also = append(also, fo.writer(stream))
			defer func() {
				if left.Add(-1) == 0 {
					fo.close() // both streams ended: attach clients get EOF
				}
			}()
		}
		copyLoop(r, to, l, io.MultiWriter(also...))
	}
	wg.Add(2)
	go copyStream(outR, os.Stdout, "stdout")
	go copyStream(errR, os.Stderr, "stderr")
	s.logWaits = append(s.logWaits, func() {
		wg.Wait()
		l.Close()
	})
	return outW, errW, func() { outW.Close(); errW.Close() }, nil
}

var _ io.Writer = (*appLog)(nil)

// pump carries an app's output from r to the pod's own stream and into the
// log. It uses tee(2) and splice(2), so the bytes never pass through user
// space (rkt's journald spent most of a CPU on this under log stress); when
// the destination does not support splice (a file opened for appending, a
// terminal), it copies. Failures of the destinations never block the app:
// its output is then dropped, not held.
func pump(r, to *os.File, l *appLog) {
	rfd, tofd := int(r.Fd()), int(to.Fd()) // Fd switches both to blocking mode
	tr, tw, err := os.Pipe()
	if err != nil {
		copyLoop(r, to, l, nil)
		return
	}
	defer tr.Close()
	defer tw.Close()
	trfd, twfd := int(tr.Fd()), int(tw.Fd())
	const chunk = 1 << 20
	for _, fd := range []int{rfd, twfd} {
		unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, chunk)
	}
	buf := make([]byte, 64<<10)
	spliceOut := true
	for {
		n, err := eintr.Retry2(func() (int64, error) { return unix.Tee(rfd, twfd, chunk, 0) })
		if err == unix.EINVAL && n == 0 {
			copyLoop(r, to, l, nil)
			return
		}
		if err != nil || n == 0 {
			return // EOF: every writer is gone
		}
		left := int(n)
		for left > 0 && spliceOut {
			m, err := eintr.Retry2(func() (int64, error) { return unix.Splice(rfd, nil, tofd, nil, left, unix.SPLICE_F_MOVE) })
			if err != nil {
				spliceOut = false
				break
			}
			left -= int(m)
		}
		for left > 0 {
			m, err := eintr.Retry2(func() (int, error) { return unix.Read(rfd, buf[:min(left, len(buf))]) })
			if err != nil || m == 0 {
				break
			}
			to.Write(buf[:m])
			left -= m
		}
		if moved, err := l.spliceFrom(trfd, int(n)); err != nil {
			// Drain what tee copied and the log did not take, so the next
			// tee cannot block on it (and no more: the read would block).
			for drained := moved; drained < int(n); {
				m, err := unix.Read(trfd, buf[:min(int(n)-drained, len(buf))])
				if err != nil || m == 0 {
					break
				}
				drained += m
			}
		}
	}
}

// copyLoop is pump without splice; it also gives the output to cri when
// not nil (the app's CRI log stream).
func copyLoop(r, to *os.File, l *appLog, cri io.Writer) {
	buf := make([]byte, 256<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if to != nil {
				to.Write(buf[:n])
			}
			l.Write(buf[:n])
			if cri != nil {
				cri.Write(buf[:n])
			}
		}
		if err != nil {
			return
		}
	}
}
