//go:build cgo

// Package motion detects motion in a camera's pictures as camera software
// has long done it, tuned to be robust: each analysed picture is turned
// grey, shrunk (Config.Height rows), blurred and compared with a running
// average of the earlier ones (the background), which stops learning while
// there is motion, so a slow walker does not melt into it. Pixels that
// differ by more than Config.Threshold, outside the masks, are dilated into
// areas; areas larger than Config.MinArea are motion. An event starts after
// Config.OnFrames analysed pictures in a row with motion (dated from the
// first) and ends once there was none for Config.OffDelay. When most of the
// picture changes at once (a light switched on, a camera's exposure step)
// the background is learnt again and nothing is reported.
//
// A Detector is one camera's; it is not safe for concurrent use. It keeps
// its Mats from picture to picture and frees them in Close.
package motion

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"time"

	"gocv.io/x/gocv"

	"camhub/internal/wire"
)

// Result is what one analysed picture says.
type Result struct {
	// Motion: areas above MinArea changed (inside an event or not).
	Motion bool
	// Score is the fraction of the analysed picture (outside the masks)
	// in those areas, 0 to 1.
	Score float64
	// Boxes are those areas' bounding boxes, in fractions of the picture.
	Boxes []wire.Box
	// Lightswitch: most of the picture changed at once; the background
	// was learnt again.
	Lightswitch bool
	// Active: an event is under way (after this picture).
	Active bool
	// Started: an event started with this picture; Start is the capture
	// time of the first picture of the run that started it.
	Started bool
	Start   time.Time
	// Ended: the event ended with this picture, at End (its capture time,
	// OffDelay or more after the last motion).
	Ended bool
	End   time.Time
}

// Detector is one camera's motion detector.
type Detector struct {
	cfg Config

	// the picture's steps, kept from picture to picture
	gray, small, blur, blurF, diff, thresh, tmp, dilated gocv.Mat

	bg, bg8 gocv.Mat // the background (32-bit float) and as bytes
	prev    gocv.Mat // the previous analysed picture, blurred
	mask    gocv.Mat // 255 where motion counts; empty: everywhere
	kernel  gocv.Mat // of the dilation

	size   image.Point // of the analysed picture; zero before the first
	pixels int         // analysed pixels (outside the masks)

	run       int       // analysed pictures in a row with motion
	runStart  time.Time // capture time of the first of them
	active    bool
	lastMove  time.Time // capture time of the last picture with motion
	lastFrame time.Time
}

// ErrClosed is returned by Analyse after Close.
var ErrClosed = errors.New("motion: detector closed")

// New returns a detector with cfg (see Config.Validate).
func New(cfg Config) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &Detector{cfg: cfg}
	for _, m := range []*gocv.Mat{&d.gray, &d.small, &d.blur, &d.blurF, &d.bg, &d.bg8, &d.prev, &d.diff, &d.thresh, &d.tmp, &d.dilated, &d.mask} {
		*m = gocv.NewMat()
	}
	d.kernel = gocv.GetStructuringElement(gocv.MorphEllipse, image.Pt(5, 5))
	return d, nil
}

// Close frees the detector's Mats. It may be called more than once.
func (d *Detector) Close() {
	if d.kernel.Ptr() == nil {
		return
	}
	for _, m := range []*gocv.Mat{&d.gray, &d.small, &d.blur, &d.blurF, &d.bg, &d.bg8, &d.prev, &d.diff, &d.thresh, &d.tmp, &d.dilated, &d.mask, &d.kernel} {
		m.Close()
		*m = gocv.Mat{}
	}
}

// Active reports whether an event is under way.
func (d *Detector) Active() bool { return d.active }

// Resume puts the detector into an event that started at start and saw
// motion last at last: a detector restarted during an event carries it on,
// and ends it OffDelay after the last motion it sees.
func (d *Detector) Resume(start, last time.Time) {
	d.active, d.runStart, d.lastMove = true, start, last
}

// Stop ends an event under way without a result (its camera went quiet).
func (d *Detector) Stop() { d.active, d.run = false, 0 }

