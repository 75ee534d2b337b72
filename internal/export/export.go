//go:build cgo

// Package export writes clips of cameras from camhub's replay buffer as
// video files, encoded with OpenCV. It is the only part of reading the
// buffer that needs cgo; package replay reads and plays the buffer without.
package export

import (
	"context"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"gocv.io/x/gocv"

	"camhub/internal/atomicfile"
	"camhub/internal/humantime"
	"camhub/internal/replay"
	"camhub/internal/wire"
)

// Options says what to export.
type Options struct {
	ID string // the camera
	// From and To bound the capture times (Frame-Time) of the frames
	// exported, both included. A zero From is the oldest frame in the
	// buffer, a zero To the newest when the export starts.
	From, To time.Time
	// Out is the file to write: .mp4 (H.264, or MPEG-4 Part 2 where
	// OpenCV has no H.264 encoder) or .avi (Motion JPEG). An H.264
	// camera's access units go into an .mp4 as they are (no .avi).
	Out string
	// Progress, if set, is called after each frame written with the
	// frames written so far and the frames in the range.
	Progress func(done, total int)
}

// Result describes a finished export.
type Result struct {
	Frames      int       // frames in the clip
	First, Last time.Time // capture times of its first and last frames
	FPS         float64   // the clip's frame rate
	Codec       string    // FourCC of the clip's video
	Skipped     int       // frames in the range that could not be decoded
	// OutOfOrder counts the frames left out because their capture time
	// was out of step with the camera's other frames by more than
	// replay.MaxClockStep (a clock that jumped): see replay.ClockCheck.
	OutOfOrder int
}

// Pulls, in messages held by the client at once.
const (
	scanPull   = 256 // headers only: small
	exportPull = 8   // whole frames: up to 8 MiB each
)

// Frame rates a clip may have. OpenCV keeps three decimals of a rate, and
// MPEG-4 Part 2 accepts no time base finer than 1/65535 s, which
// roundFPS keeps to.
const (
	minFPS = 0.01
	maxFPS = 1000
	// oneFrameFPS is the rate of a clip of a single frame: it shows for
	// a second.
	oneFrameFPS = 1
	// sameTimeFPS is the rate of frames that all have the same capture
	// time, which says nothing about their rate.
	sameTimeFPS = 10
)

// format is a container and the codecs to try for it, best first.
type format struct {
	codecs []string
}

var formats = map[string]format{
	// H.264 plays everywhere (browsers, phones); Debian's OpenCV writes
	// it through FFmpeg's libx264. Builds without it fall back to
	// MPEG-4 Part 2, which every FFmpeg has.
	".mp4": {codecs: []string{"avc1", "mp4v"}},
	// Motion JPEG: every frame a JPEG, like the buffer's.
	".avi": {codecs: []string{"MJPG"}},
}

// clipFPS is the frame rate of a clip of n frames captured over span
// (the first frame's Frame-Time to the last's).
//
// OpenCV writes constant-rate video: each frame lasts 1/fps. n frames
// captured over span are n-1 intervals apart, so fps = (n-1)/span puts every
// frame at its average capture time and the clip plays for as long as the
// capture took (plus one interval: the last frame is shown for one too).
// Using the camera's nominal rate instead would make a clip of a camera that
// dropped frames, or ran slower in the dark, too short or too long; and
// writing one frame per capture (not duplicating or dropping any) keeps the
// clip exactly the frames the buffer held. Jitter between frames is lost:
// a constant-rate file cannot keep it.
func clipFPS(n int, span time.Duration) float64 {
	switch {
	case n < 2:
		return oneFrameFPS
	case span <= 0:
		return sameTimeFPS
	}
	return roundFPS(float64(n-1) / span.Seconds())
}

// roundFPS clamps fps to what the writers accept and rounds it to three
// significant digits (at most 0.5% off), so that the rational rate OpenCV
// derives from it has a small numerator: MPEG-4 Part 2 refuses time bases
// finer than 1/65535 s (65.537 fps fails, 65.5 works).
func roundFPS(fps float64) float64 {
	fps = min(max(fps, minFPS), maxFPS)
	scale := math.Pow(10, 2-math.Floor(math.Log10(fps)))
	return math.Round(fps*scale) / scale
}

// plan is the result of the first pass of an export.
type plan struct {
	n               int               // frames in the range
	first, last     time.Time         // their capture times
	firstSeq, lastS uint64            // their stream sequences
	check           replay.ClockCheck // the clock check's state before the first frame
	outOfOrder      int               // frames whose capture time was out of step
}

