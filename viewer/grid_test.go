package viewer

import (
	"context"
	"image"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"gocv.io/x/gocv"

	"camhub/hub/hubtest"
	"camhub/internal/testenv"
	"camhub/internal/testenv/cvtest"
	"camhub/internal/turbojpeg"
	"camhub/internal/wire"
)

// newGrid subscribes a feed for cams (every camera if none) on the hub at
// url and returns a grid of it on a canvas of size.
func newGrid(t *testing.T, url string, size image.Point, cams ...string) (*Feed, *Grid) {
	t.Helper()
	feed, err := NewFeed(cams)
	if err != nil {
		t.Fatal(err)
	}
	nc := testenv.Conn(t, url)
	if err := feed.Subscribe(nc); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil { // the server has the subscriptions
		t.Fatal(err)
	}
	t.Cleanup(feed.Close)
	g := NewGrid(feed, size, testenv.Quiet())
	t.Cleanup(g.Close)
	return feed, g
}

// stats returns the grid's counts for camera id after an Update.
func stats(g *Grid, id string) Stats {
	g.Update(time.Now())
	return peek(g, id)
}

// peek is a tile's stats without an Update (which would take and decode
// what is queued).
func peek(g *Grid, id string) Stats {
	for _, s := range g.Stats() {
		if s.ID == id {
			return s
		}
	}
	return Stats{}
}

func tileOf(t *testing.T, g *Grid, id string, now time.Time) Tile {
	t.Helper()
	for _, tl := range g.Tiles(now) {
		if tl.ID == id {
			return tl
		}
	}
	t.Fatalf("no tile for %s in %+v", id, g.Tiles(now))
	return Tile{}
}

// checkPicture checks that the picture of a tile shows colour c, away from
// its label band and the white corner square, and that the letterbox bars
// beside it are black.
func checkPicture(t *testing.T, canvas gocv.Mat, tl Tile, c gocv.Scalar) {
	t.Helper()
	p := tl.Picture
	for _, at := range []image.Point{
		p.Min.Add(p.Size().Div(2)),                       // centre
		image.Pt(p.Max.X-p.Dx()/10, p.Max.Y-p.Dy()/10),   // bottom right
		image.Pt(p.Min.X+p.Dx()/10, p.Max.Y-p.Dy()/10),   // bottom left
		image.Pt(p.Max.X-p.Dx()/10, p.Min.Y+p.Dy()*3/10), // top right, under the label
	} {
		if got := pixel(canvas, at); !near(got, c) {
			t.Errorf("%s: pixel %v is %v (BGR), want about %v", tl.ID, at, got, c)
		}
	}
	// the white square is top left: the picture is the right way round
	if got := pixel(canvas, image.Pt(p.Min.X+p.Dx()/32, p.Min.Y+p.Dy()/10)); got[0] < 200 || got[1] < 200 || got[2] < 200 {
		t.Errorf("%s: no white square at the top left of the picture: %v", tl.ID, got)
	}
	// letterbox bars
	if p.Min.X > tl.Rect.Min.X+2 {
		if got := pixel(canvas, image.Pt(tl.Rect.Min.X+1, tl.Rect.Max.Y-2)); got != [3]uint8{} {
			t.Errorf("%s: left bar is %v, want black", tl.ID, got)
		}
	}
}

