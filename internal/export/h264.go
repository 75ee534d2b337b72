//go:build cgo

package export

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/atomicfile"
	"camhub/internal/mp4"
	"camhub/internal/replay"
	"camhub/internal/wire"
)

// codecH264 is Result.Codec of an H.264 camera's clip: its access units as
// the camera sent them (the file's RFC 6381 string says the profile).
const codecH264 = "avc1"

// isVideo reports whether camera id sends H.264: it has access units in
// the buffer newer than any JPEG frame it has.
func isVideo(ctx context.Context, js jetstream.JetStream, id string) (first, last replay.AU, ok bool, err error) {
	first, last, err = replay.VideoEnds(ctx, js, id)
	if errors.Is(err, replay.ErrNoFrames) {
		return first, last, false, nil
	}
	if err != nil {
		return first, last, false, err
	}
	_, jl, err := replay.Ends(ctx, js, id)
	if errors.Is(err, replay.ErrNoFrames) {
		return first, last, true, nil
	}
	if err != nil {
		return first, last, false, err
	}
	return first, last, jl.StreamSeq < last.StreamSeq, nil
}

// exportH264 writes the access units of an H.264 camera to o.Out as a
// fragmented MP4, without decoding or re-encoding them. A clip can only
// begin at a keyframe, so it starts at the newest keyframe captured at or
// before from (the oldest in the buffer if none is); it ends with the last
// access unit captured at or before to. Presentation times are the capture
// times (Frame-Time) from the first access unit on, keeping the camera's
// reordering (Frame-PTS − Frame-DTS); the last access unit lasts as long
// as the interval before it. The clip's frame count and duration are
// exactly those of the access units captured in that range.
func exportH264(ctx context.Context, js jetstream.JetStream, o Options, from, to time.Time, first, last replay.AU) (res Result, err error) {
	if ext := strings.ToLower(filepath.Ext(o.Out)); ext != ".mp4" {
		return res, fmt.Errorf("%w: camera %q sends H.264, which is exported to .mp4 as it is (no re-encoding): give a file name ending in .mp4, not %s",
			replay.ErrInvalid, o.ID, ext)
	}
	if to.Before(first.Time) || from.After(last.Time) {
		return res, fmt.Errorf("camera %q: %w: asked for %s, but the buffer holds %s",
			o.ID, replay.ErrOutOfRange, describeRange(from, to), describeRange(first.Time, last.Time))
	}
	start, n, err := scanH264(ctx, js, o.ID, from, to, last.StreamSeq)
	if err != nil {
		return res, err
	}
	if n == 0 {
		return res, fmt.Errorf("camera %q: %w: no keyframe was captured before %s; the buffer holds %s",
			o.ID, replay.ErrOutOfRange, describeRange(from, to), describeRange(first.Time, last.Time))
	}

	pf, err := atomicfile.New(o.Out)
	if err != nil {
		return res, err
	}
	defer pf.Discard()
	res, err = writeH264(ctx, js, o, pf.File, start, n, to, last.StreamSeq)
	if err != nil {
		return res, err
	}
	return res, pf.Commit()
}

// scanH264 reads the headers of camera id's access units up to stream
// sequence lastSeq: it finds the stream sequence of the newest keyframe
// captured at or before from (else the oldest keyframe) and counts the
// access units from there to to.
func scanH264(ctx context.Context, js jetstream.JetStream, id string, from, to time.Time, lastSeq uint64) (start uint64, n int, err error) {
	c, err := replay.OpenVideoCursor(ctx, js, id, replay.VideoCursorOptions{KeysOnly: true, HeadersOnly: true, Pull: scanPull})
	if err != nil {
		return 0, 0, err
	}
	for {
		a, ok, err := c.Next(ctx)
		if err != nil {
			c.Close()
			return 0, 0, exportErr(ctx, id, err)
		}
		if !ok || a.StreamSeq > lastSeq || (start != 0 && a.Time.After(from)) {
			break
		}
		start = a.StreamSeq
	}
	c.Close()
	if start == 0 {
		return 0, 0, nil
	}
	c, err = replay.OpenVideoCursor(ctx, js, id, replay.VideoCursorOptions{StartSeq: start, HeadersOnly: true, Pull: scanPull})
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	for {
		a, ok, err := c.Next(ctx)
		if err != nil {
			return 0, 0, exportErr(ctx, id, err)
		}
		if !ok || a.StreamSeq > lastSeq || a.Time.After(to) {
			return start, n, nil
		}
		n++
	}
}

// writeH264 is the second pass: the access units from stream sequence
// start, n of them, into an MP4 on f.
func writeH264(ctx context.Context, js jetstream.JetStream, o Options, f *os.File, start uint64, n int, to time.Time, lastSeq uint64) (Result, error) {
	res := Result{Codec: codecH264}
	c, err := replay.OpenVideoCursor(ctx, js, o.ID, replay.VideoCursorOptions{StartSeq: start, Pull: exportPull})
	if err != nil {
		return res, err
	}
	defer c.Close()
	w := mp4.NewWriter(f, mp4.Options{})
	if o.Progress != nil {
		o.Progress(0, n)
	}
	var origin time.Time
	for res.Frames+res.Skipped < n {
		a, ok, err := c.Next(ctx)
		if err != nil {
			return res, exportErr(ctx, o.ID, err)
		}
		if !ok || a.StreamSeq > lastSeq || a.Time.After(to) {
			break
		}
		if origin.IsZero() {
			origin = a.Time
		}
		pts := a.Time.Sub(origin)
		dts := pts - time.Duration(a.PTS-a.DTS)*time.Second/wire.VideoClockRate
		rejected := w.Stats().Rejected
		if err := w.WriteAU(a.Data, pts, dts); err != nil {
			if errors.Is(err, mp4.ErrParamsChanged) {
				break // the camera changed its resolution: the clip ends there
			}
			if w.Stats().Rejected == rejected {
				return res, fmt.Errorf("writing %s: %w", o.Out, err)
			}
			// a damaged access unit: counted, and the writer skips to
			// the next keyframe
		}
		st := w.Stats()
		res.Skipped = st.Skipped + st.Rejected
		if st.Samples > res.Frames {
			if res.Frames == 0 {
				res.First = a.Time
			}
			res.Frames = st.Samples
			res.Last = a.Time
		}
		if o.Progress != nil {
			o.Progress(res.Frames, n)
		}
	}
	if err := w.Close(); err != nil {
		if errors.Is(err, mp4.ErrEmpty) {
			return res, fmt.Errorf("camera %q: %w: none of the %d access units from its keyframe could be written (they left the buffer, or are damaged)",
				o.ID, replay.ErrNoFrames, n)
		}
		return res, fmt.Errorf("writing %s: %w", o.Out, err)
	}
	if d := w.Stats().Duration; d > 0 {
		res.FPS = float64(res.Frames) / d.Seconds()
	}
	return res, nil
}
