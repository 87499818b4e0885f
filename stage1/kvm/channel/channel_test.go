package channel

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRoundTrip(t *testing.T) {
	var b bytes.Buffer
	req := StartRequest{UUID: "u", Files: map[string][]byte{"pod": []byte("{}")},
		Mounts: []Mount{{Tag: "rootfs", Path: "stage1/rootfs"}, {Tag: "v0", Path: "/data", ReadOnly: true}}, Args: []string{"--net=none", "u"}}
	if err := WriteJSON(&b, Start, req); err != nil {
		t.Fatal(err)
	}
	if err := Write(&b, Stdout, []byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	if err := Write(&b, Stderr, nil); err != nil {
		t.Fatal(err)
	}
	typ, p, err := Read(&b)
	if err != nil || typ != Start {
		t.Fatalf("Read = %v, %v; want start", typ, err)
	}
	var got StartRequest
	if err := Decode(typ, p, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(req, got); diff != "" {
		t.Errorf("start request mismatch (-want +got):\n%s", diff)
	}
	typ, p, err = Read(&b)
	if err != nil || typ != Stdout || string(p) != "hello\n" {
		t.Errorf("Read = %v %q %v, want stdout \"hello\\n\"", typ, p, err)
	}
	typ, p, err = Read(&b)
	if err != nil || typ != Stderr || len(p) != 0 {
		t.Errorf("Read = %v %q %v, want empty stderr", typ, p, err)
	}
	if _, _, err := Read(&b); !errors.Is(err, io.EOF) {
		t.Errorf("Read at end = %v, want EOF", err)
	}
}

func TestReadRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty frame", []byte{0, 0, 0, 0}},
		{"too large", []byte{0xff, 0xff, 0xff, 0xff, 'O'}},
		{"truncated", []byte{0, 0, 0, 9, 'O', 'a'}},
		{"short header", []byte{0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := Read(bytes.NewReader(tc.in)); err == nil {
				t.Errorf("Read(%q): no error", tc.in)
			}
		})
	}
	if err := Write(io.Discard, Stdout, make([]byte, MaxPayload+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Write of a too large payload: %v, want ErrTooLarge", err)
	}
}

func FuzzRead(f *testing.F) {
	f.Add([]byte{0, 0, 0, 3, 'O', 'h', 'i'})
	f.Add([]byte{0, 0, 0, 12, 'X', '{', '"', 'c', 'o', 'd', 'e', '"', ':', '7', '}', ' '})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		r := bytes.NewReader(b)
		for {
			typ, p, err := Read(r)
			if err != nil {
				return
			}
			if len(p) > MaxPayload {
				t.Fatalf("payload of %d bytes", len(p))
			}
			if typ == Exit {
				var m ExitMsg
				Decode(typ, p, &m)
			}
		}
	})
}