func TestGridShowsFrames(t *testing.T) {
	h := hubtest.Start(t, nil)
	_, g := newGrid(t, h.ClientURL(), image.Pt(1280, 720), "front", "back")
	pub := testenv.Conn(t, h.ClientURL())
	publish(t, pub, testenv.FrameMsg("front", 1, time.Now(), cvtest.JPEG(t, cvtest.Red, 640, 480), 640, 480))
	publish(t, pub, testenv.FrameMsg("back", 1, time.Now(), cvtest.JPEG(t, cvtest.Blue, 1280, 720), 1280, 720))
	testenv.Eventually(t, 10*time.Second, "both frames decoded", func() bool {
		return stats(g, "front").Decoded == 1 && stats(g, "back").Decoded == 1
	})

	canvas := gocv.NewMat()
	defer canvas.Close()
	now := time.Now()
	g.Render(&canvas, now)
	if canvas.Cols() != 1280 || canvas.Rows() != 720 || canvas.Type() != gocv.MatTypeCV8UC3 {
		t.Fatalf("canvas %dx%d type %v", canvas.Cols(), canvas.Rows(), canvas.Type())
	}
	tiles := g.Tiles(now)
	if len(tiles) != 2 || tiles[0].ID != "front" || tiles[1].ID != "back" {
		t.Fatalf("tiles %+v, want front then back", tiles)
	}
	if tiles[0].Rect.Min.X >= tiles[1].Rect.Min.X {
		t.Errorf("front %v should be left of back %v", tiles[0].Rect, tiles[1].Rect)
	}
	for _, tc := range []struct {
		tl     Tile
		c      gocv.Scalar
		aspect float64
	}{
		{tiles[0], cvtest.Red, 4.0 / 3}, {tiles[1], cvtest.Blue, 16.0 / 9},
	} {
		tl := tc.tl
		if !tl.Live || !tl.Picture.In(tl.Rect) {
			t.Fatalf("%s: live %v, picture %v in tile %v", tl.ID, tl.Live, tl.Picture, tl.Rect)
		}
		// letterboxed: as wide or as high as the tile, with the frame's shape
		if tl.Picture.Dx() != tl.Rect.Dx() && tl.Picture.Dy() != tl.Rect.Dy() {
			t.Errorf("%s: picture %v does not fill tile %v in either direction", tl.ID, tl.Picture, tl.Rect)
		}
		if a := float64(tl.Picture.Dx()) / float64(tl.Picture.Dy()); a < tc.aspect*0.99 || a > tc.aspect*1.01 {
			t.Errorf("%s: picture %v has aspect %.3f, want %.3f", tl.ID, tl.Picture, a, tc.aspect)
		}
		checkPicture(t, canvas, tl, tc.c)
	}
	// the tiles are about 636 pixels wide: the 1280x720 frame was decoded at half size
	if tiles[1].Scale != (turbojpeg.Scale{Num: 1, Denom: 2}) || tiles[0].Scale != (turbojpeg.Scale{Num: 1, Denom: 1}) {
		t.Errorf("scales: front %v, back %v; want 1/1 and 1/2", tiles[0].Scale, tiles[1].Scale)
	}

	// 4 s later without frames, both tiles say "no signal"
	later := now.Add(4 * time.Second)
	g.Update(later)
	g.Render(&canvas, later)
	for _, tl := range g.Tiles(later) {
		if tl.Live {
			t.Errorf("%s is live 4 s after its last frame", tl.ID)
		}
		if got := pixel(canvas, tl.Picture.Min.Add(tl.Picture.Size().Div(2))); near(got, cvtest.Red) || near(got, cvtest.Blue) {
			t.Errorf("%s: the old picture is still shown: %v", tl.ID, got)
		}
		if n := countColour(canvas, tl.Rect, isAlarm); n < 200 || n > tl.Rect.Dx()*tl.Rect.Dy()/10 {
			t.Errorf(`%s: %d pixels in the "no signal" colour, want the words only`, tl.ID, n)
		}
	}
}

func isAlarm(b [3]uint8) bool { return b[2] > 180 && b[1] < 140 && b[0] < 140 }

// countColour counts the pixels in r for which is holds.
func countColour(m gocv.Mat, r image.Rectangle, is func([3]uint8) bool) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if is(pixel(m, image.Pt(x, y))) {
				n++
			}
		}
	}
	return n
}

