package viewer

import (
	"image"
	"math"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"gocv.io/x/gocv"

	"camhub/hub/hubtest"
	"camhub/internal/avcodec"
	"camhub/internal/testenv"
	"camhub/internal/testenv/cvtest"
	"camhub/internal/wire"
)

// noDecoderLeaks fails the test if a libavcodec object is open once the
// test's other cleanups (the grid's Close) have run.
func noDecoderLeaks(t *testing.T) {
	t.Cleanup(func() {
		if avcodec.Live() != 0 {
			t.Errorf("leak: %s", avcodec.LiveString())
		}
	})
}

// videoGrid is newGrid with the feed reading the hub's buffer.
func videoGrid(t *testing.T, url string, size image.Point, cams ...string) (*Feed, *Grid) {
	t.Helper()
	feed, err := NewFeed(cams)
	if err != nil {
		t.Fatal(err)
	}
	nc := testenv.Conn(t, url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	feed.UseBuffer(js)
	if err := feed.Subscribe(nc); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(feed.Close)
	g := NewGrid(feed, size, testenv.Quiet())
	t.Cleanup(g.Close)
	return feed, g
}

func clipTimes(n int) []time.Time {
	ts := make([]time.Time, n)
	start := time.Now().Add(-time.Duration(n) * time.Second / 15)
	for i := range ts {
		ts[i] = start.Add(time.Duration(i) * time.Second / 15)
	}
	return ts
}

// tilePixels copies a tile's picture off the canvas.
func tilePixels(canvas gocv.Mat, r image.Rectangle) []byte {
	m := canvas.Region(r)
	defer m.Close()
	c := m.Clone()
	defer c.Close()
	return append([]byte(nil), c.ToBytes()...)
}

func diff(a, b []byte) float64 {
	if len(a) != len(b) || len(a) == 0 {
		return 255
	}
	var sum int
	for i := range a {
		d := int(a[i]) - int(b[i])
		sum += max(d, -d)
	}
	return float64(sum) / float64(len(a))
}

// An H.264 tile shows a picture as soon as one access unit of its camera
// arrives, even a delta frame: it starts from the newest keyframe in the
// buffer. Its picture changes with the camera's, beside a JPEG tile.
func TestGridShowsH264(t *testing.T) {
	noDecoderLeaks(t)
	mats := openMats()
	h := hubtest.Start(t, nil)
	pub := testenv.Conn(t, h.ClientURL())
	js, err := jetstream.New(pub)
	if err != nil {
		t.Fatal(err)
	}
	const n = 30
	aus := testenv.H264Clip(t, 640, 360, n, 10) // keyframes 0, 10, 20
	ts := clipTimes(n)
	// before the grid: in the buffer only
	testenv.PublishVideo(t, js, "cam", aus[:13], ts[:13], 640, 360)

	func() {
		feed, g := videoGrid(t, h.ClientURL(), image.Pt(1280, 480), "front", "cam")
		defer feed.Close()
		defer g.Close() // before the leak check
		publish(t, pub, testenv.FrameMsg("front", 1, time.Now(), cvtest.JPEG(t, cvtest.Red, 640, 480), 640, 480))
		publish(t, pub, testenv.VideoMsg(t, "cam", 14, ts[13], aus[13], 640, 360)) // a delta frame
		testenv.Eventually(t, 10*time.Second, "the H.264 tile shows frame 14", func() bool {
			g.Update(time.Now())
			return tileOf(t, g, "cam", time.Now()).Frame.Seq == 14 && stats(g, "front").Decoded == 1
		})
		if s := stats(g, "cam"); s.Decoded != 4 || s.Bad != 0 || s.Skipped != 0 {
			t.Errorf("H.264 tile stats %+v, want 4 decoded (keyframe 11 to 14 from the buffer), none bad or skipped", s)
		}
		canvas := gocv.NewMat()
		defer canvas.Close()
		now := time.Now()
		g.Render(&canvas, now)
		front, cam := tileOf(t, g, "front", now), tileOf(t, g, "cam", now)
		checkPicture(t, canvas, front, cvtest.Red)
		if !cam.Live || cam.Frame.Width != 640 || cam.Frame.Height != 360 || math.Abs(float64(cam.Picture.Dx())/float64(cam.Picture.Dy())-16.0/9) > 0.02 {
			t.Fatalf("H.264 tile %+v, want a live 16:9 picture of 640x360", cam)
		}
		before := tilePixels(canvas, cam.Picture)

		for i := 14; i < n; i++ {
			publish(t, pub, testenv.VideoMsg(t, "cam", uint64(i+1), ts[i], aus[i], 640, 360))
		}
		testenv.Eventually(t, 10*time.Second, "the H.264 tile shows frame 30", func() bool {
			g.Update(time.Now())
			return tileOf(t, g, "cam", time.Now()).Frame.Seq == n
		})
		g.Render(&canvas, time.Now())
		if d := diff(before, tilePixels(canvas, cam.Picture)); d < 2 {
			t.Errorf("the H.264 tile's picture barely changed between frames 14 and 30: mean difference %.2f", d)
		}
		if s := stats(g, "cam"); s.Bad != 0 {
			t.Errorf("H.264 tile stats %+v, want none bad", s)
		}
	}()
	if openMats() != mats {
		t.Errorf("%d Mats open after the grid closed, %d before", openMats(), mats)
	}
}

// Garbage on a camera's video subjects is counted and skipped: messages
// without camhub's headers by the feed, access units the decoder rejects
// by the tile, which goes on with the next keyframe.
func TestGridSkipsBadVideo(t *testing.T) {
	noDecoderLeaks(t)
	h := hubtest.Start(t, nil)
	pub := testenv.Conn(t, h.ClientURL())
	feed, g := videoGrid(t, h.ClientURL(), image.Pt(640, 480))
	aus := testenv.H264Clip(t, 320, 240, 12, 10)
	ts := clipTimes(12)

	announce(t, pub, feed, "x")
	publish(t, pub, &nats.Msg{Subject: wire.VideoSubject("x", true), Data: []byte("garbage")})
	publish(t, pub, &nats.Msg{Subject: wire.VideoSubject("x", false), Data: []byte("garbage"), Header: nats.Header{}})
	testenv.Eventually(t, 10*time.Second, "two bad messages counted", func() bool { return feed.Bad() == 2 })
	// camhub's headers, payloads that are not H.264
	bad := testenv.VideoMsg(t, "x", 1, ts[0], aus[0], 320, 240)
	bad.Data = []byte("\x00\x00\x00\x01\x65 not a slice at all, just bytes")
	publish(t, pub, bad)
	testenv.Eventually(t, 10*time.Second, "a bad keyframe counted", func() bool { return stats(g, "x").Bad == 1 })
	for i := range aus {
		publish(t, pub, testenv.VideoMsg(t, "x", uint64(i+2), ts[i], aus[i], 320, 240))
	}
	testenv.Eventually(t, 10*time.Second, "the tile decodes the good access units after the garbage", func() bool {
		g.Update(time.Now())
		return tileOf(t, g, "x", time.Now()).Frame.Seq == 13
	})
	// a keyframe supersedes the access units before it not yet decoded
	if s := stats(g, "x"); s.Decoded+s.Skipped != 12 || s.Decoded < 2 || s.Bad != 1 {
		t.Errorf("stats %+v, want 12 decoded or skipped (at least the newest GOP's 2 decoded) and 1 bad", s)
	}
}

// A grid that falls behind an H.264 camera skips to its next keyframe and
// counts what it skipped: the queue never holds more than its limit.
func TestGridSkipsToKeyframe(t *testing.T) {
	noDecoderLeaks(t)
	h := hubtest.Start(t, nil)
	pub := testenv.Conn(t, h.ClientURL())
	_, g := videoGrid(t, h.ClientURL(), image.Pt(640, 480), "x")
	const gop = maxQueuedAUs + 10
	aus := testenv.H264Clip(t, 160, 120, gop+6, gop) // keyframes 0 and gop
	ts := clipTimes(len(aus))
	g.Update(time.Now()) // the tile, before anything arrives
	for i := range aus { // no Update meanwhile: the grid is behind
		publish(t, pub, testenv.VideoMsg(t, "x", uint64(i+1), ts[i], aus[i], 160, 120))
	}
	testenv.Eventually(t, 10*time.Second, "every access unit received", func() bool {
		return peek(g, "x").Received == uint64(len(aus)) // no Update: it would decode
	})
	s := stats(g, "x")
	if s.Skipped != gop || s.Decoded != 6 || tileOf(t, g, "x", time.Now()).Frame.Seq != uint64(len(aus)) {
		t.Errorf("stats %+v, want %d skipped and the 6 from the second keyframe decoded, showing the newest", s, gop)
	}
}

// A rewind plays an H.264 camera from the keyframe at or before the time
// asked for, showing nothing captured before it, and carries on into live.
func TestRewindH264(t *testing.T) {
	noDecoderLeaks(t)
	h := hubtest.Start(t, nil)
	pub := testenv.Conn(t, h.ClientURL())
	js, err := jetstream.New(pub)
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	aus := testenv.H264Clip(t, 320, 240, n, 10) // keyframes 1, 11, 21, 31 (Frame-Seq)
	ts := clipTimes(n)
	testenv.PublishVideo(t, js, "cam", aus[:30], ts[:30], 320, 240)

	feed, err := NewFeed([]string{"cam"})
	if err != nil {
		t.Fatal(err)
	}
	nc := testenv.Conn(t, h.ClientURL())
	rjs, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	feed.UseBuffer(rjs)
	// just after frame 15, mid-GOP: frames 11 to 15 are decoded, not shown
	if _, err := feed.Rewind(rjs, ts[14].Add(time.Millisecond), 1); err != nil {
		t.Fatal(err)
	}
	if err := feed.Subscribe(nc); err != nil {
		t.Fatal(err)
	}
	defer feed.Close()
	g := NewGrid(feed, image.Pt(640, 480), testenv.Quiet())
	defer g.Close()

	var shown []uint64
	seen := func() uint64 {
		g.Update(time.Now())
		seq := tileOf(t, g, "cam", time.Now()).Frame.Seq
		if seq != 0 && (len(shown) == 0 || shown[len(shown)-1] != seq) {
			shown = append(shown, seq)
		}
		return seq
	}
	testenv.Eventually(t, 10*time.Second, "the rewind reaches frame 30", func() bool { return seen() == 30 })
	if shown[0] < 16 {
		t.Errorf("the rewind showed frame %d, captured before the time asked for (frame 16): %v", shown[0], shown)
	}
	// on into live: the camera's next access units, stored as an agent's are
	for i := 30; i < n; i++ {
		if err := pub.PublishMsg(testenv.VideoMsg(t, "cam", uint64(i+1), time.Now(), aus[i], 320, 240)); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, "the rewind carries on live to frame 40", func() bool { return seen() == n })
	if s := stats(g, "cam"); s.Bad != 0 {
		t.Errorf("stats %+v, want none bad", s)
	}
}