// Analyse analyses picture img (BGR or grey, any size) captured at t.
func (d *Detector) Analyse(img gocv.Mat, t time.Time) (Result, error) {
	var r Result
	if d.kernel.Ptr() == nil {
		return r, ErrClosed
	}
	if img.Empty() || img.Rows() < 2 || img.Cols() < 2 {
		return r, fmt.Errorf("motion: empty picture")
	}
	gray := img
	switch img.Channels() {
	case 1:
	case 3:
		gocv.CvtColor(img, &d.gray, gocv.ColorBGRToGray)
		gray = d.gray
	case 4:
		gocv.CvtColor(img, &d.gray, gocv.ColorBGRAToGray)
		gray = d.gray
	default:
		return r, fmt.Errorf("motion: a picture of %d channels", img.Channels())
	}
	h := min(d.cfg.Height, img.Rows())
	w := max(1, int(math.Round(float64(img.Cols())*float64(h)/float64(img.Rows()))))
	size := image.Pt(w, h)
	gocv.Resize(gray, &d.small, size, 0, 0, gocv.InterpolationArea)
	k := blurKernel(h)
	gocv.GaussianBlur(d.small, &d.blur, image.Pt(k, k), 0, 0, gocv.BorderReplicate)
	d.blur.ConvertTo(&d.blurF, gocv.MatTypeCV32F)
	d.lastFrame = t

	if size != d.size || d.bg.Empty() {
		// the first picture, or a new resolution: it is the background
		d.size = size
		d.blurF.CopyTo(&d.bg)
		d.blur.CopyTo(&d.prev)
		d.makeMask()
		d.run = 0
		r.Active = d.active
		return r, nil
	}

	d.bg.ConvertTo(&d.bg8, gocv.MatTypeCV8U)
	gocv.AbsDiff(d.blur, d.bg8, &d.diff)
	gocv.Threshold(d.diff, &d.thresh, float32(d.cfg.Threshold), 255, gocv.ThresholdBinary)
	if !d.mask.Empty() {
		gocv.BitwiseAnd(d.thresh, d.mask, &d.tmp)
		d.thresh, d.tmp = d.tmp, d.thresh
	}
	changed := gocv.CountNonZero(d.thresh)
	if float64(changed) > d.cfg.Lightswitch*float64(d.pixels) {
		// a light, not a burglar: learn the picture as it is now
		d.blurF.CopyTo(&d.bg)
		d.blur.CopyTo(&d.prev)
		d.run = 0
		r.Lightswitch = true
		d.hysteresis(&r, t, false)
		return r, nil
	}
	// Something must move now, not only differ from the background: a
	// scene that changed and then stays still (a walker who stopped, a
	// parked car) is learnt into the background instead of lasting for
	// ever.
	moved := 0
	if changed > 0 {
		moved = d.changed(d.prev, &d.tmp)
	}
	d.blur.CopyTo(&d.prev)
	if changed > 0 && float64(moved) >= movedShare*d.cfg.MinArea*float64(d.pixels) {
		gocv.DilateWithParams(d.thresh, &d.dilated, d.kernel, image.Pt(-1, -1), 2, gocv.BorderConstant, color.RGBA{})
		contours := gocv.FindContours(d.dilated, gocv.RetrievalExternal, gocv.ChainApproxSimple)
		minArea := d.cfg.MinArea * float64(d.pixels)
		moving := 0.0
		for i := range contours.Size() {
			c := contours.At(i)
			a := gocv.ContourArea(c)
			if a < minArea {
				continue
			}
			moving += a
			b := gocv.BoundingRect(c)
			r.Boxes = append(r.Boxes, wire.Box{
				X: float64(b.Min.X) / float64(w), Y: float64(b.Min.Y) / float64(h),
				W: float64(b.Dx()) / float64(w), H: float64(b.Dy()) / float64(h),
			})
		}
		contours.Close()
		r.Motion = len(r.Boxes) > 0
		r.Score = min(1, moving/float64(d.pixels))
	}
	if !r.Motion {
		// learn the background only while nothing moves
		a := d.cfg.Alpha
		gocv.AddWeighted(d.bg, 1-a, d.blurF, a, 0, &d.bg)
	}
	d.hysteresis(&r, t, r.Motion)
	return r, nil
}

// movedShare: the pixels that changed since the previous picture must be
// at least this share of MinArea for a picture to show motion.
const movedShare = 0.25

// changed counts the pixels of d.blur that differ from ref by more than
// the threshold, outside the masks; scratch is clobbered.
func (d *Detector) changed(ref gocv.Mat, scratch *gocv.Mat) int {
	gocv.AbsDiff(d.blur, ref, scratch)
	gocv.Threshold(*scratch, scratch, float32(d.cfg.Threshold), 255, gocv.ThresholdBinary)
	if !d.mask.Empty() {
		gocv.BitwiseAnd(*scratch, d.mask, scratch)
	}
	return gocv.CountNonZero(*scratch)
}

// hysteresis turns motion in single pictures into events.
func (d *Detector) hysteresis(r *Result, t time.Time, motion bool) {
	if motion {
		if d.run == 0 {
			d.runStart = t
		}
		d.run++
		d.lastMove = t
		if !d.active && d.run >= d.cfg.OnFrames {
			d.active, r.Started, r.Start = true, true, d.runStart
		}
	} else {
		d.run = 0
		if d.active && t.Sub(d.lastMove) >= d.cfg.OffDelay {
			d.active, r.Ended, r.End = false, true, t
		}
	}
	r.Active = d.active
}

// blurKernel is the Gaussian kernel for a picture h rows high: about 4%
// of it, odd, at least 3.
func blurKernel(h int) int {
	k := h/25 | 1
	return max(k, 3)
}

// makeMask draws the masks at the analysed size: 255 where motion counts.
func (d *Detector) makeMask() {
	d.pixels = d.size.X * d.size.Y
	if len(d.cfg.Masks) == 0 {
		d.mask.Close()
		d.mask = gocv.NewMat()
		return
	}
	d.mask.Close()
	d.mask = gocv.NewMatWithSizeFromScalar(gocv.NewScalar(255, 0, 0, 0), d.size.Y, d.size.X, gocv.MatTypeCV8U)
	pts := make([][]image.Point, len(d.cfg.Masks))
	for i, p := range d.cfg.Masks {
		for _, q := range p {
			pts[i] = append(pts[i], image.Pt(int(math.Round(q.X*float64(d.size.X))), int(math.Round(q.Y*float64(d.size.Y)))))
		}
	}
	pv := gocv.NewPointsVectorFromPoints(pts)
	gocv.FillPoly(&d.mask, pv, color.RGBA{})
	pv.Close()
	d.pixels = max(1, gocv.CountNonZero(d.mask))
}