// A tile whose camera never sent a frame says "no signal" from the start.
func TestGridNoSignalNever(t *testing.T) {
	h := hubtest.Start(t, nil)
	_, g := newGrid(t, h.ClientURL(), image.Pt(640, 360), "front")
	canvas := gocv.NewMat()
	defer canvas.Close()
	now := time.Now()
	g.Update(now)
	g.Render(&canvas, now)
	tl := tileOf(t, g, "front", now)
	if tl.Live || !tl.Picture.Empty() {
		t.Fatalf("tile %+v", tl)
	}
	if n := countColour(canvas, tl.Rect, isAlarm); n < 200 {
		t.Fatalf(`%d pixels of "no signal"`, n)
	}
}

func TestDecodeReduced(t *testing.T) {
	h := hubtest.Start(t, nil)
	// four tiles of about 154x84 on a 320x180 canvas
	_, g := newGrid(t, h.ClientURL(), image.Pt(320, 180), "a", "b", "c", "d")
	pub := testenv.Conn(t, h.ClientURL())
	for _, f := range []struct {
		id   string
		w, h int
	}{{"a", 1280, 720}, {"b", 640, 360}, {"c", 320, 180}, {"d", 100, 56}} {
		publish(t, pub, testenv.FrameMsg(f.id, 1, time.Now(), cvtest.JPEG(t, cvtest.Green, f.w, f.h), f.w, f.h))
	}
	testenv.Eventually(t, 10*time.Second, "four frames decoded", func() bool {
		g.Update(time.Now())
		for _, s := range g.Stats() {
			if s.Decoded != 1 {
				return false
			}
		}
		return true
	})

	now := time.Now()
	canvas := gocv.NewMat()
	defer canvas.Close()
	g.Render(&canvas, now)
	want := map[string]int{"a": 8, "b": 4, "c": 2, "d": 1}
	for _, tl := range g.Tiles(now) {
		if tl.Scale != (turbojpeg.Scale{Num: 1, Denom: want[tl.ID]}) {
			t.Errorf("%s (%dx%d into %v): scale %v, want 1/%d", tl.ID, tl.Frame.Width, tl.Frame.Height, tl.Picture.Size(), tl.Scale, want[tl.ID])
		}
		if got := pixel(canvas, tl.Picture.Min.Add(tl.Picture.Size().Mul(3).Div(4))); !near(got, cvtest.Green) {
			t.Errorf("%s: pixel %v, want green", tl.ID, got)
		}
	}
}

// Frames that cannot be shown are counted and skipped; the grid goes on.
func TestGridSkipsBadFrames(t *testing.T) {
	h := hubtest.Start(t, nil)
	_, g := newGrid(t, h.ClientURL(), image.Pt(640, 360), "front")
	pub := testenv.Conn(t, h.ClientURL())
	redJPEG := cvtest.JPEG(t, cvtest.Red, 320, 240)
	publish(t, pub, testenv.FrameMsg("front", 1, time.Now(), redJPEG, 320, 240))
	testenv.Eventually(t, 10*time.Second, "the first frame", func() bool { return stats(g, "front").Decoded == 1 })

	badHeader := testenv.FrameMsg("front", 2, time.Now(), redJPEG, 320, 240)
	badHeader.Header.Set(wire.HeaderWidth, "-1")
	pngType := testenv.FrameMsg("front", 2, time.Now(), redJPEG, 320, 240)
	pngType.Header.Set(wire.HeaderContentType, "image/png")
	markers := append([]byte{0xFF, 0xD8}, make([]byte, 500)...)
	markers = append(markers, 0xFF, 0xD9)
	for i, m := range []*nats.Msg{
		testenv.FrameMsg("front", 2, time.Now(), []byte("hello, not a JPEG"), 320, 240),
		testenv.FrameMsg("front", 3, time.Now(), redJPEG[:len(redJPEG)/2], 320, 240),
		testenv.FrameMsg("front", 4, time.Now(), nil, 320, 240),
		testenv.FrameMsg("front", 5, time.Now(), markers, 320, 240),
		badHeader,
		pngType,
		{Subject: wire.FramesSubject("front"), Data: redJPEG}, // no headers
	} {
		publish(t, pub, m)
		testenv.Eventually(t, 10*time.Second, "the bad frame counted", func() bool { return stats(g, "front").Bad == uint64(i+1) })
		now := time.Now()
		canvas := gocv.NewMat()
		g.Render(&canvas, now)
		tl := tileOf(t, g, "front", now)
		if !tl.Live || tl.Frame.Seq != 1 {
			t.Errorf("bad frame %d: tile %+v, want the first frame still shown", i, tl)
		}
		checkPicture(t, canvas, tl, cvtest.Red)
		canvas.Close()
	}
	publish(t, pub, testenv.FrameMsg("front", 9, time.Now(), cvtest.JPEG(t, cvtest.Green, 320, 240), 320, 240))
	testenv.Eventually(t, 10*time.Second, "a good frame after the bad ones", func() bool { return stats(g, "front").Decoded == 2 })
	canvas := gocv.NewMat()
	defer canvas.Close()
	now := time.Now()
	g.Render(&canvas, now)
	tl := tileOf(t, g, "front", now)
	if tl.Frame.Seq != 9 {
		t.Fatalf("tile %+v, want frame 9", tl)
	}
	checkPicture(t, canvas, tl, cvtest.Green)
	if s := stats(g, "front"); s.Received != 9 || s.Bad != 7 {
		t.Errorf("stats %+v, want 9 received, 7 bad", s)
	}
}

