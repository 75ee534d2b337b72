package viewer

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"log/slog"
	"strings"
	"time"

	"gocv.io/x/gocv"

	"camhub/internal/camlist"
	"camhub/internal/humantime"
	"camhub/internal/turbojpeg"
	"camhub/internal/wire"
)

// fpsWindow is how long frames are counted for a tile's fps.
const fpsWindow = time.Second

// Colours of the grid.
var (
	background = gocv.NewScalar(40, 40, 40, 0) // BGR, around the tiles
	tileColour = gocv.NewScalar(0, 0, 0, 0)    // letterbox bars
	textColour = color.RGBA{255, 255, 255, 255}
	alarm      = color.RGBA{255, 90, 90, 255}
	dimText    = color.RGBA{200, 200, 200, 255}
	replayText = color.RGBA{255, 191, 0, 255} // amber: the label of a tile behind live
)

// errNotJPEG is returned for a payload that does not look like a JPEG.
var errNotJPEG = errors.New("payload is not a complete JPEG")

// Grid draws the newest frame of every camera of a Feed onto a canvas, in
// tiles laid out by Layout. It is used from one goroutine: Update takes the
// newest frames from the feed and decodes those not yet shown, Render
// draws. Close releases its images.
type Grid struct {
	feed *Feed
	log  *slog.Logger
	size image.Point
	dec  *turbojpeg.Decoder // nil if it could not be made: OpenCV decodes
	mode DecodeMode

	gen   uint64 // the feed's generation the tiles were laid out for
	tiles []*tile

	// what the canvas last drawn holds, for RenderChanges
	drawn       bool
	drawnGen    uint64
	drawnNotice string
	byID        map[string]*tile
	laid        bool
	notice      string
}

// tile is one camera's place on the grid.
type tile struct {
	slot *slot
	rect image.Rectangle // on the canvas

	raw     gocv.Mat        // the newest frame as decoded, before fitting; reused
	pic     gocv.Mat        // the newest good frame, at its shown size
	picRect image.Rectangle // where pic goes on the canvas
	frame   wire.Frame      // headers of the frame in pic
	scale   turbojpeg.Scale // the scale it was decoded at
	good    time.Time       // when the frame in pic was received
	behind  bool            // the frame in pic was replayed behind live
	shown   *delivery       // the newest delivery looked at
	// drawnSig describes what the tile showed when last drawn, labelAt
	// when its label was
	drawnSig string
	labelAt  time.Time

	decoded, bad uint64
	warned       bool

	fps      float64
	measured bool // fps has been measured over a whole window
	fpsAt    time.Time
	fpsN     uint64
}

// NewGrid returns a grid of the cameras of feed for a canvas of size.
func NewGrid(feed *Feed, size image.Point, log *slog.Logger) *Grid {
	g := &Grid{feed: feed, log: log, size: size, byID: make(map[string]*tile)}
	dec, err := turbojpeg.NewDecoder(true)
	if err != nil {
		log.Warn("decoding with OpenCV", "error", err)
	} else {
		g.dec = dec
	}
	return g
}

// SetNotice sets a line drawn across the bottom of the canvas, such as
// "waiting for the hub"; empty: none.
func (g *Grid) SetNotice(s string) { g.notice = s }

// Size is the canvas size the grid draws.
func (g *Grid) Size() image.Point { return g.size }

// Close releases the grid's images. The grid must not be used afterwards.
func (g *Grid) Close() {
	for _, t := range g.byID {
		t.pic.Close()
		t.raw.Close()
	}
	g.byID, g.tiles = nil, nil
	if g.dec != nil {
		g.dec.Close()
		g.dec = nil
	}
}

// relayout lays the tiles out again if cameras were added to the feed.
func (g *Grid) relayout() {
	order, gen := g.feed.cameras()
	if g.laid && gen == g.gen {
		return
	}
	g.laid, g.gen = true, gen
	rects := Layout(len(order), g.size)
	g.tiles = g.tiles[:0]
	for i, s := range order {
		t := g.byID[s.id]
		if t == nil {
			t = &tile{slot: s, pic: gocv.NewMat(), raw: gocv.NewMat()}
			g.byID[s.id] = t
			if g.feed.fixed {
				g.log.Debug("camera tile", "camera", s.id)
			} else {
				g.log.Info("camera added", "camera", s.id, "cameras", len(order))
			}
		}
		if rects[i] != t.rect {
			t.rect = rects[i]
			t.resize()
		}
		g.tiles = append(g.tiles, t)
	}
}

