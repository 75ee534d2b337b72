package viewer

import (
	"errors"
	"image"
	"log/slog"
	"time"

	"gocv.io/x/gocv"

	"camhub/internal/avcodec"
	"camhub/internal/camlist"
	"camhub/internal/turbojpeg"
	"camhub/internal/wire"
)

// fpsWindow is how long frames are counted for a tile's fps.
const fpsWindow = time.Second

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

	pin  string // the tier pinned (tier.go); "" or TierAuto: by tile size
	solo string // the camera shown alone; "": every camera
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
	lo      bool            // pic is a small-tier frame
	good    time.Time       // when the frame in pic was received
	behind  bool            // the frame in pic was replayed behind live
	shown   *delivery       // the newest delivery looked at
	// drawnSig describes what the tile showed when last drawn, labelAt
	// when its label was
	drawnSig string
	labelAt  time.Time

	decoded, bad uint64
	warned       bool

	// H.264: the decoders of the camera's main and small tiers (nil for
	// JPEG, or a tier not read), access units skipped to stay near live,
	// and whether pic came from video
	vdec, loDec *avcodec.Decoder
	skipped     uint64
	video       bool

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
		t.closeDecoder(false)
		t.closeDecoder(true)
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
	if g.solo != "" {
		for _, s := range order {
			if s.id == g.solo {
				order = []*slot{s}
				break
			}
		}
	}
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
		g.chooseTier(t)
		if d := t.slot.frame.Load(); d != nil && d != t.shown && t.slot.shows(d.lo) {
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
		shown, err := g.decodeVideo(t)
		changed = changed || shown
		if err != nil && !t.warned {
			t.warned = true
			g.log.Warn("skipping a bad access unit; further ones are only counted", "camera", t.slot.id, "error", err)
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
	t.frame, t.scale, t.good, t.behind, t.video, t.lo = f, scale, d.at, d.behind, false, d.lo
	t.decoded++
	if t.slot.lo.Load() == d.lo {
		t.slot.arrived.Store(true)
	}
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
	// Tier is the tier of the picture shown, TierMain or TierLo; Reads
	// the tier the tile reads now (they differ during a switch).
	Tier, Reads string
}

// Tiles returns the tiles as of the last Update or Render, judged at now.
func (g *Grid) Tiles(now time.Time) []Tile {
	tiles := make([]Tile, len(g.tiles))
	for i, t := range g.tiles {
		tiles[i] = Tile{ID: t.slot.id, Rect: t.rect, Frame: t.frame, Scale: t.scale, Live: t.live(now), Replay: t.behind,
			Tier: TierMain, Reads: TierMain}
		if t.lo {
			tiles[i].Tier = TierLo
		}
		if t.slot.lo.Load() {
			tiles[i].Reads = TierLo
		}
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
	Received uint64 // frame messages received
	Decoded  uint64 // frames decoded and shown
	Bad      uint64 // frames looked at and skipped: bad headers or not a JPEG, or access units the decoder rejected
	// Skipped counts an H.264 camera's access units left undecoded to
	// stay near live: the grid fell behind and went on at the next
	// keyframe.
	Skipped uint64
	FPS     float64 // frames received per second, recently
}

// Stats returns the counts of every camera, in display order.
func (g *Grid) Stats() []Stats {
	stats := make([]Stats, len(g.tiles))
	for i, t := range g.tiles {
		stats[i] = Stats{ID: t.slot.id, Received: t.slot.received.Load(), Decoded: t.decoded, Bad: t.bad, Skipped: t.skipped, FPS: t.fps}
	}
	return stats
}
