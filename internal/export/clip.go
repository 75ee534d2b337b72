//go:build cgo

package export

import (
	"context"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"gocv.io/x/gocv"

	"camhub/internal/atomicfile"
	"camhub/internal/mp4"
	"camhub/internal/replay"
	"camhub/internal/wire"
)

// Event writes the clip of event eid, kept in the stream CLIPS, to out as
// Export writes a range of the buffer: JPEG frames encoded by OpenCV (.mp4
// or .avi), H.264 access units into an .mp4 as they are. The file appears
// complete or not at all.
func Event(ctx context.Context, js jetstream.JetStream, eid, out string, progress func(done, total int)) (res Result, err error) {
	if err := wire.ValidateEventID(eid); err != nil {
		return res, fmt.Errorf("%w: %w", replay.ErrInvalid, err)
	}
	if err := replay.NotDir(out, eid+".mp4"); err != nil {
		return res, err
	}
	ext := strings.ToLower(filepath.Ext(out))
	fm, ok := formats[ext]
	if !ok {
		return res, fmt.Errorf("%w: export to %q: the file name must end in .mp4 or .avi", replay.ErrInvalid, out)
	}
	// First pass: the headers, to count and time the frames.
	var n int
	var first, last time.Time
	video := false
	err = replay.ReadClip(ctx, js, eid, true, func(m jetstream.Msg, f wire.Frame) error {
		if n == 0 {
			first = f.Time
			_, _, verr := wire.ParseVideoSubject(wire.CamsSubject(eid, m.Subject()))
			video = verr == nil
		}
		n++
		last = f.Time
		return nil
	})
	if err != nil {
		return res, err
	}
	if n == 0 {
		return res, fmt.Errorf("event %s: %w: the stream %s holds no clip of it (it was dropped for age or space, or the event has none)", eid, replay.ErrNoFrames, wire.ClipsStream)
	}
	if video && ext != ".mp4" {
		return res, fmt.Errorf("%w: event %s is H.264, which is exported to .mp4 as it is (no re-encoding): give a file name ending in .mp4, not %s",
			replay.ErrInvalid, eid, ext)
	}
	pf, err := atomicfile.New(out)
	if err != nil {
		return res, err
	}
	defer pf.Discard()
	if progress != nil {
		progress(0, n)
	}
	if video {
		res, err = clipH264(ctx, js, eid, pf.File, n, progress)
	} else {
		pf.Close() // the video writer opens it by name
		res, err = clipJPEG(ctx, js, eid, pf.Name(), fm, n, first, last, progress)
	}
	if err != nil {
		return res, err
	}
	return res, pf.Commit()
}

func clipJPEG(ctx context.Context, js jetstream.JetStream, eid, name string, fm format, n int, first, last time.Time, progress func(int, int)) (Result, error) {
	res := Result{FPS: clipFPS(n, last.Sub(first))}
	var vw *gocv.VideoWriter
	defer func() {
		if vw != nil {
			vw.Close()
		}
	}()
	var size image.Point
	scaled := gocv.NewMat()
	defer scaled.Close()
	err := replay.ReadClip(ctx, js, eid, false, func(m jetstream.Msg, f wire.Frame) error {
		img, err := gocv.IMDecode(m.Data(), gocv.IMReadColor)
		if err != nil || img.Empty() {
			if err == nil {
				img.Close()
			}
			res.Skipped++
			return nil
		}
		defer img.Close()
		if vw == nil {
			size = image.Pt(img.Cols(), img.Rows())
			if vw, res.Codec, err = openWriter(name, fm, res.FPS, size); err != nil {
				return err
			}
		}
		frame := img
		if img.Cols() != size.X || img.Rows() != size.Y {
			gocv.Resize(img, &scaled, size, 0, 0, gocv.InterpolationArea)
			frame = scaled
		}
		if err := vw.Write(frame); err != nil {
			return err
		}
		if res.Frames == 0 {
			res.First = f.Time
		}
		res.Frames++
		res.Last = f.Time
		if progress != nil {
			progress(res.Frames, n)
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("event %s: %w", eid, err)
	}
	if vw == nil {
		return res, fmt.Errorf("event %s: %w: none of its %d frames could be decoded", eid, replay.ErrNoFrames, n)
	}
	err = vw.Close()
	vw = nil
	if err != nil {
		return res, err
	}
	if st, err := os.Stat(name); err != nil || st.Size() == 0 {
		return res, errors.New("the video encoder wrote nothing")
	}
	return res, nil
}

func clipH264(ctx context.Context, js jetstream.JetStream, eid string, f *os.File, n int, progress func(int, int)) (Result, error) {
	res := Result{Codec: codecH264}
	w := mp4.NewWriter(f, mp4.Options{})
	var origin time.Time
	stop := errors.New("stop")
	err := replay.ReadClip(ctx, js, eid, false, func(m jetstream.Msg, _ wire.Frame) error {
		a, err := wire.ParseVideo(m.Headers())
		if err != nil {
			return nil
		}
		if origin.IsZero() {
			origin = a.Time
		}
		pts := a.Time.Sub(origin)
		dts := pts - time.Duration(a.PTS-a.DTS)*time.Second/wire.VideoClockRate
		rejected := w.Stats().Rejected
		if err := w.WriteAU(m.Data(), pts, dts); err != nil {
			if errors.Is(err, mp4.ErrParamsChanged) {
				return stop // the camera changed its resolution: the clip ends there
			}
			if w.Stats().Rejected == rejected {
				return err
			}
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
		if progress != nil {
			progress(res.Frames, n)
		}
		return nil
	})
	if err != nil && !errors.Is(err, stop) {
		return res, fmt.Errorf("event %s: %w", eid, err)
	}
	if err := w.Close(); err != nil {
		if errors.Is(err, mp4.ErrEmpty) {
			return res, fmt.Errorf("event %s: %w: none of its %d access units could be written", eid, replay.ErrNoFrames, n)
		}
		return res, err
	}
	if d := w.Stats().Duration; d > 0 {
		res.FPS = float64(res.Frames) / d.Seconds()
	}
	return res, nil
}