// Without a camera list the grid starts with the hub's cameras, offline ones
// too, and adds a camera when it starts publishing.
func TestGridAddsCameras(t *testing.T) {
	h := hubtest.Start(t, nil)
	js, err := jetstream.New(testenv.Conn(t, h.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	old := `{"id":"old","host":"pi","state":"stopped","interval_ms":2000,"time":"2026-01-01T00:00:00Z"}`
	if _, err := js.Publish(ctx, wire.StatusSubject("old"), []byte(old)); err != nil {
		t.Fatal(err)
	}
	feed, g := newGrid(t, h.ClientURL(), image.Pt(1280, 720))
	if err := feed.Seed(ctx, js); err != nil {
		t.Fatal(err)
	}
	canvas := gocv.NewMat()
	defer canvas.Close()
	now := time.Now()
	g.Update(now)
	g.Render(&canvas, now)
	if got := feed.IDs(); !slices.Equal(got, []string{"old"}) {
		t.Fatalf("cameras %v, want [old] from the camera list", got)
	}
	if tl := tileOf(t, g, "old", now); tl.Live || tl.Rect.Dx() < 1200 {
		t.Fatalf("old: %+v, want one large no-signal tile", tl)
	}

	pub := testenv.Conn(t, h.ClientURL())
	announce(t, pub, feed, "front")
	publish(t, pub, testenv.FrameMsg("front", 1, time.Now(), cvtest.JPEG(t, cvtest.Red, 640, 480), 640, 480))
	testenv.Eventually(t, 10*time.Second, "a tile for front", func() bool { return stats(g, "front").Decoded == 1 })
	announce(t, pub, feed, "back")
	publish(t, pub, testenv.FrameMsg("back", 1, time.Now(), cvtest.JPEG(t, cvtest.Blue, 640, 480), 640, 480))
	testenv.Eventually(t, 10*time.Second, "a tile for back", func() bool { return stats(g, "back").Decoded == 1 })

	now = time.Now()
	g.Render(&canvas, now)
	if got := feed.IDs(); !slices.Equal(got, []string{"back", "front", "old"}) {
		t.Fatalf("cameras %v, want them sorted", got)
	}
	tiles := g.Tiles(now)
	want := Layout(3, image.Pt(1280, 720))
	for i, tl := range tiles {
		if tl.Rect != want[i] {
			t.Errorf("tile %s at %v, want %v", tl.ID, tl.Rect, want[i])
		}
	}
	checkPicture(t, canvas, tileOf(t, g, "back", now), cvtest.Blue)
	// front's tile moved and shrank since its frame arrived
	checkPicture(t, canvas, tileOf(t, g, "front", now), cvtest.Red)
	if tl := tileOf(t, g, "front", now); !tl.Picture.In(tl.Rect) {
		t.Errorf("front: picture %v outside its tile %v", tl.Picture, tl.Rect)
	}
	if feed.Ignored() != 0 {
		t.Errorf("%d messages ignored", feed.Ignored())
	}
}

// A fixed camera list ignores other cameras.
func TestGridFixedList(t *testing.T) {
	h := hubtest.Start(t, nil)
	feed, g := newGrid(t, h.ClientURL(), image.Pt(640, 360), "front")
	pub := testenv.Conn(t, h.ClientURL())
	publish(t, pub, testenv.FrameMsg("other", 1, time.Now(), cvtest.JPEG(t, cvtest.Red, 64, 48), 64, 48))
	publish(t, pub, testenv.FrameMsg("front", 1, time.Now(), cvtest.JPEG(t, cvtest.Red, 64, 48), 64, 48))
	testenv.Eventually(t, 10*time.Second, "front's frame", func() bool { return stats(g, "front").Decoded == 1 })
	if got := feed.IDs(); !slices.Equal(got, []string{"front"}) {
		t.Fatalf("cameras %v", got)
	}
}

func TestCheckCams(t *testing.T) {
	for _, ok := range [][]string{nil, {"front"}, {"front", "back", "Cam_2-b"}} {
		if err := CheckCams(ok); err != nil {
			t.Errorf("CheckCams(%q) = %v", ok, err)
		}
	}
	many := make([]string, MaxCameras+1)
	for i := range many {
		many[i] = "c" + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	for _, bad := range [][]string{{"front.door"}, {"front", "front"}, {""}, many} {
		if err := CheckCams(bad); err == nil {
			t.Errorf("CheckCams(%q) accepted", bad)
		}
	}
	if err := CheckCams([]string{"a b"}); err == nil || !strings.Contains(err.Error(), wire.IDRule) {
		t.Errorf("error %v does not name the id rule", err)
	}
}

// Every decode mode shows the same picture at the tile's size; only the
// scale it was decoded at differs: 1/2 for a 1280x720 frame in a 400x225
// tile, except in DecodeFull mode.
func TestDecodeModes(t *testing.T) {
	h := hubtest.Start(t, nil)
	pub := testenv.Conn(t, h.ClientURL())
	want := map[DecodeMode]turbojpeg.Scale{
		DecodeScaled: {Num: 1, Denom: 2},
		DecodeOpenCV: {Num: 1, Denom: 2},
		DecodeFull:   {Num: 1, Denom: 1},
	}
	for mode, scale := range want {
		_, g := newGrid(t, h.ClientURL(), image.Pt(400, 225), "m")
		g.SetDecodeMode(mode)
		g.Update(time.Now()) // lay out and subscribe before the frame is sent
		publish(t, pub, testenv.FrameMsg("m", uint64(mode)+1, time.Now(), cvtest.JPEG(t, cvtest.Green, 1280, 720), 1280, 720))
		testenv.Eventually(t, 10*time.Second, "a frame decoded", func() bool {
			g.Update(time.Now())
			return g.Stats()[0].Decoded == 1
		})

		now := time.Now()
		canvas := gocv.NewMat()
		g.Render(&canvas, now)
		tl := g.Tiles(now)[0]
		if tl.Scale != scale {
			t.Errorf("mode %d: decoded at %v, want %v", mode, tl.Scale, scale)
		}
		if tl.Picture.Size().X < 350 {
			t.Errorf("mode %d: picture %v", mode, tl.Picture)
		}
		if got := pixel(canvas, tl.Picture.Min.Add(tl.Picture.Size().Div(2))); !near(got, cvtest.Green) {
			t.Errorf("mode %d: pixel %v, want green", mode, got)
		}
		canvas.Close()
	}
}

// RenderChanges draws what Render draws, tile for tile, but only the tiles
// that changed: a tile whose picture and label are as drawn is left alone.
func TestRenderChanges(t *testing.T) {
	h := hubtest.Start(t, nil)
	_, g := newGrid(t, h.ClientURL(), image.Pt(640, 360), "a", "b", "c")
	pub := testenv.Conn(t, h.ClientURL())
	decoded := func(id string, n uint64) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, id+" decoded", func() bool {
			g.Update(time.Now())
			return stats(g, id).Decoded == n
		})

	}
	for i, id := range []string{"a", "b", "c"} {
		publish(t, pub, testenv.FrameMsg(id, 1, time.Now(), cvtest.JPEG(t, []gocv.Scalar{cvtest.Red, cvtest.Green, cvtest.Blue}[i], 320, 240), 320, 240))
		decoded(id, 1)
	}
	inc, ref := gocv.NewMat(), gocv.NewMat()
	defer inc.Close()
	defer ref.Close()
	same := func(what string, r image.Rectangle) {
		t.Helper()
		a, b := inc.Region(r), ref.Region(r)
		defer a.Close()
		defer b.Close()
		diff := gocv.NewMat()
		defer diff.Close()
		gocv.AbsDiff(a, b, &diff)
		grey := gocv.NewMat()
		defer grey.Close()
		gocv.CvtColor(diff, &grey, gocv.ColorBGRToGray)
		if n := gocv.CountNonZero(grey); n != 0 {
			for _, tl := range g.Tiles(time.Now()) {
				ra, rb := inc.Region(tl.Rect), ref.Region(tl.Rect)
				d := gocv.NewMat()
				gocv.AbsDiff(ra, rb, &d)
				gg := gocv.NewMat()
				gocv.CvtColor(d, &gg, gocv.ColorBGRToGray)
				t.Logf("tile %s %v: %d differ", tl.ID, tl.Rect, gocv.CountNonZero(gg))
				ra.Close()
				rb.Close()
				d.Close()
				gg.Close()
			}
			t.Fatalf("%s: %d pixels differ from a full Render", what, n)
		}
	}
	whole := image.Rect(0, 0, 640, 360)

	now := time.Now()
	g.RenderChanges(&inc, now) // first: in full
	g.Render(&ref, now)
	same("first draw", whole)

	// a new picture for b, labels due: all as a full Render
	publish(t, pub, testenv.FrameMsg("b", 2, time.Now(), cvtest.JPEG(t, cvtest.Red, 320, 240), 320, 240))
	decoded("b", 2)
	now = now.Add(labelRefresh)
	g.RenderChanges(&inc, now)
	g.Render(&ref, now)
	same("after b's new picture", whole)

	// nothing new, labels not due: no tile is drawn (a mark on a's picture stays)
	ta := tileOf(t, g, "a", now)
	mark := ta.Picture.Min.Add(image.Pt(ta.Picture.Dx()/2, ta.Picture.Dy()/2))
	dot := inc.Region(image.Rectangle{Min: mark, Max: mark.Add(image.Pt(2, 2))})
	dot.SetTo(gocv.NewScalar(255, 0, 255, 0))
	dot.Close()
	now = now.Add(10 * time.Millisecond)
	g.RenderChanges(&inc, now)
	if got := pixel(inc, mark); got != [3]uint8{255, 0, 255} {
		t.Fatalf("a was drawn again without a change: mark %v", got)
	}

	// a new picture for a: a is drawn again, as Render draws it
	publish(t, pub, testenv.FrameMsg("a", 2, time.Now(), cvtest.JPEG(t, cvtest.Green, 320, 240), 320, 240))
	decoded("a", 2)
	now = now.Add(10 * time.Millisecond)
	g.RenderChanges(&inc, now)
	g.Render(&ref, now)
	same("a after its new picture", ta.Rect)
}
