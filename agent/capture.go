package agent

import (
	"context"
	"fmt"
	"os"
	"time"

	"gocv.io/x/gocv"
)

// A live source that fails this many reads in a row, readRetry apart, is
// closed and reopened.
const (
	maxReadFailures = 5
	readRetry       = 100 * time.Millisecond
)

// capture runs the capture goroutine: it reads or draws frames, scales and
// encodes the due ones and leaves them in the mailbox, until ctx is done
// or a video file played without Loop ends (then it returns true). It
// closes the mailbox when it returns. Every Mat it uses is freed.
func (a *Agent) capture(ctx context.Context) (ended bool) {
	defer a.box.close()
	defer a.vq.Close(errCaptureEnded)
	if a.lo != nil && a.lo.encoded() {
		defer a.lo.close()
	}
	var enc *encoder // JPEG
	if a.cfg.Codec == CodecH264 {
		a.venc = newVideoEncoder(a)
		defer a.venc.close()
	} else {
		enc = newEncoder(a.cfg.Width, a.cfg.Height, a.cfg.Quality, a.payloadLimit, &a.st, a.log)
		defer enc.close()
	}
	if a.src.Kind == TestPattern {
		a.drawPattern(ctx, enc)
		return false
	}

	img := gocv.NewMat()
	defer img.Close()
	backoff := a.backoffMin
	for {
		n, eof, err := a.session(ctx, &img, enc)
		if ctx.Err() != nil {
			return false
		}
		if n > 0 {
			backoff = a.backoffMin
		}
		if eof {
			if !a.cfg.Loop {
				return true
			}
			continue // reopen: this also notices a file that is gone
		}
		a.sourceFailed(err, backoff)
		if !sleep(ctx, backoff) {
			return false
		}
		backoff = min(2*backoff, a.backoffMax)
	}
}

// session opens the source and reads it until ctx is done, the source
// fails (err) or a video file ends (eof). It returns how many frames it
// read, and closes the source.
func (a *Agent) session(ctx context.Context, img *gocv.Mat, enc *encoder) (n int, eof bool, err error) {
	vc, err := open(a.src, a.cfg)
	if err != nil {
		return 0, false, err
	}
	defer vc.Close()

	file := a.src.Kind == File
	var filePeriod time.Duration
	var opened0 os.FileInfo // the file as opened, to tell whether it changed
	if file {
		filePeriod = time.Duration(float64(time.Second) / fileFPS(vc))
		opened0, _ = os.Stat(a.src.Path)
	}
	rewound := false // seeked back to the start, no frame read since
	gate := pacer{period: a.period}
	opened := time.Now()
	base := opened // when a file's first frame is due
	failures := 0
	for ctx.Err() == nil {
		if !vc.Read(img) || img.Empty() {
			if file {
				if n == 0 {
					return 0, false, fmt.Errorf("%s has no frames that can be read", a.src)
				}
				// Looping a file that has not changed: seek back to its
				// start rather than open it again, which costs FFmpeg's
				// probing of the file every time round. A file replaced
				// or removed is opened again (and then reported).
				if a.cfg.Loop && !rewound && unchanged(a.src.Path, opened0) {
					vc.Set(gocv.VideoCapturePosFrames, 0)
					rewound = true
					continue // the schedule goes on: frame n+1 is due a period after frame n
				}
				return n, true, nil
			}
			failures++
			if failures >= maxReadFailures {
				return n, false, fmt.Errorf("%s gives no frames (%d reads failed)", a.src, failures)
			}
			if !sleep(ctx, readRetry) {
				break
			}
			continue
		}
		failures, rewound = 0, false
		a.st.captured.Add(1)
		if n == 0 {
			a.sourceOK()
		}
		n++

		if file {
			// Play at the file's own rate: frame n is due n frame
			// periods after the first; under a lower --fps, frames
			// not due on the file's clock are skipped.
			m := time.Duration(n-1) * filePeriod
			if !gate.due(m) {
				a.st.skipped.Add(1)
				continue
			}
			if d := time.Until(base.Add(m)); d > 0 {
				if !sleep(ctx, d) {
					break
				}
			} else if d < -time.Second { // fell behind: catch up, no burst
				base = time.Now().Add(-m)
			}
		} else if !gate.due(time.Since(opened)) {
			// Live sources are read at their own rate, so the
			// driver's buffer never holds stale frames; frames
			// before they are due under --fps are skipped.
			a.st.skipped.Add(1)
			continue
		}
		a.deliver(*img, time.Now(), enc)
	}
	return n, false, nil
}

