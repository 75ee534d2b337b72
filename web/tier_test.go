package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"

	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// footageJPEGs is n frames of real footage as JPEGs of w x h, made with
// ffmpeg (quality 5, about what an agent's quality 80 gives).
func footageJPEGs(t testing.TB, w, h, n int) [][]byte {
	t.Helper()
	dir := t.TempDir()
	testenv.FFmpeg(t, "-i", testenv.Footage, "-vf", fmt.Sprintf("scale=%d:%d", w, h), "-frames:v", fmt.Sprint(n),
		"-q:v", "5", filepath.Join(dir, "f%03d.jpg"))
	var out [][]byte
	for i := 1; i <= n; i++ {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("f%03d.jpg", i)))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// tieredCameras publishes, for every camera of ids, a main frame (1280x720)
// and a small-tier frame (320x180) every interval, and a status report
// saying so every 500 ms, until the test ends.
func tieredCameras(t testing.TB, nc *nats.Conn, ids []string, interval time.Duration) {
	main := footageJPEGs(t, 1280, 720, 20)
	lo := footageJPEGs(t, 320, 180, 20)
	publishTiers(t, ids, interval, func(id string) {
		st := wire.Status{ID: id, Host: "h", Source: "testpattern", State: wire.StateStreaming, FPS: 1 / interval.Seconds(),
			Codec: wire.CodecJPEG, Width: 1280, Height: 720, Started: time.Now(), Time: time.Now(), IntervalMS: 1000,
			Lo: &wire.Tier{Codec: wire.CodecJPEG, Width: 320, Height: 180}}
		data, _ := json.Marshal(st)
		_ = nc.Publish(wire.StatusSubject(id), data)
	}, func(id string, seq uint64, now time.Time) error {
		i := int(seq) % len(main)
		m := testenv.FrameMsg(id, seq, now, main[i], 1280, 720)
		l := testenv.FrameMsg(id, seq, now, lo[i], 320, 180)
		l.Subject = wire.LoFramesSubject(id)
		if err := nc.PublishMsg(m); err != nil {
			return err
		}
		return nc.PublishMsg(l)
	})
}

// publishTiers calls report for every camera of ids now and every 500 ms,
// and publish for every camera every interval (seq from 1), until the test
// ends or publish fails.
func publishTiers(t testing.TB, ids []string, interval time.Duration, report func(id string), publish func(id string, seq uint64, now time.Time) error) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, id := range ids {
		report(id)
	}
	wg.Go(func() {
		frames := time.NewTicker(interval)
		defer frames.Stop()
		reports := time.NewTicker(500 * time.Millisecond)
		defer reports.Stop()
		for seq := uint64(1); ; {
			select {
			case <-ctx.Done():
				return
			case <-reports.C:
				for _, id := range ids {
					report(id)
				}
			case <-frames.C:
				now := time.Now()
				for _, id := range ids {
					if publish(id, seq, now) != nil {
						return
					}
				}
				seq++
			}
		}
	})
}

// meanLevel is the mean of a picture's pixels, 0 to 255.
func meanLevel(img image.Image) float64 {
	r := img.Bounds()
	var sum, n float64
	for y := r.Min.Y; y < r.Max.Y; y += 2 {
		for x := r.Min.X; x < r.Max.X; x += 2 {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			sum += float64(cr+cg+cb) / 3 / 257
			n++
		}
	}
	return sum / max(n, 1)
}

// countBytes serves h, counting the bytes of the page's streams.
func countBytes(h http.Handler, n *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/stream" || r.URL.Path == "/api/media" {
			w = &counting{ResponseWriter: w, n: n}
		}
		h.ServeHTTP(w, r)
	})
}

type counting struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *counting) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *counting) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// /api/stream?lo=a sends a from its small tier, b from its main one, with
// every camera shown or (--cams) only those named.
func TestStreamTiers(t *testing.T) {
	for name, cfg := range map[string]Config{"all": {}, "named": {Cams: []string{"a", "b"}}} {
		t.Run(name, func(t *testing.T) { testStreamTiers(t, cfg) })
	}
}