// resize fits the picture a tile holds to its new rectangle; the next frame
// is decoded at the new size.
func (t *tile) resize() {
	if t.pic.Empty() {
		return
	}
	size := Fit(image.Pt(t.pic.Cols(), t.pic.Rows()), t.rect.Size())
	if size.X == 0 {
		t.pic.Close()
		t.pic = gocv.NewMat()
		return
	}
	gocv.Resize(t.pic, &t.pic, size, 0, 0, interpolation(image.Pt(t.pic.Cols(), t.pic.Rows()), size))
	t.picRect = Centre(size, t.rect)
}

// Update takes the newest frame of every camera from the feed and decodes
// it if the tile has not shown it yet. It reports whether any tile changed.
// A frame with bad headers or a payload that is not a JPEG is counted and
// skipped: the tile keeps its picture.
func (g *Grid) Update(now time.Time) bool {
	gen := g.gen
	g.relayout()
	changed := gen != g.gen
	for _, t := range g.tiles {
		if d := t.slot.frame.Load(); d != nil && d != t.shown {
			t.shown = d
			if err := g.decode(t, d); err != nil {
				t.bad++
				if !t.warned {
					t.warned = true
					g.log.Warn("skipping a bad frame; further ones are only counted", "camera", t.slot.id, "error", err)
				}
			} else {
				changed = true
			}
		}
		n := t.slot.received.Load()
		if t.fpsAt.IsZero() {
			t.fpsAt, t.fpsN = now, n
		} else if el := now.Sub(t.fpsAt); el >= fpsWindow {
			fps := float64(n-t.fpsN) / el.Seconds()
			changed = changed || fps != t.fps
			t.fps, t.measured, t.fpsAt, t.fpsN = fps, true, now, n
		}
	}
	return changed
}

// decode decodes a frame into the tile's picture, at the size it is shown.
func (g *Grid) decode(t *tile, d *delivery) error {
	f, data, err := d.parts()
	if err != nil {
		return err
	}
	if !wire.LooksLikeJPEG(data) {
		return errNotJPEG
	}
	box := t.rect.Size()
	shown := Fit(image.Pt(f.Width, f.Height), box)
	if shown.X == 0 {
		return nil // no room on this canvas
	}
	scale, err := g.decodeRaw(t, data, image.Pt(f.Width, f.Height), shown)
	if err != nil {
		return err
	}
	// the decoded picture's own shape rules, should the headers be wrong
	got := image.Pt(t.raw.Cols(), t.raw.Rows())
	shown = Fit(got, box)
	if got == shown {
		t.raw, t.pic = t.pic, t.raw // decoded at the shown size: nothing to scale
	} else {
		gocv.Resize(t.raw, &t.pic, shown, 0, 0, interpolation(got, shown))
	}
	t.picRect = Centre(shown, t.rect)
	t.frame, t.scale, t.good, t.behind = f, scale, d.at, d.behind
	t.decoded++
	return nil
}

// decodeRaw decodes a JPEG into t.raw at the smallest size that is at
// least shown: with TurboJPEG at any of its scales (1/8 to 8/8), or with
// OpenCV at 1/1, 1/2, 1/4 or 1/8 (or at full size in DecodeFull mode).
func (g *Grid) decodeRaw(t *tile, data []byte, frame, shown image.Point) (turbojpeg.Scale, error) {
	if g.dec != nil && g.mode == DecodeScaled {
		return g.dec.Decode(data, shown, &t.raw)
	}
	flag, k := DecodeFlag(frame, shown)
	if g.mode == DecodeFull {
		flag, k = gocv.IMReadColor, 1
	}
	m, err := gocv.IMDecode(data, flag)
	if err != nil {
		return turbojpeg.Scale{}, err
	}
	if m.Empty() {
		m.Close()
		return turbojpeg.Scale{}, errNotJPEG
	}
	t.raw.Close()
	t.raw = m
	return turbojpeg.Scale{Num: 1, Denom: k}, nil
}

