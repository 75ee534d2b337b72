package agent

import (
	"image"
	"log/slog"
	"strconv"
	"time"

	"gocv.io/x/gocv"

	"camhub/internal/ratelog"
	"camhub/internal/turbojpeg"
)

// headerRoom is what a frame's headers take of the NATS max payload: about
// 160 bytes, rounded up.
const headerRoom = 512

// defaultMaxPayload is assumed before the first connection tells the
// server's: NATS's default.
const defaultMaxPayload = 1 << 20

// probeEvery is how many frames an encoder sends at a reduced step before
// it tries the step above again.
const probeEvery = 30

// step is one rung of the ladder an encoder goes down when a frame is
// larger than the max payload: a JPEG quality, and a divisor of the size.
type step struct {
	quality int
	div     int
}

// ladder is the configured quality at full size, then lower qualities,
// then smaller sizes.
func ladder(quality int) []step {
	s := []step{{quality, 1}}
	for _, q := range []int{60, 40, 20} {
		if q < quality {
			s = append(s, step{q, 1})
		}
	}
	low := min(quality, 20)
	for _, d := range []int{2, 4, 8} {
		s = append(s, step{low, d})
	}
	return s
}

// encoder scales frames to fit the configured size and JPEG-encodes them
// small enough for the NATS max payload. It belongs to the capture
// goroutine; close frees its Mats.
type encoder struct {
	maxW, maxH int
	steps      []step
	at         int // the step the last frame needed
	since      int // frames sent at step at since it was reached or probed
	limit      func() int
	params     []int
	tj         *turbojpeg.Encoder // nil if it could not be made: OpenCV encodes
	fitted     gocv.Mat           // the frame scaled to fit maxW x maxH
	scaled     bool               // fitted holds the last frame (it was scaled)
	small      gocv.Mat           // fitted, scaled down further by a step
	st         *counters
	log        *slog.Logger
	warn       *ratelog.Logger // one line a minute for each warning; the counters tell the rest
}

func newEncoder(width, height, quality int, limit func() int, st *counters, log *slog.Logger) *encoder {
	tj, err := turbojpeg.NewEncoder()
	if err != nil {
		log.Warn("encoding with OpenCV", "error", err)
	}
	return &encoder{
		tj:     tj,
		maxW:   width,
		maxH:   height,
		steps:  ladder(quality),
		limit:  limit,
		params: []int{gocv.IMWriteJpegQuality, quality},
		fitted: gocv.NewMat(),
		small:  gocv.NewMat(),
		st:     st,
		log:    log,
		warn:   ratelog.New(log, time.Minute),
	}
}

func (e *encoder) close() {
	if e.tj != nil {
		e.tj.Close()
	}
	e.fitted.Close()
	e.small.Close()
}

// fitSize is the size of a w x h frame scaled down to fit within maxW x
// maxH keeping its aspect ratio; a frame that fits is not enlarged.
func fitSize(w, h, maxW, maxH int) (int, int) {
	if w <= maxW && h <= maxH {
		return w, h
	}
	if w*maxH >= h*maxW { // the width limits
		return maxW, max(1, (h*maxW+w/2)/w)
	}
	return max(1, (w*maxH+h/2)/h), maxH
}

// encode scales img and encodes it into f. It returns false if the frame
// was dropped: too large even at the last step, or not encodable.
//
// Frames that do not fit the max payload go down the ladder. The step a
// frame needed is where the next frame starts, so a scene that does not
// fit costs one encode per frame, not one per step; every probeEvery
// frames the step above is tried again.
func (e *encoder) encode(img gocv.Mat, f *frame) bool {
	w, h := fitSize(img.Cols(), img.Rows(), e.maxW, e.maxH)
	src := img
	e.scaled = w != img.Cols() || h != img.Rows()
	if e.scaled {
		gocv.Resize(img, &e.fitted, image.Pt(w, h), 0, 0, gocv.InterpolationArea)
		src = e.fitted
	}
	limit := e.limit()
	first := e.at
	if e.at > 0 && e.since >= probeEvery {
		first, e.since = e.at-1, 0
	}
	for i := first; i < len(e.steps); i++ {
		if i > first {
			e.st.reencodes.Add(1)
		}
		s := e.steps[i]
		in := src
		if s.div > 1 {
			sz := image.Pt(max(1, w/s.div), max(1, h/s.div))
			gocv.Resize(src, &e.small, sz, 0, 0, gocv.InterpolationArea)
			in = e.small
		}
		if !e.jpeg(in, s.quality, f) {
			e.st.dropped.Add(1)
			e.warn.Warn("JPEG encoding failed; dropping the frame",
				"width", in.Cols(), "height", in.Rows(), "type", in.Type().String())
			return false
		}
		if len(f.data) > limit {
			continue
		}
		if i != e.at {
			e.at, e.since = i, 0
			e.log.Debug("frame encoding step changed for the NATS max payload",
				"quality", s.quality, "scale", "1/"+strconv.Itoa(s.div), "max_payload", limit)
		}
		e.since++
		if i > 0 {
			e.st.oversize.Add(1)
			e.warn.Warn("frames are larger than the NATS max payload; sending them at a lower quality or size",
				"quality", s.quality, "scale", "1/"+strconv.Itoa(s.div), "max_payload", limit)
		}
		f.width, f.height = in.Cols(), in.Rows()
		return true
	}
	e.at, e.since = len(e.steps)-1, 0
	e.st.tooLarge.Add(1)
	e.st.dropped.Add(1)
	e.warn.Warn("frame larger than the NATS max payload even at the lowest quality and size; dropping it",
		"bytes", len(f.data), "max_payload", limit)
	return false
}

// jpeg encodes img into f.data, reusing its buffer: with TurboJPEG, which
// takes about 0.8× OpenCV's time for the same JPEG, or with OpenCV for a
// Mat TurboJPEG does not take.
func (e *encoder) jpeg(img gocv.Mat, quality int, f *frame) bool {
	if e.tj != nil {
		if data, err := e.tj.Encode(img, quality, f.data); err == nil {
			f.data = data
			return len(f.data) > 0
		}
	}
	e.params[1] = quality
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, img, e.params)
	if err != nil {
		return false
	}
	// GetBytes points into C memory that Close frees: copy first.
	f.data = append(f.data[:0], buf.GetBytes()...)
	buf.Close()
	return len(f.data) > 0
}