func testStreamTiers(t *testing.T, cfg Config) {
	_, nc := startHub(t)
	_, ts := startWeb(t, cfg, nc)
	tieredCameras(t, nc, []string{"a", "b"}, 50*time.Millisecond)
	ctx, _ := ctxFor(t)
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/api/stream?lo=a", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	r := bufio.NewReader(res.Body)
	got := map[string]int{}
	for got["a lo 320"] < 5 || got["b main 1280"] < 5 {
		line, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatal(err)
		}
		var h struct {
			ID    string `json:"id"`
			Width int    `json:"width"`
			Tier  string `json:"tier"`
			Len   int    `json:"len"`
		}
		if err := json.Unmarshal(line, &h); err != nil {
			t.Fatal(err)
		}
		if h.Tier == "" {
			h.Tier = "main"
		}
		k := fmt.Sprintf("%s %s %d", h.ID, h.Tier, h.Width)
		if k == "a main 1280" && got["a lo 320"] == 0 {
			k = "a main before its small tier came" // the fallback while it has none
		}
		got[k]++
		if _, err := io.CopyN(io.Discard, r, int64(h.Len)); err != nil {
			t.Fatal(err)
		}
	}
	delete(got, "a main before its small tier came")
	if len(got) != 2 {
		t.Fatalf("records %v: want a at the small tier and b at the main one only", got)
	}
	for _, bad := range []string{"lo=a*", "lo=a.b", "lo=" + strings.Repeat("x", 65)} {
		res, err := http.Get(ts.URL + "/api/stream?" + bad)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, res.StatusCode)
		}
	}
	var cams []Camera
	getJSON(t, ts.URL+"/api/cams", &cams)
	if len(cams) != 2 || cams[0].Lo == nil || cams[0].Lo.Width != 320 || cams[0].Codec != wire.CodecJPEG {
		t.Fatalf("api/cams: %+v", cams)
	}
}

// tieredPage starts a hub, n cameras named by format (cam0, cam1, ...) with a small tier
// publishing a frame every interval, and the web server behind a test
// server that counts the bytes it sends.
func tieredPage(t *testing.T, n int, format string, interval time.Duration) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	_, nc, ts, sent := countedWeb(t)
	tieredCameras(t, nc, camIDs(n, format), interval)
	return ts, sent
}

// countedWeb starts a hub and the web server behind a test server that
// counts the bytes of the page's streams.
func countedWeb(t *testing.T) (*Server, *nats.Conn, *httptest.Server, *atomic.Int64) {
	t.Helper()
	_, nc := startHub(t)
	s, err := New(Config{}, nc, quiet())
	if err != nil {
		t.Fatal(err)
	}
	sent := new(atomic.Int64)
	ts := httptest.NewServer(countBytes(s.Handler(), sent))
	t.Cleanup(ts.Close)
	t.Cleanup(s.Close)
	return s, nc, ts, sent
}

// camIDs is n camera ids named by format (cam%d: cam0, cam1, ...).
func camIDs(n int, format string) []string {
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf(format, i))
	}
	return ids
}