// DecodeMode is how a Grid decodes frames.
type DecodeMode int

const (
	// DecodeScaled decodes with TurboJPEG at the scale nearest above the
	// tile's size: the default, and the cheapest.
	DecodeScaled DecodeMode = iota
	// DecodeOpenCV decodes with OpenCV's imdecode at 1/1, 1/2, 1/4 or 1/8.
	DecodeOpenCV
	// DecodeFull decodes with OpenCV at full size and then shrinks, as a
	// viewer without scaled decoding would: the benchmarks' reference.
	DecodeFull
)

// SetDecodeMode sets how the grid decodes frames from now on.
func (g *Grid) SetDecodeMode(m DecodeMode) { g.mode = m }

// interpolation is how a picture is scaled from one size to another:
// averaging areas when it shrinks to half or less (linear would alias),
// linear otherwise. After a scaled decode the last step is a small one
// (240x180 to 235x176, say), where area averaging costs several times
// linear's time for no visible gain.
func interpolation(from, to image.Point) gocv.InterpolationFlags {
	if to.X*2 <= from.X {
		return gocv.InterpolationArea
	}
	return gocv.InterpolationLinear
}

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

// live reports whether the tile shows a picture at now.
func (t *tile) live(now time.Time) bool {
	return !t.pic.Empty() && !t.good.IsZero() && now.Sub(t.good) < camlist.NoSignalAfter
}

// lastSeen is when a frame of the camera was last received, or when the hub
// last heard of it before the viewer started; zero if never.
func (t *tile) lastSeen() time.Time {
	if !t.good.IsZero() {
		return t.good
	}
	if d := t.shown; d != nil {
		return d.at // only bad frames so far
	}
	if ns := t.slot.seen.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
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

// Tile describes one tile as the grid last laid it out and updated it.
type Tile struct {
	ID      string
	Rect    image.Rectangle // the tile on the canvas
	Picture image.Rectangle // the picture inside it; empty before the first frame
	Frame   wire.Frame      // headers of the frame shown
	// Scale is the scale the frame was decoded at, before it was fitted
	// to the tile: 1/1 (full size) to 1/8.
	Scale turbojpeg.Scale
	Live  bool // the picture is shown (at now)
	// Replay: the frame was replayed from the buffer while playback was
	// behind live; Behind is then how far (now minus its capture time).
	Replay bool
	Behind time.Duration
	// Info is what the label says after the camera id when the picture
	// is shown, if there is room: "15.0 fps  age 35ms", "REPLAY -12.3s".
	Info string
}

// Tiles returns the tiles as of the last Update or Render, judged at now.
func (g *Grid) Tiles(now time.Time) []Tile {
	tiles := make([]Tile, len(g.tiles))
	for i, t := range g.tiles {
		tiles[i] = Tile{ID: t.slot.id, Rect: t.rect, Frame: t.frame, Scale: t.scale, Live: t.live(now), Replay: t.behind}
		if !t.pic.Empty() {
			tiles[i].Picture = t.picRect
			tiles[i].Info = t.info(now)[0]
		}
		if t.behind {
			tiles[i].Behind = now.Sub(t.frame.Time)
		}
	}
	return tiles
}

// Stats counts one camera's frames.
type Stats struct {
	ID       string
	Received uint64  // frame messages received
	Decoded  uint64  // frames decoded and shown
	Bad      uint64  // frames looked at and skipped: bad headers or not a JPEG
	FPS      float64 // frames received per second, recently
}

// Stats returns the counts of every camera, in display order.
func (g *Grid) Stats() []Stats {
	stats := make([]Stats, len(g.tiles))
	for i, t := range g.tiles {
		stats[i] = Stats{ID: t.slot.id, Received: t.slot.received.Load(), Decoded: t.decoded, Bad: t.bad, FPS: t.fps}
	}
	return stats
}
