//go:build matprofile

package viewer

import (
	"image"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"camhub/hub/hubtest"
	"camhub/internal/testenv"
	"camhub/internal/testenv/cvtest"
)

// Rendering a grid many times, through new frames, bad frames, new cameras,
// "no signal" and relayouts, leaves no Mat behind once the grid is closed.
// Run with: go test -tags matprofile ./viewer/
func TestNoMatLeaks(t *testing.T) {
	h := hubtest.Start(t, nil)
	pub := testenv.Conn(t, h.ClientURL())
	// encode the test frames before counting
	frames := map[string][]byte{
		"front": cvtest.JPEG(t, cvtest.Red, 640, 480),
		"back":  cvtest.JPEG(t, cvtest.Blue, 1280, 720),
		"side":  cvtest.JPEG(t, cvtest.Green, 320, 240),
	}
	check := cvtest.MatLeaks(t)

	feed, err := NewFeed(nil)
	if err != nil {
		t.Fatal(err)
	}
	nc := testenv.Conn(t, h.ClientURL())
	if err := feed.Subscribe(nc); err != nil {
		t.Fatal(err)
	}
	defer feed.Close()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	announce(t, pub, feed, "front", "back", "side")
	g := NewGrid(feed, image.Pt(960, 540), testenv.Quiet())
	canvas := gocv.NewMat()
	for i := 1; i <= 60; i++ {
		for id, data := range frames {
			if i%10 == 0 {
				data = data[:len(data)/2] // a bad frame now and then
			}
			publish(t, pub, testenv.FrameMsg(id, uint64(i), time.Now(), data, map[string]int{"front": 640, "back": 1280, "side": 320}[id],
				map[string]int{"front": 480, "back": 720, "side": 240}[id]))
		}
		if i == 30 {
			announce(t, pub, feed, "porch")
			publish(t, pub, testenv.FrameMsg("porch", 1, time.Now(), frames["side"], 320, 240)) // a new camera: relayout
		}
		want := uint64(i)
		testenv.Eventually(t, 10*time.Second, "the frames", func() bool {
			g.Update(time.Now())
			for _, s := range g.Stats() {
				if s.ID != "porch" && s.Received < want {
					return false
				}
			}
			return len(g.Stats()) >= 3
		})

		now := time.Now()
		if i%7 == 0 {
			now = now.Add(5 * time.Second) // no signal
		}
		g.Render(&canvas, now)
	}
	if n := len(g.Stats()); n != 4 {
		t.Fatalf("%d cameras, want 4", n)
	}
	canvas.Close()
	g.Close()
	check("after the grid closed")
}
