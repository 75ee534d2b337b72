package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progressEvery is how often an export's progress is written where stderr
// is not a terminal (a log file, a pipe), as a plain line.
const progressEvery = 5 * time.Second

// progress shows an export's progress on stderr: on a terminal a bar with
// the rate and the time left, redrawn in place and erased at the end;
// elsewhere a plain line every progressEvery, none for an export that
// takes less.
type progress struct {
	w        io.Writer
	label    string
	terminal bool
	now      func() time.Time

	bar         *progressbar.ProgressBar // on a terminal, from the first update
	start, said time.Time                // elsewhere
}

func newProgress(w io.Writer, label string, terminal bool, now func() time.Time) *progress {
	return &progress{w: w, label: label, terminal: terminal, now: now}
}

// update shows done of total frames written.
func (p *progress) update(done, total int) {
	if p.terminal {
		if p.bar == nil {
			p.bar = progressbar.NewOptions(total,
				progressbar.OptionSetWriter(p.w),
				progressbar.OptionSetDescription(p.label),
				progressbar.OptionSetWidth(30),
				progressbar.OptionShowCount(),
				progressbar.OptionShowIts(),
				progressbar.OptionSetItsString("frames"),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionClearOnFinish(),
			)
		}
		if p.bar.GetMax() != total {
			p.bar.ChangeMax(total)
		}
		p.bar.Set(done)
		return
	}
	now := p.now()
	if p.start.IsZero() {
		p.start, p.said = now, now
		return
	}
	if done >= total || now.Sub(p.said) < progressEvery {
		return
	}
	p.said = now
	rate := float64(done) / now.Sub(p.start).Seconds()
	left := "unknown time"
	if rate > 0 {
		left = age(time.Duration(float64(total-done) / rate * float64(time.Second)))
	}
	fmt.Fprintf(p.w, "%s: %d/%d frames (%d%%), %.1f frames/s, %s left\n", p.label, done, total, done*100/max(total, 1), rate, left)
}

// clear erases the bar, if one was drawn.
func (p *progress) clear() {
	if p.bar != nil {
		p.bar.Clear()
	}
}

// isTerminal reports whether w is a terminal (a character device), where
// a progress bar can redraw itself.
func isTerminal(w io.Writer) bool {
	if l, ok := w.(*lockedWriter); ok {
		w = l.w
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
