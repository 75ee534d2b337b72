package test

import (
	"fmt"
	"image"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"gocv.io/x/gocv"

	"camhub/internal/testenv"
	"camhub/internal/testenv/cvtest"
	"camhub/internal/wire"
)

// isRed reports whether the middle of region r of m is red.
func isRed(m gocv.Mat, r image.Rectangle) bool {
	c := image.Pt((r.Min.X+r.Max.X)/2, (r.Min.Y+r.Max.Y)/2)
	patch := m.Region(image.Rect(c.X-20, c.Y-20, c.X+20, c.Y+20))
	defer patch.Close()
	mean := patch.Mean()
	return mean.Val3 > 200 && mean.Val2 < 60 && mean.Val1 < 60
}

// A foreign NATS client publishes garbage on a camera's subjects: frames
// that are not JPEGs, cut short, empty, or with wrong or missing headers,
// and status reports that are not. The grid viewer and the web viewer
// count and skip each, keep running and keep showing a good camera; a good
// frame on the same camera after the garbage is shown.
func TestGarbageInput(t *testing.T) {
	hub := start(t, nil, "hub", "--listen", "127.0.0.1:0", "--monitor", "")
	natsURL := hub.waitLog(`msg="NATS server ready" url=(nats://[0-9.:]+)`)
	start(t, nil, "agent", "--id", "front", "--source", "testpattern", "--nats", natsURL, "--fps", "10", "--size", "320x240")
	web := start(t, nil, "viewer", "--http", "127.0.0.1:0", "--nats", natsURL)
	base := web.waitLog(`msg="web viewer listening" url=(http://[0-9.:]+)`)
	display := testenv.Xvfb(t)
	grid := start(t, []string{"DISPLAY=" + display}, "viewer", "--cams", "front,x", "--nats", natsURL, "--window-size", "960x360")
	testenv.Eventually(t, 30*time.Second, "the web viewer receiving front", func() bool { return webFrames(base, "front") > 0 })
	win := windowRect(t, display)
	testenv.Eventually(t, 30*time.Second, "the grid window at its size", func() bool {
		win = windowRect(t, display)
		return win.Dx() >= 480 && win.Dy() >= 180
	})

	left := image.Rect(win.Min.X, win.Min.Y, win.Min.X+win.Dx()/2, win.Max.Y)
	right := image.Rect(win.Min.X+win.Dx()/2, win.Min.Y, win.Max.X, win.Max.Y)

	// the foreign client
	nc := testenv.Conn(t, natsURL)
	publish := func(m *nats.Msg) {
		t.Helper()
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	frameMsg := func(seq uint64, data []byte) *nats.Msg {
		return testenv.FrameMsg("x", seq, time.Now(), data, 320, 240)
	}
	red := cvtest.JPEG(t, cvtest.Red, 320, 240)

	badStatus := []string{
		"not JSON at all",
		`{"id":"y","state":"streaming","interval_ms":2000}`, // another camera's id
		`{"id":"x","state":"exploding"}`,                    // no such state
		``,                                                  // 0 bytes
	}
	for _, s := range badStatus {
		publish(&nats.Msg{Subject: wire.StatusSubject("x"), Data: []byte(s)})
	}
	pngType := frameMsg(5, red)
	pngType.Header.Set(wire.HeaderContentType, "image/png")
	badSeq := frameMsg(6, red)
	badSeq.Header.Set(wire.HeaderSeq, "many")
	badWidth := frameMsg(7, red)
	badWidth.Header.Set(wire.HeaderWidth, "-1")
	badFrames := []*nats.Msg{
		frameMsg(1, []byte("hello, not a JPEG")),      // not a JPEG
		frameMsg(2, red[:len(red)/2]),                 // a truncated JPEG
		frameMsg(3, nil),                              // 0 bytes
		{Subject: wire.FramesSubject("x"), Data: red}, // no headers
		pngType,  // wrong content type
		badSeq,   // Frame-Seq not a number
		badWidth, // impossible width
	}
	garbageAt := time.Now()
	for _, m := range badFrames {
		publish(m)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	frontAtGarbage := webFrames(base, "front")

	// the web viewer counts each
	metric := func(name string) float64 { return scrape(base)[name] }
	took := testenv.Eventually(t, 30*time.Second, "the web viewer counting the bad frames", func() bool {
		return metric(`camhub_web_camera_invalid_total{camera="x"}`) == float64(len(badFrames)) &&
			metric("camhub_web_status_invalid_total") == float64(len(badStatus))
	})

	t.Logf("web viewer: %d bad frames and %d bad status reports counted within %v", len(badFrames), len(badStatus), took.Round(time.Millisecond))
	get := func(path string) (int, []byte) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, body := get("/cams/x/snapshot.jpg"); code == 200 {
		t.Errorf("the web viewer serves a snapshot of garbage: %d bytes", len(body))
	}
	testenv.Eventually(t, 30*time.Second, "front's frames after the garbage", func() bool { return webFrames(base, "front") > frontAtGarbage+5 })

	// A good frame on the garbage camera is taken, by both viewers.
	publish(frameMsg(10, red))
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the web viewer's snapshot of x", func() bool {
		code, body := get("/cams/x/snapshot.jpg")
		if code != 200 {
			return false
		}
		img, err := gocv.IMDecode(body, gocv.IMReadColor)
		if err != nil {
			return false
		}
		defer img.Close()
		return img.Cols() == 320 && isRed(img, image.Rect(0, 0, 320, 240))
	})

	dir := t.TempDir()
	shot := func(i int) gocv.Mat {
		file := filepath.Join(dir, fmt.Sprintf("shot%d.png", i))
		if err := testenv.Screenshot(display, file); err != nil {
			t.Fatal(err)
		}
		m := gocv.IMRead(file, gocv.IMReadColor)
		if m.Empty() {
			t.Fatalf("cannot read %s", file)
		}
		return m
	}
	prev := shot(0)
	defer func() { prev.Close() }()
	i := 0
	testenv.Eventually(t, 60*time.Second, "the grid showing x's good frame and front live", func() bool {
		i++
		cur := shot(i)
		moving := changed(prev, cur, left) > 500
		prev.Close()
		prev = cur
		return moving && isRed(cur, right)
	})

	// The rest of camhub took the garbage too: the hub runs, viewer list
	// answers (x's newest report in the hub is garbage).
	if st := cameraStates(t, natsURL); st["front"] != "live" {
		t.Errorf("viewer list after the garbage: %v", st)
	}
	select {
	case <-hub.done:
		t.Fatalf("the hub exited: %v", hub.err)
	default:
	}

	grid.stop()
	text, _ := grid.logText()
	grid.waitLog(`msg="skipping messages that are not camhub's"`)
	m := regexp.MustCompile(`msg="viewer stopped".* bad_messages=(\d+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("the grid viewer's log has no bad_messages count:\n%s", text)
	}
	if n, _ := strconv.Atoi(m[1]); n != len(badFrames)+len(badStatus) {
		t.Errorf("the grid viewer counted %d bad messages, want %d", n, len(badFrames)+len(badStatus))
	}
	t.Logf("grid viewer: %s bad messages counted; garbage published %v before it stopped", m[1], time.Since(garbageAt).Round(time.Millisecond))
	web.stop()
}
