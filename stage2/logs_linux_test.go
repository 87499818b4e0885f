package stage2

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

// TestAppLogCutOnFullDisk: the first failed write cuts the log for good
// and says where, in one line; later writes are refused without a word.
func TestAppLogCutOnFullDisk(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	var warn bytes.Buffer
	l := &appLog{app: "flood", cap: 1 << 20, f: full, idx: null, size: 42, warn: &warn}
	defer l.Close()
	if _, err := l.Write([]byte("first\n")); err == nil {
		t.Fatal("write to a full disk: no error")
	}
	if _, err := l.Write([]byte("second\n")); !errors.Is(err, errLogCut) {
		t.Errorf("write after the cut = %v, want errLogCut", err)
	}
	got := warn.String()
	if strings.Count(got, "\n") != 1 || !strings.Contains(got, "app flood: log cut at byte 42: ") || !strings.Contains(got, "no space left on device") {
		t.Errorf("warning = %q, want one line naming the app, the offset and the cause", got)
	}
}
