package mp4

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"
)

// maxPTSOffset bounds PTS − DTS: a composition offset is int32 ticks, and
// it is taken from the first sample's offset too.
const maxPTSOffset = maxOffset * time.Second / TimeScale / 2

// DefaultFrameInterval is how long the last sample of a file lasts when
// it is also the only one and Options.FrameInterval is 0 (15 fps).
const DefaultFrameInterval = time.Second / 15

// Limits on what a Writer holds before it writes a fragment: a GOP,
// unless it is longer than this (a camera with a very long key interval);
// a fragment may then begin with a delta frame, which files allow.
const (
	maxFragmentSamples = 300
	maxFragmentBytes   = 16 << 20
)

// Options tune a Writer.
type Options struct {
	// FrameInterval is the duration of the last sample. 0 means the
	// interval between the last two samples (DefaultFrameInterval for a
	// file of one sample). Every other sample lasts until the next one's
	// DTS, so a file of samples captured at t0 … tn lasts tn − t0 plus
	// this.
	FrameInterval time.Duration
}

// Stats counts what a Writer did with the access units it was given.
type Stats struct {
	Samples  int           // written to the file (or held for it until Close)
	Skipped  int           // delta frames before the first keyframe or after a rejected access unit
	Rejected int           // damaged access units and ones with a bad timestamp (each also an error)
	Duration time.Duration // of the samples written so far, the last one's included once closed
}

// Writer writes H.264 access units to a fragmented MP4 file: an init
// segment from the first keyframe, then a fragment per GOP. The file
// plays in ffplay, VLC and browsers and ffprobe reads its exact frame
// count and duration. Memory is bounded by one GOP; the file can grow
// past 4 GiB. It is not safe for concurrent use.
//
// What goes in the file:
//   - Delta frames before the first keyframe are skipped and counted
//     (Stats.Skipped); the file starts with a keyframe.
//   - A damaged access unit, or one whose DTS does not increase, is
//     rejected with an error (wrapping ErrTimestamp or internal/h264's
//     error) and counted; the delta frames after it are skipped until the
//     next keyframe, so that nothing in the file refers to a missing
//     frame. The Writer stays usable.
//   - A keyframe whose SPS differs from the file's (a camera that changed
//     its resolution) ends the file: WriteAU returns ErrParamsChanged and
//     so does every later call; Close still finishes the file with what
//     came before. The caller starts a new file for the new stream if it
//     wants one (a new Writer, given the same keyframe first).
type Writer struct {
	w     io.Writer
	opt   Options
	m     *Muxer
	err   error // sticky: ErrParamsChanged or a write error
	stats Stats

	waitKey  bool // skip deltas until a keyframe
	closed   bool
	haveLast bool
	lastDTS  time.Duration
	interval time.Duration // between the last two samples
	firstDTS time.Duration
	pending  []au   // the samples of the current GOP
	arena    []byte // their AVCC payloads
}

// NewWriter returns a Writer to w; nothing is written until the first
// keyframe. Close finishes the file but does not close w.
func NewWriter(w io.Writer, opt Options) *Writer {
	return &Writer{w: w, opt: opt}
}

