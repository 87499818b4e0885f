package agent

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rkt-ng/rkt/stage1/kvm/channel"
)

// lockedBuffer is a bytes.Buffer for one writer goroutine and a reader
// after it ended.
type lockedBuffer struct {
	// mu guards b.
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A terminal session's command runs on a pseudo-terminal of the asked size,
// as its controlling terminal, with the asked TERM; what is typed reaches
// it; its output and exit code come back; a resize reaches the terminal.
func TestStartTerminal(t *testing.T) {
	if _, err := exec.LookPath("stty"); err != nil {
		t.Skipf("needs stty: %v", err)
	}
	e := newExecs(&conn{})
	var out lockedBuffer
	cmd := exec.Command("/bin/sh", "-c", `stty size; echo "TERM=$TERM"; [ -t 0 ] && echo STDIN_TTY; read line; echo "GOT=$line"; stty size; exit 4`)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	wait, err := e.startTerminal(7, cmd, 12, 34, "xterm-test", &out)
	if err != nil {
		t.Fatal(err)
	}
	// The first size is read before the resize.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "STDIN_TTY") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	e.resize(channel.ResizeMsg{ID: 7, Rows: 40, Cols: 100})
	if err := e.input(channel.WithID(7, []byte("typed\n"))); err != nil {
		t.Fatal(err)
	}
	err = wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 4 {
		t.Errorf("wait = %v, want exit code 4", err)
	}
	got := strings.ReplaceAll(out.String(), "\r", "")
	for _, want := range []string{"12 34\n", "TERM=xterm-test\n", "STDIN_TTY\n", "GOT=typed\n", "40 100\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in the terminal's output:\n%s", want, got)
		}
	}
	e.mu.Lock()
	left := len(e.stdin) + len(e.terms)
	e.mu.Unlock()
	if left != 0 {
		t.Errorf("%d session entries left after the end", left)
	}
	e.wg.Wait()
}

func TestValidTerm(t *testing.T) {
	for term, want := range map[string]bool{
		"xterm-256color": true, "vt100": true, "screen.xterm": true, "rxvt+x_y": true,
		"": false, "a b": false, "x\nTERM=y": false, "a;b": false, strings.Repeat("x", 65): false,
	} {
		if got := validTerm(term); got != want {
			t.Errorf("validTerm(%q) = %v, want %v", term, got, want)
		}
	}
}
