package viewer

import (
	"fmt"
	"image"
	"image/color"
	"strings"
	"time"

	"gocv.io/x/gocv"

	"camhub/internal/humantime"
	"camhub/internal/wire"
)

// This file draws the grid: tiles, labels and text.

// Colours of the grid.
var (
	background = gocv.NewScalar(40, 40, 40, 0) // BGR, around the tiles
	tileColour = gocv.NewScalar(0, 0, 0, 0)    // letterbox bars
	textColour = color.RGBA{255, 255, 255, 255}
	alarm      = color.RGBA{255, 90, 90, 255}
	dimText    = color.RGBA{200, 200, 200, 255}
	replayText = color.RGBA{255, 191, 0, 255} // amber: the label of a tile behind live
)

// Render draws the grid on canvas as it is at now: each camera's newest
// picture with its id, fps and age, or "no signal" for a camera that sent
// nothing that could be shown for camlist.NoSignalAfter. canvas is made the grid's
// size (8-bit BGR) if it is not.
func (g *Grid) Render(canvas *gocv.Mat, now time.Time) { g.render(canvas, now, true) }

// RenderChanges is Render for a canvas that holds the grid as this grid
// last drew it there (the same Mat, untouched since): only the tiles whose
// picture, label or state changed are drawn again. The window loop draws
// this way; a new layout, a notice or a canvas of another size is drawn
// in full.
func (g *Grid) RenderChanges(canvas *gocv.Mat, now time.Time) { g.render(canvas, now, false) }

func (g *Grid) render(canvas *gocv.Mat, now time.Time, full bool) {
	g.relayout()
	if canvas.Rows() != g.size.Y || canvas.Cols() != g.size.X || canvas.Type() != gocv.MatTypeCV8UC3 {
		canvas.Close()
		*canvas = gocv.NewMatWithSize(g.size.Y, g.size.X, gocv.MatTypeCV8UC3)
		full = true
	}
	if !g.drawn || g.gen != g.drawnGen || g.notice != "" || g.drawnNotice != "" || len(g.tiles) == 0 {
		full = true
	}
	g.drawn, g.drawnGen, g.drawnNotice = true, g.gen, g.notice
	if full {
		canvas.SetTo(background)
	}
	var sig strings.Builder
	for _, t := range g.tiles {
		if t.rect.Dx() < 1 || t.rect.Dy() < 1 {
			continue
		}
		// what the tile shows, in words: drawn again only if it changed
		live := t.live(now)
		var infos []string
		var lines []textLine
		sig.Reset()
		// (a live tile's label, with the frame's age, is refreshed every
		// labelRefresh, or with its next picture)
		if live {
			fmt.Fprintf(&sig, "live %d %v %v %s", t.decoded, t.picRect, t.behind, t.name())
		} else {
			lines = t.noSignalLines(now)
			fmt.Fprintf(&sig, "none %s %v", t.name(), lines)
		}
		if !full && sig.String() == t.drawnSig && (!live || now.Sub(t.labelAt) < labelRefresh) {
			continue
		}
		t.drawnSig, t.labelAt = sig.String(), now
		if live {
			infos = t.info(now)
		}
		// the tile's own pixels exactly (gocv.Rectangle would also paint
		// an antialiased edge around it, darker at each redraw)
		tileArea := canvas.Region(t.rect)
		tileArea.SetTo(tileColour)
		tileArea.Close()
		if live {
			region := canvas.Region(t.picRect)
			t.pic.CopyTo(&region)
			region.Close()
			c := textColour
			if t.behind {
				c = replayText
			}
			label(canvas, t.rect, t.name(), c, infos...)
			continue
		}
		label(canvas, t.rect, t.name(), textColour)
		centred(canvas, t.rect, lines)
	}
	whole := image.Rectangle{Max: g.size}
	if len(g.tiles) == 0 {
		centred(canvas, whole, []textLine{
			{"no cameras yet", textColour, 2},
			{"waiting for cameras to report to the hub", dimText, 1},
		})
	}
	if g.notice != "" {
		scale := fitScale(g.notice, fontScale(whole), g.size.X-2*pad)
		size := gocv.GetTextSize(g.notice, font, scale, 1)
		band := image.Rect(0, g.size.Y-size.Y-2*pad-2, g.size.X, g.size.Y)
		gocv.Rectangle(canvas, band, color.RGBA{90, 20, 20, 255}, -1)
		gocv.PutTextWithParams(canvas, g.notice, image.Pt(max(pad, (g.size.X-size.X)/2), g.size.Y-pad-1), font, scale, textColour, 1, gocv.LineAA, false)
	}
}