// WriteAU adds an Annex B access unit with its presentation and decode
// times (see Sample). The Writer copies au. Whether it is a keyframe is
// read from the access unit itself (an IDR slice), not taken on trust.
//
// For camhub's messages, presentation times come from the capture times
// and decode times keep the camera's reordering: pts = Frame-Time − the
// export's start, and dts = pts − (Frame-PTS − Frame-DTS) / 90 kHz when
// Frame-DTS is present, else dts = pts. Times are rounded to the nearest
// 90 kHz tick, so time.Duration(ticks) * time.Second / 90000 gives the
// ticks back exactly.
func (w *Writer) WriteAU(au []byte, pts, dts time.Duration) error {
	switch {
	case w.closed:
		return ErrClosed
	case w.err != nil:
		return w.err
	}
	arena, a, err := appendAVCC(w.arena, au)
	if err != nil {
		w.stats.Rejected++
		w.waitKey = true
		return fmt.Errorf("mp4: access unit rejected: %w", err)
	}
	if !a.key && (w.m == nil || w.waitKey) {
		w.stats.Skipped++
		return nil
	}
	if w.haveLast && (ticks(dts-w.firstDTS) <= ticks(w.lastDTS-w.firstDTS) || dts-w.lastDTS > maxGap) ||
		pts-dts > maxPTSOffset || dts-pts > maxPTSOffset {
		w.stats.Rejected++
		w.waitKey = true
		return fmt.Errorf("%w: DTS %v after %v, PTS %v; skipping to the next keyframe", ErrTimestamp, dts, w.lastDTS, pts)
	}
	if w.m == nil {
		m, err := NewMuxer(au)
		if err != nil {
			w.stats.Rejected++
			return err
		}
		if _, err := w.w.Write(m.Init()); err != nil {
			w.err = fmt.Errorf("mp4: %w", err)
			return w.err
		}
		w.m, w.firstDTS = m, dts
	}
	if a.key && a.sps != nil && !bytes.Equal(a.sps, w.m.sps) {
		changed := w.m.changed(a.sps)
		if err := w.flush(dts); err != nil {
			return errors.Join(changed, err)
		}
		w.err = changed
		w.stats.Duration = dts - w.firstDTS // the last sample lasted until this keyframe
		return w.err
	}
	if len(w.pending) > 0 && (a.key || len(w.pending) >= maxFragmentSamples || len(arena) > maxFragmentBytes) {
		// the new access unit starts the next fragment: move it to the
		// arena's start once the fragment is out
		if err := w.flush(dts); err != nil {
			return err
		}
		arena, a.off = arena[:copy(arena, arena[a.off:a.off+a.n])], 0
	}
	w.waitKey = false
	a.pts, a.dts, a.sps = pts, dts, nil
	w.arena = arena
	w.pending = append(w.pending, a)
	if w.haveLast {
		w.interval = dts - w.lastDTS
	}
	w.lastDTS, w.haveLast = dts, true
	w.stats.Samples++
	w.stats.Duration = dts - w.firstDTS
	return nil
}

// flush writes the pending samples as one fragment, the last one ending
// at end.
func (w *Writer) flush(end time.Duration) error {
	if len(w.pending) == 0 {
		return nil
	}
	frag, err := w.m.fragment(w.arena, w.pending, end)
	w.pending, w.arena = w.pending[:0], w.arena[:0]
	if err != nil {
		// the samples were checked on the way in: the file cannot go on
		w.err = err
		return err
	}
	if _, err := w.w.Write(frag); err != nil {
		w.err = fmt.Errorf("mp4: %w", err)
		return w.err
	}
	return nil
}

// Close writes the last fragment; its last sample lasts
// Options.FrameInterval (see there). A file without a keyframe is
// ErrEmpty and nothing was written to w. Close does not close w; a
// second Close returns nil.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	switch {
	case w.m == nil:
		return ErrEmpty
	case errors.Is(w.err, ErrParamsChanged):
		return nil // reported by WriteAU; the file is complete
	case w.err != nil:
		return w.err
	}
	last := w.opt.FrameInterval
	if last <= 0 {
		last = w.interval
	}
	if last <= 0 {
		last = DefaultFrameInterval
	}
	if len(w.pending) > 0 {
		if err := w.flush(w.lastDTS + last); err != nil {
			return err
		}
	}
	w.stats.Duration = w.lastDTS - w.firstDTS + last
	return nil
}

// Stats returns what the Writer has done so far.
func (w *Writer) Stats() Stats { return w.stats }

// Codec returns the file's RFC 6381 codec string, "" before the first
// keyframe.
func (w *Writer) Codec() string {
	if w.m == nil {
		return ""
	}
	return w.m.Codec()
}
