package stage2

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// parseCRI reads records back as the kubelet does (kuberuntime/logs): it
// checks each record's form and returns, per stream, the output joined
// (a newline after each F record).
func parseCRI(t testing.TB, b []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			t.Fatalf("record without newline: %q", b)
		}
		rec := b[:i]
		b = b[i+1:]
		ts, rest, ok := bytes.Cut(rec, []byte(" "))
		if !ok {
			t.Fatalf("record %q: no timestamp", rec)
		}
		if _, err := time.Parse(time.RFC3339Nano, string(ts)); err != nil {
			t.Fatalf("record %q: %v", rec, err)
		}
		stream, rest, ok := bytes.Cut(rest, []byte(" "))
		if !ok || (string(stream) != "stdout" && string(stream) != "stderr") {
			t.Fatalf("record %q: bad stream", rec)
		}
		tag, content, ok := bytes.Cut(rest, []byte(" "))
		if !ok || (string(tag) != "F" && string(tag) != "P") {
			t.Fatalf("record %q: bad tag", rec)
		}
		if len(content) > CRILogMaxLine {
			t.Fatalf("record of %d bytes, more than %d", len(content), CRILogMaxLine)
		}
		s := string(stream)
		out[s] = append(out[s], content...)
		if string(tag) == "F" {
			out[s] = append(out[s], '\n')
		}
	}
	return out
}

func testLog(t testing.TB) (*criLog, string) {
	path := filepath.Join(t.TempDir(), "0.log")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	l := newCRILog(f)
	l.now = func() time.Time { return time.Date(2026, 12, 7, 15, 4, 5, 6, time.UTC) }
	t.Cleanup(func() { l.Close() })
	return l, path
}

func TestCRIRecords(t *testing.T) {
	l, path := testLog(t)
	out, errs := newCRIStream(l, "stdout"), newCRIStream(l, "stderr")
	out.Write([]byte("hello\nwor"))
	errs.Write([]byte("oops\n"))
	out.Write([]byte("ld\n\nno newline"))
	out.Close()
	errs.Close()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"2026-12-07T15:04:05.000000006Z stdout F hello",
		"2026-12-07T15:04:05.000000006Z stderr F oops",
		"2026-12-07T15:04:05.000000006Z stdout F world",
		"2026-12-07T15:04:05.000000006Z stdout F ",
		"2026-12-07T15:04:05.000000006Z stdout P no newline",
	}, "\n") + "\n"
	if string(got) != want {
		t.Errorf("log:\n%s\nwant:\n%s", got, want)
	}
}

func TestCRILongLine(t *testing.T) {
	l, path := testLog(t)
	s := newCRIStream(l, "stdout")
	line := bytes.Repeat([]byte("x"), 2*CRILogMaxLine+10)
	s.Write(line[:100])
	s.Write(append(line[100:], '\n'))
	s.Close()
	got, _ := os.ReadFile(path)
	recs := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}
	for i, tag := range []string{" P ", " P ", " F "} {
		if !strings.Contains(recs[i], " stdout"+tag) {
			t.Errorf("record %d: want tag %q: %.60s", i, tag, recs[i])
		}
	}
	if p := parseCRI(t, got)["stdout"]; !bytes.Equal(p, append(line, '\n')) {
		t.Errorf("joined records differ from the line (%d bytes, want %d)", len(p), len(line)+1)
	}
}

func TestCRIReopen(t *testing.T) {
	l, path := testLog(t)
	s := newCRIStream(l, "stdout")
	s.Write([]byte("one\n"))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("two\n")) // still to the renamed file
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	l.reopen(f)
	s.Write([]byte("three\n"))
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if got := string(parseCRI(t, old)["stdout"]); got != "one\ntwo\n" {
		t.Errorf("rotated file has %q", got)
	}
	if got := string(parseCRI(t, cur)["stdout"]); got != "three\n" {
		t.Errorf("reopened file has %q", got)
	}
	l.Close()
	s.Write([]byte("dropped\n")) // after close: dropped, no panic
}

// FuzzCRISplit checks that whatever the output and however it is cut into
// writes, the records are well formed, none is longer than CRILogMaxLine,
// and joining them gives the output back.
func FuzzCRISplit(f *testing.F) {
	f.Add([]byte("a\nb\n"), uint16(1))
	f.Add(bytes.Repeat([]byte("y"), CRILogMaxLine+1), uint16(CRILogMaxLine))
	f.Add([]byte("\n\n\nz"), uint16(2))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		if chunk == 0 {
			chunk = 1
		}
		// Stretch short inputs so that the 16 KiB cut is reached often.
		if len(data) > 0 && len(data) < 64 {
			data = bytes.Repeat(data, CRILogMaxLine/len(data)+2)
		}
		l, path := testLog(t)
		s := newCRIStream(l, "stderr")
		for p := data; len(p) > 0; {
			n := min(int(chunk), len(p))
			if w, err := s.Write(p[:n]); w != n || err != nil {
				t.Fatalf("Write = %d, %v", w, err)
			}
			p = p[n:]
		}
		s.Close()
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		joined := parseCRI(t, got)["stderr"]
		if !bytes.Equal(joined, data) {
			t.Fatalf("joined records (%d bytes) differ from the output (%d bytes)", len(joined), len(data))
		}
	})
}