// Export writes the frames of camera o.ID captured in [o.From, o.To] to
// o.Out as a video whose frame count is the frames captured and whose
// length is the time they span. It reads the range twice: the headers to
// count the frames and time them (the writer's rate must be known before
// the first frame), then the frames. It stops at the newest frame stored
// when it started, so it ends even while the camera keeps sending.
//
// The file appears complete or not at all: it is written under a temporary
// name in the same directory and renamed at the end; on any failure or
// cancellation the temporary file is removed and o.Out is not touched.
func Export(ctx context.Context, js jetstream.JetStream, o Options) (res Result, err error) {
	if err := wire.ValidateID(o.ID); err != nil {
		return res, fmt.Errorf("%w: %w", replay.ErrInvalid, err)
	}
	if err := replay.NotDir(o.Out, o.ID+".mp4"); err != nil {
		return res, err
	}
	ext := strings.ToLower(filepath.Ext(o.Out))
	fm, ok := formats[ext]
	if !ok {
		return res, fmt.Errorf("%w: export to %q: the file name must end in .mp4 or .avi", replay.ErrInvalid, o.Out)
	}
	if !o.From.IsZero() && !o.To.IsZero() && o.From.After(o.To) {
		return res, fmt.Errorf("%w: export from %s to %s: the start is after the end", replay.ErrInvalid, humantime.ClockMilli(o.From, time.Now()), humantime.ClockMilli(o.To, time.Now()))
	}
	if vfirst, vlast, ok, err := isVideo(ctx, js, o.ID); err != nil {
		return res, err
	} else if ok {
		from, to := o.From, o.To
		if from.IsZero() {
			from = vfirst.Time
		}
		if to.IsZero() {
			to = vlast.Time
		}
		return exportH264(ctx, js, o, from, to, vfirst, vlast)
	}
	first, last, err := replay.Ends(ctx, js, o.ID)
	if err != nil {
		return res, err
	}
	from, to := o.From, o.To
	if from.IsZero() {
		from = first.Time
	}
	if to.IsZero() {
		to = last.Time
	}
	if o.To.IsZero() && from.After(last.Time) {
		return res, fmt.Errorf("camera %q: %w: asked for frames captured from %s on, but its newest frame was captured at %s, %s earlier",
			o.ID, replay.ErrOutOfRange, humantime.ClockMilli(from, time.Now()), humantime.ClockMilli(last.Time, time.Now()), from.Sub(last.Time).Round(time.Millisecond))
	}
	if to.Before(first.Time) || from.After(last.Time) {
		return res, fmt.Errorf("camera %q: %w: asked for %s, but the buffer holds %s",
			o.ID, replay.ErrOutOfRange, describeRange(from, to), describeRange(first.Time, last.Time))
	}

	// Reserve the temporary file now: an unwritable directory fails
	// before any reading.
	pf, err := atomicfile.New(o.Out)
	if err != nil {
		return res, err
	}
	defer pf.Discard()
	pf.Close() // the video writer opens it by name

	p, err := scan(ctx, js, o.ID, from, to, last.StreamSeq)
	if err != nil {
		return res, err
	}
	if p.n == 0 {
		return res, fmt.Errorf("camera %q: %w: no frames were captured in %s; the buffer holds %s",
			o.ID, replay.ErrOutOfRange, describeRange(from, to), describeRange(first.Time, last.Time))
	}
	res, err = write(ctx, js, o, fm, pf.Name(), from, to, p)
	if err != nil {
		return res, err
	}
	return res, pf.Commit()
}

// describeRange says what a range is, for errors.
func describeRange(from, to time.Time) string {
	return fmt.Sprintf("%s to %s (%s)", humantime.ClockMilli(from, time.Now()), humantime.ClockMilli(to, time.Now()), to.Sub(from).Round(time.Millisecond))
}

// scan is the first pass: it reads the headers of camera id's frames from
// from to to and stopping at stream sequence lastSeq, and counts them.
func scan(ctx context.Context, js jetstream.JetStream, id string, from, to time.Time, lastSeq uint64) (plan, error) {
	var p plan
	var chk replay.ClockCheck
	c, err := replay.OpenCursor(ctx, js, id, replay.CursorOptions{StartTime: from, HeadersOnly: true, Pull: scanPull})
	if err != nil {
		return p, err
	}
	defer c.Close()
	for {
		f, ok, err := c.Next(ctx)
		if err != nil {
			return p, exportErr(ctx, id, err)
		}
		if !ok || f.StreamSeq > lastSeq {
			break
		}
		// Not stopping at the first frame after to: a frame with a
		// wrong clock may come before frames that belong.
		before := chk
		if !chk.OK(f) {
			p.outOfOrder++
		} else if !f.Time.Before(from) && !f.Time.After(to) {
			if p.n == 0 {
				p.first, p.firstSeq, p.check = f.Time, f.StreamSeq, before
			}
			p.n++
			p.last, p.lastS = f.Time, f.StreamSeq
		}
		if f.StreamSeq == lastSeq {
			break
		}
	}
	return p, nil
}