// unchanged reports whether the file at path is still the one described by
// was: the same file (not replaced), size and modification time.
func unchanged(path string, was os.FileInfo) bool {
	if was == nil {
		return false
	}
	fi, err := os.Stat(path)
	return err == nil && os.SameFile(fi, was) && fi.Size() == was.Size() && fi.ModTime().Equal(was.ModTime())
}

// drawPattern draws the test pattern at --fps until ctx is done.
func (a *Agent) drawPattern(ctx context.Context, enc *encoder) {
	p := newPattern(a.cfg.ID, a.cfg.Width, a.cfg.Height, a.cfg.FPS)
	defer p.close()
	next := time.Now()
	for {
		if d := time.Until(next); d > 0 && !sleep(ctx, d) {
			return
		}
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		img := p.draw(a.seq+1, now)
		a.st.captured.Add(1)
		if a.seq == 0 {
			a.sourceOK()
		}
		a.deliver(img, now, enc)
		next = next.Add(a.period)
		if now.Sub(next) > a.period { // fell behind: no burst
			next = now
		}
	}
}

// deliver gives a due frame, captured at t, the next Frame-Seq, encodes it
// and leaves it for the publisher.
//
// Frame-Seq is given here, at capture, and not when a frame is sent:
// a frame dropped on the way (replaced in the mailbox, failed to publish,
// too large) leaves a gap in the sequence, so a receiver sees every drop.
func (a *Agent) deliver(img gocv.Mat, t time.Time, enc *encoder) {
	if a.venc != nil {
		a.venc.encode(img, t)
		a.deliverLo(img, t, a.venc.fitted, a.venc.scaled)
		return
	}
	defer func() { a.deliverLo(img, t, enc.fitted, enc.scaled) }()
	a.seq++
	a.st.frames.Store(a.seq)
	f := a.box.get()
	if !enc.encode(img, f) {
		a.box.recycle(f)
		return
	}
	f.seq, f.time = a.seq, t
	if a.box.put(f) {
		a.st.replaced.Add(1)
		a.st.dropped.Add(1)
	}
}

// deliverLo makes the small tier's frame, if there is one, after the main
// tier's was handed on: from the main tier's scaled frame when there is one
// (cheaper to shrink than the camera's), else from img.
func (a *Agent) deliverLo(img gocv.Mat, t time.Time, fitted gocv.Mat, scaled bool) {
	if a.lo == nil || !a.lo.encoded() {
		return
	}
	if scaled && !fitted.Empty() {
		img = fitted
	}
	a.lo.deliver(img, t)
}

// payloadLimit is the largest JPEG that fits in a message.
func (a *Agent) payloadLimit() int {
	mp := a.maxPayload.Load() // not a.nc.MaxPayload(): see maxPayload
	if mp <= 0 {
		mp = defaultMaxPayload
	}
	return int(mp) - headerRoom
}

// pacer decides which frames are due under the --fps cap. Times are
// offsets on the source's clock. A frame up to a quarter period early
// counts as due, so a source slightly faster than the cap is not halved.
type pacer struct {
	period time.Duration
	next   time.Duration
	begun  bool
}

func (p *pacer) due(t time.Duration) bool {
	if p.begun && t < p.next-p.period/4 {
		return false
	}
	p.begun = true
	p.next += p.period
	if p.next <= t { // the source was slower than the cap, or stalled
		p.next = t + p.period
	}
	return true
}

// sleep waits for d, or until ctx is done; it reports whether ctx is still
// live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
