package agent

import (
	"image"
	"image/color"
	"math"
	"strconv"
	"time"

	"gocv.io/x/gocv"
)

// pattern draws the test pattern: a colour gradient with a bar sweeping
// across and a bouncing ball, the camera id in big letters, the clock
// (HH:MM:SS.mmm) and the frame number. What does not move (the gradient,
// the band and the id) is drawn once, and every frame is drawn into the
// same Mat. close frees its Mats.
type pattern struct {
	w, h int
	bg   gocv.Mat
	img  gocv.Mat
	band image.Rectangle // dark band behind the id and the clock
	clkL label
	seqL label
	text []byte // reused for the frame number
}

type label struct {
	scale float64
	thick int
	width int         // of the text at this scale
	org   image.Point // bottom left of the text
}

const patternFont = gocv.FontHersheySimplex

var (
	white = color.RGBA{255, 255, 255, 0}
	black = color.RGBA{0, 0, 0, 0}
	dark  = color.RGBA{40, 40, 40, 0}
	red   = color.RGBA{230, 40, 40, 0}
)

func newPattern(id string, w, h int, fps float64) *pattern {
	p := &pattern{w: w, h: h, img: gocv.NewMat()}

	// A diagonal hue gradient that wraps around the colour wheel.
	ramp := make([]byte, w*h)
	for y := range h {
		for x := range w {
			ramp[y*w+x] = byte((x*255/w + y*96/h) % 256)
		}
	}
	gray, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8U, ramp)
	if err != nil { // only for an empty slice, which w, h >= 1 rule out
		panic(err)
	}
	p.bg = gocv.NewMat()
	gocv.ApplyColorMap(gray, &p.bg, gocv.ColormapHsv)
	gray.Close()

	// The id, centred on a dark band, and the size and rate at the bottom
	// right, drawn once.
	p.band = image.Rect(0, h*26/100, w, h*74/100)
	gocv.Rectangle(&p.bg, p.band, dark, -1)
	idL := fit(id, w*9/10, h*20/100)
	idL.org = image.Pt((w-idL.width)/2, h*48/100)
	drawLabel(&p.bg, id, idL)
	info := strconv.Itoa(w) + "x" + strconv.Itoa(h) + " @ " + strconv.FormatFloat(fps, 'g', 4, 64) + " fps"
	infoL := fit(info, w*45/100, h*6/100)
	infoL.org = image.Pt(w-w/30-infoL.width, h-h*3/100)
	drawLabel(&p.bg, info, infoL)

	// The clock below the id, the frame number at the bottom left.
	p.clkL = fit("00:00:00.000", w*7/10, h*13/100)
	p.clkL.org = image.Pt((w-p.clkL.width)/2, h*68/100)
	p.seqL = fit("frame 0000000", w*45/100, h*6/100)
	p.seqL.org = image.Pt(w/30, h-h*3/100)
	return p
}

// fit sizes a label for text to fit within maxW x maxH.
func fit(text string, maxW, maxH int) label {
	sz := gocv.GetTextSize(text, patternFont, 1, 2)
	scale := math.Min(float64(maxW)/float64(max(sz.X, 1)), float64(maxH)/float64(max(sz.Y, 1)))
	thick := max(1, int(math.Round(scale*2)))
	sz = gocv.GetTextSize(text, patternFont, scale, thick)
	return label{scale: scale, thick: thick, width: sz.X}
}

// draw draws frame seq, captured at t, and returns it. The Mat stays the
// pattern's: it is valid until the next draw or close.
func (p *pattern) draw(seq uint64, t time.Time) gocv.Mat {
	p.bg.CopyTo(&p.img)
	ms := t.UnixMilli()

	// A bar sweeping left to right every 3 s, behind the band.
	bw := max(2, p.w/24)
	bx := int(ms%3000)*(p.w+bw)/3000 - bw
	gocv.Rectangle(&p.img, image.Rect(bx, 0, bx+bw, p.band.Min.Y), white, -1)
	gocv.Rectangle(&p.img, image.Rect(bx, p.band.Max.Y, bx+bw, p.h), white, -1)

	// A ball bouncing around.
	r := max(2, p.h/14)
	bx = r + triangle(ms, 2300, p.w-2*r)
	by := r + triangle(ms, 1700, p.h-2*r)
	gocv.Circle(&p.img, image.Pt(bx, by), r, red, -1)
	gocv.Circle(&p.img, image.Pt(bx, by), r, black, max(1, r/8))

	drawLabel(&p.img, t.Format("15:04:05.000"), p.clkL)
	p.text = strconv.AppendUint(append(p.text[:0], "frame "...), seq, 10)
	drawLabel(&p.img, string(p.text), p.seqL)
	return p.img
}

// drawLabel draws white text with a black outline. The outline is not
// anti-aliased: that halves the cost, and the white text over it is.
func drawLabel(img *gocv.Mat, text string, l label) {
	gocv.PutTextWithParams(img, text, l.org, patternFont, l.scale, black, l.thick+max(2, l.thick), gocv.Line8, false)
	gocv.PutTextWithParams(img, text, l.org, patternFont, l.scale, white, l.thick, gocv.LineAA, false)
}

// triangle goes from 0 to span and back every period ms.
func triangle(ms, period int64, span int) int {
	if span <= 0 {
		return 0
	}
	x := ms % period
	if x > period/2 {
		x = period - x
	}
	return int(x * 2 * int64(span) / period)
}

func (p *pattern) close() {
	p.bg.Close()
	p.img.Close()
}