// The page with 8 small tiles reads every camera's small tier (the bytes
// it receives say so too); a camera shown alone switches to its main tier
// without its picture going blank, and back.
func TestPageTiers(t *testing.T) {
	ts, sent := tieredPage(t, 8, "cam%d", 100*time.Millisecond)

	ctx, problems := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL)); err != nil {
		t.Fatal(err)
	}
	allLo := `[...document.querySelectorAll('.tile')].length === 8 && [...document.querySelectorAll('.tile')].every(e => e.dataset.tier === 'lo' && e.dataset.width === '320')`
	poll(t, ctx, "every tile on its small tier", allLo)
	before, start := sent.Load(), time.Now()
	n0 := run(t, ctx, "frames shown", chromedp.Evaluate[int](`[...document.querySelectorAll('.tile')].reduce((n, e) => n + Number(e.dataset.shown), 0)`))
	testenv.Eventually(t, 10*time.Second, "2 s of the grid", func() bool { return time.Since(start) >= 2*time.Second })
	n1 := run(t, ctx, "frames shown", chromedp.Evaluate[int](`[...document.querySelectorAll('.tile')].reduce((n, e) => n + Number(e.dataset.shown), 0)`))
	loRate := float64(sent.Load()-before) / time.Since(start).Seconds()
	if !run(t, ctx, "still small", chromedp.Evaluate[bool](allLo)) {
		t.Fatal("a tile left the small tier")
	}
	perFrame := float64(sent.Load()-before) / float64(max(1, n1-n0))
	t.Logf("8 small tiles: %.0f bytes/s to the page, %.0f bytes per frame shown", loRate, perFrame)
	if perFrame > 30<<10 { // a 1280x720 frame of the footage is ~80 KB, a 320x180 one ~8 KB
		t.Errorf("%.0f bytes per frame shown: main-tier frames were sent", perFrame)
	}

	// cam3 alone, then all again: screenshots of its picture while it
	// switches tiers all show the scene (a blank tile is its dark
	// background).
	checkShown := func(what, done string) {
		t.Helper()
		shots := 0
		for !run(t, ctx, what, chromedp.Evaluate[bool](done)) || shots < 3 {
			if m := meanLevel(tilePicture(t, ctx, "cam3")); m < 40 {
				t.Fatalf("%s: cam3's picture is blank (mean level %.1f)", what, m)
			}
			shots++
			if shots > 200 {
				t.Fatalf("%s: not done", what)
			}
		}
	}
	run(t, ctx, "cam3 alone", chromedp.Evaluate[chromedp.Void](`location.hash = 'cam=cam3'`))
	checkShown("cam3 on its main tier", tileJS("cam3")+`.dataset.tier === 'main' && `+tileJS("cam3")+`.dataset.width === '1280'`)
	run(t, ctx, "all cameras", chromedp.Evaluate[chromedp.Void](`location.hash = ''`))
	checkShown("back on the small tiers", allLo)
	// the pin
	run(t, ctx, "pin main", chromedp.Evaluate[chromedp.Void](`document.getElementById('tier').click()`))
	poll(t, ctx, "every tile on the main tier when pinned", `[...document.querySelectorAll('.tile')].every(e => e.dataset.tier === 'main' && e.dataset.width === '1280')`)
	if p := problems(); len(p) > 0 {
		t.Errorf("page problems: %v", p)
	}
}

// Bytes per second to the page for a 16-camera grid (1280x720 cameras at
// 15 fps, real footage, with a 320x180 small tier), tiers on (the page's
// default: small tiles read the small tier) and off (pinned to main). The
// numbers are in docs/BENCHMARKS.md:
//
//	go test -run TestPageTierBytes -v ./web/
func TestPageTierBytes(t *testing.T) {
	ts, sent := tieredPage(t, 16, "cam%02d", time.Second/15)
	ctx, _ := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL)); err != nil {
		t.Fatal(err)
	}
	const window = 5 * time.Second
	measure := func(tier string) (bytesPerSec, framesPerSec float64) {
		t.Helper()
		every := fmt.Sprintf(`[...document.querySelectorAll('.tile')].length === 16 && [...document.querySelectorAll('.tile')].every(e => e.dataset.tier === '%s')`, tier)
		poll(t, ctx, "every tile on "+tier, every)
		shownJS := `[...document.querySelectorAll('.tile')].reduce((n, e) => n + Number(e.dataset.shown), 0)`
		n0, b0, start := run(t, ctx, "shown", chromedp.Evaluate[int](shownJS)), sent.Load(), time.Now()
		testenv.Eventually(t, 2*window, "the window", func() bool { return time.Since(start) >= window })
		n1, b1, el := run(t, ctx, "shown", chromedp.Evaluate[int](shownJS)), sent.Load(), time.Since(start)
		if !run(t, ctx, "still "+tier, chromedp.Evaluate[bool](every)) {
			t.Fatalf("a tile left the %s tier", tier)
		}
		return float64(b1-b0) / el.Seconds(), float64(n1-n0) / el.Seconds()
	}
	onBytes, onFrames := measure(wire.TierLo)
	run(t, ctx, "pin main", chromedp.Evaluate[chromedp.Void](`document.getElementById('tier').click()`))
	offBytes, offFrames := measure(wire.TierMain)
	t.Logf("16 cameras, tiers on: %.2f MB/s to the page, %.0f frames/s shown", onBytes/1e6, onFrames)
	t.Logf("16 cameras, tiers off: %.2f MB/s to the page, %.0f frames/s shown", offBytes/1e6, offFrames)
	if onBytes*3 > offBytes {
		t.Errorf("tiers on %.0f bytes/s, off %.0f: want on at most a third", onBytes, offBytes)
	}
}
