package images

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

func (c *Config) stderr() io.Writer {
	if c.Stderr == nil {
		return os.Stderr
	}
	return c.Stderr
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progressBar draws "label [=====>    ] 12.0MiB/100.0MiB 5.1MiB/s ETA 17s" on
// one terminal line, at most ten times a second. A nil *progressBar (no
// terminal) does nothing, so callers never check.
type progressBar struct {
	w     io.Writer
	label string
	start time.Time

	// mu guards the fields below: layers download in parallel.
	mu    sync.Mutex
	done  int64
	total int64
	drawn time.Time
}

// newProgress returns a bar on the configured stderr, or nil if that is not
// a terminal.
func (c *Config) newProgress(label string) *progressBar {
	w := c.stderr()
	if !isTerminal(w) {
		return nil
	}
	return &progressBar{w: w, label: label, start: time.Now(), total: -1}
}

// set records absolute progress (discovery.Options.Progress).
func (p *progressBar) set(done, total int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done, p.total = done, total
	p.draw(false)
}

// add records n more bytes (store.OCIOptions.Progress).
func (p *progressBar) add(n int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	p.draw(false)
}

func (p *progressBar) setTotal(n int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total = n
}

// finish draws the final state and ends the line.
func (p *progressBar) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn.IsZero() {
		return // nothing was ever drawn: a cached or empty download
	}
	p.draw(true)
	fmt.Fprintln(p.w)
}

// draw must be called with mu held.
func (p *progressBar) draw(force bool) {
	now := time.Now()
	if !force && now.Sub(p.drawn) < 100*time.Millisecond {
		return
	}
	p.drawn = now
	elapsed := now.Sub(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(p.done) / elapsed
	}
	const width = 30
	bar := ""
	eta := ""
	if p.total > 0 {
		n := int(float64(width) * float64(min(p.done, p.total)) / float64(p.total))
		for i := range width {
			switch {
			case i < n:
				bar += "="
			case i == n:
				bar += ">"
			default:
				bar += " "
			}
		}
		bar = "[" + bar + "] "
		if rate > 0 && p.done < p.total {
			eta = " ETA " + (time.Duration(float64(p.total-p.done)/rate) * time.Second).Round(time.Second).String()
		}
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s %s%s/%s %s/s%s", p.label, bar, humanBytes(p.done), humanBytes(p.total), humanBytes(int64(rate)), eta)
}

func humanBytes(n int64) string {
	if n < 0 {
		return "?"
	}
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
