package stage2

import (
	"bytes"
	"os"
	"sync"
	"time"
)

// The CRI log format (what the kubelet's kuberuntime/logs and `crictl logs`
// read): one record per line of output,
//
//	<RFC3339Nano timestamp> <stdout|stderr> <F|P> <content>\n
//
// F ends a line; P is a part of a line whose rest follows in the next
// records of the same stream: a line longer than CRILogMaxLine is cut into
// P records, and output that ends without a newline when the app closes the
// stream ends with a P record (as containerd writes it; readers join P
// records and add no newline).
const (
	CRILogMaxLine = 16 << 10
	criTimeFormat = "2006-01-02T15:04:05.000000000Z07:00" // RFC3339Nano, fixed width
	criFull       = 'F'
	criPartial    = 'P'
)

// AppendCRIRecord appends one record of the CRI log format to dst.
func AppendCRIRecord(dst []byte, t time.Time, stream string, tag byte, content []byte) []byte {
	dst = t.AppendFormat(dst, criTimeFormat)
	dst = append(dst, ' ')
	dst = append(dst, stream...)
	dst = append(dst, ' ', tag, ' ')
	dst = append(dst, content...)
	return append(dst, '\n')
}

// criLog is an app's CRI log: a host file the stage1 opened (the pod gets
// only its fd, never the path) that both streams of the app write through a
// criStream. Writes never fail towards the app: output the file refuses is
// dropped.
type criLog struct {
	now func() time.Time

	// mu guards f and serializes records, so that the two streams' records
	// do not interleave inside one another.
	mu sync.Mutex
	f  *os.File // nil once closed
}

func newCRILog(f *os.File) *criLog { return &criLog{f: f, now: time.Now} }

// write writes records (whole records only) to the file.
func (l *criLog) write(rec []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Write(rec)
	}
}

// reopen replaces the file (after the kubelet rotated it away).
func (l *criLog) reopen(f *os.File) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
	}
	l.f = f
}

func (l *criLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// criStream turns one stream's output into records of l: it holds the part
// of a line not yet ended by a newline (at most CRILogMaxLine bytes). It is
// used by one goroutine.
type criStream struct {
	l      *criLog
	stream string // "stdout" or "stderr"
	line   []byte // the pending part of a line
	rec    []byte // scratch for the records of one Write
}

func newCRIStream(l *criLog, stream string) *criStream {
	return &criStream{l: l, stream: stream}
}

// Write implements io.Writer; it always consumes all of p.
func (s *criStream) Write(p []byte) (int, error) {
	n := len(p)
	now := s.l.now()
	s.rec = s.rec[:0]
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		room := CRILogMaxLine - len(s.line)
		switch {
		case i >= 0 && i <= room:
			// A line ends within the limit.
			s.rec = s.record(now, criFull, append(s.line, p[:i]...))
			s.line, p = s.line[:0], p[i+1:]
		case len(p) >= room:
			// The line reaches the limit before its end (or the data's):
			// cut it there.
			s.rec = s.record(now, criPartial, append(s.line, p[:room]...))
			s.line, p = s.line[:0], p[room:]
		default:
			s.line, p = append(s.line, p...), nil
		}
	}
	if len(s.rec) > 0 {
		s.l.write(s.rec)
	}
	return n, nil
}

func (s *criStream) record(t time.Time, tag byte, content []byte) []byte {
	return AppendCRIRecord(s.rec, t, s.stream, tag, content)
}

// Close writes what is left of an unended line as a partial record.
func (s *criStream) Close() error {
	if len(s.line) > 0 {
		s.l.write(AppendCRIRecord(nil, s.l.now(), s.stream, criPartial, s.line))
		s.line = s.line[:0]
	}
	return nil
}