// exportErr says why reading failed.
func exportErr(ctx context.Context, id string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("export of camera %q cancelled: %w", id, ctx.Err())
	}
	return fmt.Errorf("export of camera %q: reading the replay buffer: %w", id, err)
}

// write is the second pass: it reads the frames p found and writes them to
// the video file name.
func write(ctx context.Context, js jetstream.JetStream, o Options, fm format, name string, from, to time.Time, p plan) (Result, error) {
	res := Result{FPS: clipFPS(p.n, p.last.Sub(p.first)), OutOfOrder: p.outOfOrder}
	chk := p.check
	c, err := replay.OpenCursor(ctx, js, o.ID, replay.CursorOptions{StartSeq: p.firstSeq, Pull: exportPull})
	if err != nil {
		return res, err
	}
	defer c.Close()

	var vw *gocv.VideoWriter
	defer func() {
		if vw != nil {
			vw.Close()
		}
	}()
	var size image.Point
	scaled := gocv.NewMat()
	defer scaled.Close()

	if o.Progress != nil {
		o.Progress(0, p.n)
	}
	for {
		f, ok, err := c.Next(ctx)
		if err != nil {
			return res, exportErr(ctx, o.ID, err)
		}
		if !ok || f.StreamSeq > p.lastS {
			break
		}
		// The same selection as the first pass.
		if chk.OK(f) && !f.Time.Before(from) && !f.Time.After(to) {
			img, err := gocv.IMDecode(f.JPEG, gocv.IMReadColor)
			if err != nil || img.Empty() {
				if err == nil {
					img.Close()
				}
				res.Skipped++
			} else {
				if vw == nil {
					size = image.Pt(img.Cols(), img.Rows())
					vw, res.Codec, err = openWriter(name, fm, res.FPS, size)
					if err != nil {
						img.Close()
						return res, fmt.Errorf("writing %s: %w", o.Out, err)
					}
				}
				frame := img
				if img.Cols() != size.X || img.Rows() != size.Y {
					// The writer drops frames of another size.
					gocv.Resize(img, &scaled, size, 0, 0, gocv.InterpolationArea)
					frame = scaled
				}
				err = vw.Write(frame)
				img.Close()
				if err != nil {
					return res, fmt.Errorf("writing %s: %w", o.Out, err)
				}
				if res.Frames == 0 {
					res.First = f.Time
				}
				res.Frames++
				res.Last = f.Time
				if o.Progress != nil {
					o.Progress(res.Frames, p.n)
				}
			}
		}
		if f.StreamSeq == p.lastS {
			break
		}
		if err := ctx.Err(); err != nil {
			return res, exportErr(ctx, o.ID, err)
		}
	}
	if vw == nil {
		return res, fmt.Errorf("camera %q: %w: none of the %d frames in %s could be read (they left the buffer, or are not JPEGs)",
			o.ID, replay.ErrNoFrames, p.n, describeRange(from, to))
	}
	err = vw.Close()
	vw = nil
	if err != nil {
		return res, fmt.Errorf("writing %s: %w", o.Out, err)
	}
	if st, err := os.Stat(name); err != nil || st.Size() == 0 {
		return res, fmt.Errorf("writing %s: the video encoder wrote nothing", o.Out)
	}
	return res, nil
}

// openWriter opens a video writer on name with the first of fm's codecs
// that works.
func openWriter(name string, fm format, fps float64, size image.Point) (*gocv.VideoWriter, string, error) {
	for _, codec := range fm.codecs {
		vw, err := gocv.VideoWriterFile(name, codec, fps, size.X, size.Y, true)
		if err != nil {
			continue
		}
		if vw.IsOpened() {
			return vw, codec, nil
		}
		vw.Close()
	}
	return nil, "", fmt.Errorf("OpenCV cannot encode %s (%s) at %dx%d, %.3g fps",
		filepath.Ext(name), strings.Join(fm.codecs, " or "), size.X, size.Y, fps)
}