// info is what the label of a tile showing a picture says after the camera
// id, longest first: the frame rate and the age of the frame, or how far
// behind live a replayed frame is ("REPLAY -12.3s"); without the rate when
// there is no room. The age is judged at now, so it grows between frames.
func (t *tile) info(now time.Time) []string {
	age := now.Sub(t.frame.Time)
	short := "age " + formatAge(age)
	if t.behind {
		short = "REPLAY -" + formatAge(age)
	}
	if !t.measured {
		return []string{short}
	}
	return []string{fmt.Sprintf("%.1f fps  %s", t.fps, short), short}
}

// name is what the label calls the camera: its id, and its site if its
// agent says ("gate @ farm").
func (t *tile) name() string {
	if r := t.slot.status.Load(); r != nil && r.status != nil && r.status.Site != "" {
		return t.slot.id + " @ " + r.status.Site
	}
	return t.slot.id
}

// textLine is a line of text to draw, its size relative to the labels'.
type textLine struct {
	text  string
	c     color.RGBA
	scale float64
}

// noSignalLines are the lines of the tile of a camera that sent nothing to
// show lately.
func (t *tile) noSignalLines(now time.Time) []textLine {
	seen := "last seen never"
	if at := t.lastSeen(); !at.IsZero() {
		seen = "last seen " + humantime.Clock(at, now)
	}
	lines := []textLine{
		{"no signal", alarm, 2},
		{seen, textColour, 1},
	}
	if r := t.slot.status.Load(); r != nil && r.status.State != wire.StateStreaming {
		state := "camera " + r.status.State
		if r.status.Error != "" {
			state += ": " + r.status.Error
		}
		lines = append(lines, textLine{state, dimText, 1})
	}
	return lines
}

// centred draws lines of text centred in r, one under the other.
func centred(canvas *gocv.Mat, r image.Rectangle, lines []textLine) {
	base := fontScale(r)
	var total int
	sizes := make([]image.Point, len(lines))
	scales := make([]float64, len(lines))
	for i, l := range lines {
		scales[i] = fitScale(l.text, base*l.scale, r.Dx()-2*pad)
		sizes[i] = gocv.GetTextSize(l.text, font, scales[i], thickness(scales[i]))
		total += sizes[i].Y + 3*pad
	}
	// drawn into r's region, so that no text spills out of it
	in := canvas.Region(r)
	defer in.Close()
	y := (r.Dy() - total) / 2
	for i, l := range lines {
		y += sizes[i].Y + 3*pad
		if y > r.Dy() {
			break
		}
		x := max(pad, (r.Dx()-sizes[i].X)/2)
		gocv.PutTextWithParams(&in, l.text, image.Pt(x, y), font, scales[i], l.c, thickness(scales[i]), gocv.LineAA, false)
	}
}

// Text drawing.
const (
	font = gocv.FontHersheySimplex
	pad  = 5
)

// fontScale is the label size for a tile: larger on large tiles.
func fontScale(r image.Rectangle) float64 {
	return min(0.65, max(0.4, float64(r.Dy())/600))
}

func thickness(scale float64) int {
	if scale >= 1.0 {
		return 2
	}
	return 1
}

// fitScale shrinks scale until text fits into width, down to a minimum.
func fitScale(text string, scale float64, width int) float64 {
	for scale > 0.3 && gocv.GetTextSize(text, font, scale, thickness(scale)).X > width {
		scale *= 0.9
	}
	return scale
}

// label draws a darkened band across the top of tile r holding the camera
// id followed by the first of infos that fits (none if none does), in
// colour c.
func label(canvas *gocv.Mat, r image.Rectangle, id string, c color.RGBA, infos ...string) {
	scale := fontScale(r)
	width := r.Dx() - 2*pad
	text := id // keep the id readable rather than everything tiny
	for _, info := range infos {
		if t := id + "  " + info; gocv.GetTextSize(t, font, scale, 1).X <= width {
			text = t
			break
		}
	}
	scale = fitScale(text, scale, width)
	size := gocv.GetTextSize(text, font, scale, 1)
	// drawn into r's region, so that no text spills out of the tile
	in := canvas.Region(r)
	defer in.Close()
	band := image.Rect(0, 0, r.Dx(), min(r.Dy(), size.Y+2*pad+2))
	region := in.Region(band)
	region.DivideUChar(4)
	region.Close()
	gocv.PutTextWithParams(&in, text, image.Pt(pad, band.Max.Y-pad-1), font, scale, c, 1, gocv.LineAA, false)
}

// formatAge writes how old a frame is: "35ms", "1.2s", "3m05s".
func formatAge(d time.Duration) string {
	switch a := d.Abs(); {
	case a < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case a < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case a < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return d.Round(time.Minute).String()
	}
}
