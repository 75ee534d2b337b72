package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"

	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// Sizes of the H.264 tiers of the tests' cameras.
const (
	mainW, mainH = 1280, 720
	loW, loH     = 320, 180
)

// videoTiers publishes, for every camera of ids, an access unit of a real
// libx264 clip of the footage at 1280x720 (main tier, into the buffer) and
// one of the same frame at 320x180 (small tier) every interval, both
// GOPs of gop frames, and a status report saying so every 500 ms, until
// the test ends. lo turns the small tier off and on.
type videoTiers struct {
	lo     atomic.Bool
	noKeys atomic.Bool // the small tier's keyframes are left out
	// mean bytes of an access unit of each tier's clip
	mainAU, loAU float64
}

func publishVideoTiers(t testing.TB, nc *nats.Conn, ids []string, interval time.Duration, gop int) *videoTiers {
	t.Helper()
	main := testenv.H264Clip(t, mainW, mainH, 2*gop, gop)
	lo := testenv.H264Clip(t, loW, loH, 2*gop, gop)
	vt := &videoTiers{mainAU: meanLen(main), loAU: meanLen(lo)}
	vt.lo.Store(true)
	publishTiers(t, ids, interval, func(id string) {
		st := wire.Status{ID: id, Host: "h", Source: "rtsp://cam", State: wire.StateStreaming, FPS: 1 / interval.Seconds(),
			Codec: wire.CodecH264, Width: mainW, Height: mainH, Started: time.Now(), Time: time.Now(), IntervalMS: 1000}
		if vt.lo.Load() {
			st.Lo = &wire.Tier{Codec: wire.CodecH264, Width: loW, Height: loH}
		}
		data, _ := json.Marshal(st)
		_ = nc.Publish(wire.StatusSubject(id), data)
	}, func(id string, seq uint64, now time.Time) error {
		i := int(seq-1) % len(main)
		if err := nc.PublishMsg(testenv.VideoMsg(t, id, seq, now, main[i], mainW, mainH)); err != nil || !vt.lo.Load() {
			return err
		}
		m := testenv.VideoMsg(t, id, seq, now, lo[i], loW, loH)
		key := m.Subject == wire.VideoSubject(id, true)
		if key && vt.noKeys.Load() {
			return nil
		}
		m.Subject = wire.LoVideoSubject(id, key)
		return nc.PublishMsg(m)
	})
	return vt
}

// meanLen is the mean length of aus.
func meanLen(aus [][]byte) float64 {
	n := 0
	for _, a := range aus {
		n += len(a)
	}
	return float64(n) / float64(max(len(aus), 1))
}

// tracks says, per camera, the tier of the track each of s's /api/media
// streams sends ("lo", "main"; "" before its first keyframe).
func tracks(s *Server) []map[string]string {
	s.media.mu.Lock()
	defer s.media.mu.Unlock()
	var out []map[string]string
	for c := range s.media.clients {
		m := map[string]string{}
		c.mu.Lock()
		for k, v := range c.cams {
			if v.shown {
				m[k.id] = map[bool]string{true: wire.TierLo, false: wire.TierMain}[k.lo]
			}
		}
		c.mu.Unlock()
		out = append(out, m)
	}
	return out
}

// /api/media?lo=cam sends cam's H.264 small tier while it comes: when it
// stops, the stream goes on with the main tier (a new track from the
// buffer's newest keyframe), and back when it returns; the old track's
// fragments go on until the new track's init. Without lo= only the main
// tier is sent. A message on the small tier's subjects that is not an
// access unit is counted.
func TestMediaTiers(t *testing.T) {
	_, nc := startHub(t)
	s, ts := startWeb(t, Config{}, nc)
	vt := publishVideoTiers(t, nc, []string{"cam"}, time.Second/15, 15)
	testenv.Eventually(t, 10*time.Second, "the small tier received", func() bool {
		s.media.mu.Lock()
		defer s.media.mu.Unlock()
		return s.media.loLive("cam", time.Now(), false)
	})
	ctx, _ := ctxFor(t)
	m := openMedia(t, ctx, ts.URL+"/api/media?lo=cam")
	plain := openMedia(t, ctx, ts.URL+"/api/media")

	// next returns cam's next init (its width) and the fragments before it
	next := func(m *mediaReader) (width, frags int) {
		t.Helper()
		for {
			rec := m.until(t, "cam")
			if rec.Kind == RecordInit {
				return rec.Width, frags
			}
			frags++
		}
	}
	if w, _ := next(m); w != loW {
		t.Fatalf("lo=cam: first track %d wide, want the small tier's %d", w, loW)
	}
	if w, _ := next(plain); w != mainW {
		t.Fatalf("without lo: first track %d wide, want %d", w, mainW)
	}
	// the small tier stops: back to the main tier
	vt.lo.Store(false)
	w, frags := next(m)
	if w != mainW {
		t.Fatalf("the small tier stopped: next track %d wide, want %d", w, mainW)
	}
	t.Logf("small tier stopped: %d small-tier fragments, then the main tier's track", frags)
	if rec := m.until(t, "cam"); rec.Kind != RecordFragment || rec.Width != mainW {
		t.Fatalf("after the main tier's init: kind %d, %d wide", rec.Kind, rec.Width)
	}
	// it comes back: the main tier's track goes on until the small
	// tier's first keyframe
	vt.lo.Store(true)
	w, frags = next(m)
	if w != loW {
		t.Fatalf("the small tier came back: next track %d wide, want %d", w, loW)
	}
	t.Logf("small tier back: %d main-tier fragments until its first keyframe", frags)
	if st := s.mediaStats(); st.Switches != 2 || st.Broken != 0 {
		t.Errorf("stats %+v: want 2 switches, nothing broken", st)
	}
	for i := 0; i < 10; i++ {
		if rec := m.until(t, "cam"); rec.Kind != RecordFragment || rec.Width != loW {
			t.Fatalf("after the small tier's init: kind %d, %d wide", rec.Kind, rec.Width)
		}
	}
	// a message on the small tier's subject that is not an access unit
	if err := nc.Publish(wire.LoVideoSubject("cam", true), []byte("not H.264")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the bad message counted", func() bool { return s.mediaStats().BadLo == 1 })
}

// The page with 8 small tiles of H.264 cameras reads every camera's H.264
// small tier (the server's streams send only small-tier tracks; the bytes
// say so too); a camera shown alone switches to its main tier and back
// without its picture going blank, with MSE and with WebCodecs; pinned to
// main every tile reads the main tier; nothing goes to the console.
func TestPageH264Tiers(t *testing.T) {
	s, nc, ts, sent := countedWeb(t)
	publishVideoTiers(t, nc, camIDs(8, "cam%d"), time.Second/15, 15)

	for _, player := range []string{"mse", "webcodecs"} {
		t.Run(player, func(t *testing.T) {
			ctx, problems := browser(t)
			if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/?player="+player)); err != nil {
				t.Fatal(err)
			}
			run(t, ctx, "auto tiers", chromedp.Evaluate[chromedp.Void](`if (state.tier !== 'auto') { state.tier = 'auto'; retier(); }`))
			allLo := fmt.Sprintf(`(() => { const st = camhubMedia.stats(); const ts = [...document.querySelectorAll('.tile')];
				return ts.length === 8 && ts.every(e => e.dataset.tier === 'lo' && e.dataset.width === '%d' && st[e.dataset.id]?.player === '%s' && !st[e.dataset.id].stale && st[e.dataset.id].frames > 0); })()`, loW, player)
			poll(t, ctx, "every tile on its small tier", allLo)
			onlyLo := func() bool {
				for _, c := range tracks(s) {
					for id, tier := range c {
						if tier != wire.TierLo {
							t.Logf("stream sends %s at %s", id, tier)
							return false
						}
					}
				}
				return true
			}
			testenv.Eventually(t, 10*time.Second, "only small-tier tracks sent", onlyLo)
			before, start := sent.Load(), time.Now()
			testenv.Eventually(t, 10*time.Second, "2 s of the grid", func() bool { return time.Since(start) >= 2*time.Second })
			t.Logf("8 small H.264 tiles: %.0f bytes/s to the page", float64(sent.Load()-before)/time.Since(start).Seconds())
			if !onlyLo() || !run(t, ctx, "still small", chromedp.Evaluate[bool](allLo)) {
				t.Fatal("a tile left the small tier")
			}

			// cam3 alone, then all again: screenshots of its picture
			// while it switches tiers all show the scene (a blank tile
			// is its black background)
			checkShown := func(what, done string) int {
				t.Helper()
				shots := 0
				for !run(t, ctx, what, chromedp.Evaluate[bool](done)) || shots < 3 {
					pic := picture(t, ctx, "cam3")
					if os.Getenv("CAMHUB_WEB_SHOTS") != "" {
						f, _ := os.Create(filepath.Join(os.Getenv("CAMHUB_WEB_SHOTS"), fmt.Sprintf("%s-%s-%d.png", player, what, shots)))
						_ = png.Encode(f, pic)
						f.Close()
					}
					// the scene letterboxed in the tile is 30 or more; the
					// tile's background, black
					if m := meanLevel(pic); m < 15 {
						t.Fatalf("%s: cam3's picture is blank (mean level %.1f) after %d screenshots", what, m, shots)
					}
					shots++
					if shots > 300 {
						t.Fatalf("%s: not done", what)
					}
				}
				return shots
			}
			tierIs := func(tier string, w int) string {
				return fmt.Sprintf(`%[1]s.dataset.tier === '%[2]s' && %[1]s.dataset.width === '%[3]d' && !camhubMedia.stats().cam3.stale && !camhubMedia.stats().cam3.switching`, tileJS("cam3"), tier, w)
			}
			// and at every animation frame, what is on top in cam3's
			// tile is a picture
			run(t, ctx, "watch cam3", chromedp.Evaluate[chromedp.Void](blankWatchJS("cam3")))
			run(t, ctx, "cam3 alone", chromedp.Evaluate[chromedp.Void](`location.hash = 'cam=cam3'`))
			n := checkShown("cam3 on its main tier", tierIs(wire.TierMain, mainW))
			t.Logf("cam3 alone: on its main tier after %d screenshots, none blank", n)
			run(t, ctx, "all cameras", chromedp.Evaluate[chromedp.Void](`location.hash = ''`))
			n = checkShown("cam3 back on its small tier", tierIs(wire.TierLo, loW))
			t.Logf("all again: cam3 on its small tier after %d screenshots, none blank", n)
			poll(t, ctx, "every tile on its small tier again", allLo)
			type stats struct {
				Switches, BadTracks, KeyWaits int
			}
			type watch struct {
				Frames, Blank int
				Min           float64
			}
			w := run(t, ctx, "cam3 watched", chromedp.Evaluate[watch](`blankWatch.stop()`))
			t.Logf("cam3 watched at %d animation frames through both switches: %d blank, darkest mean level %.1f", w.Frames, w.Blank, w.Min)
			if w.Blank > 0 || w.Frames < 10 {
				t.Errorf("cam3 watched at %d animation frames: %d blank", w.Frames, w.Blank)
			}
			st := run(t, ctx, "cam3's stats", chromedp.Evaluate[stats](`camhubMedia.stats().cam3`))
			if st.Switches < 2 || st.BadTracks != 0 || st.KeyWaits != 0 {
				t.Errorf("cam3: %+v, want 2 switches or more, no bad track, no wait for a keyframe", st)
			}

			// the pin
			run(t, ctx, "pin main", chromedp.Evaluate[chromedp.Void](`state.tier = 'main'; retier()`))
			poll(t, ctx, "every tile on the main tier when pinned", fmt.Sprintf(
				`[...document.querySelectorAll('.tile')].every(e => e.dataset.tier === 'main' && e.dataset.width === '%d')`, mainW))
			run(t, ctx, "unpin", chromedp.Evaluate[chromedp.Void](`state.tier = 'auto'; retier()`))
			if p := problems(); len(p) > 0 {
				t.Errorf("page problems: %v", p)
			}
		})
	}
}

// blankWatchJS starts watching camera id's tile at every animation frame:
// the picture on top in it (the last video or canvas of an H.264 tile, else
// its img), drawn small on black, is blank if its mean level is under 15.
// blankWatch.stop() ends it and returns the counts.
func blankWatchJS(id string) string {
	return fmt.Sprintf(`(() => {
	const w = { frames: 0, blank: 0, min: 255, on: true };
	const cv = document.createElement('canvas');
	cv.width = 32; cv.height = 18;
	const cx = cv.getContext('2d', { willReadFrequently: true });
	const look = () => {
		if (!w.on) return;
		const t = %s;
		const els = t.classList.contains('h264') ? t.querySelectorAll('.pic video, .pic canvas') : [t.querySelector('img')];
		cx.fillStyle = '#000';
		cx.fillRect(0, 0, 32, 18);
		try { cx.drawImage(els[els.length - 1], 0, 0, 32, 18); } catch (e) { /* nothing to draw: blank */ }
		const d = cx.getImageData(0, 0, 32, 18).data;
		let sum = 0;
		for (let i = 0; i < d.length; i += 4) sum += (d[i] + d[i + 1] + d[i + 2]) / 3;
		const m = sum / (d.length / 4);
		w.frames++;
		if (m < 15) w.blank++;
		w.min = Math.min(w.min, m);
		requestAnimationFrame(look);
	};
	requestAnimationFrame(look);
	window.blankWatch = { stop: () => { w.on = false; return w; } };
})()`, tileJS(id))
}

// picture takes a screenshot of camera id's picture, whatever shows it.
func picture(t *testing.T, ctx context.Context, id string) image.Image {
	t.Helper()
	data := run(t, ctx, "screenshot of "+id, chromedp.Screenshot(chromedp.CSS(fmt.Sprintf(`.tile[data-id="%s"] .pic`, id)), chromedp.NodeVisible))
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot of %s: %v", id, err)
	}
	return img
}

// Bytes per second to the page for a 16-camera grid of H.264 cameras
// (1280x720 at 15 fps, real footage encoded by libx264, with a 320x180
// H.264 small tier), tiers on (the page's default: small tiles read the
// small tier) and off (pinned to main), played by WebCodecs. The numbers
// are in docs/BENCHMARKS.md:
//
//	go test -run TestPageH264TierBytes -v ./web/
func TestPageH264TierBytes(t *testing.T) {
	_, nc, ts, sent := countedWeb(t)
	vt := publishVideoTiers(t, nc, camIDs(16, "cam%02d"), time.Second/15, 15)
	t.Logf("offered: main tier %.2f MB/s, small tier %.2f MB/s (16 cameras, 15 fps)", 16*15*vt.mainAU/1e6, 16*15*vt.loAU/1e6)
	ctx, problems := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL)); err != nil {
		t.Fatal(err)
	}
	const window = 5 * time.Second
	measure := func(tier string) (bytesPerSec, framesPerSec float64) {
		t.Helper()
		every := fmt.Sprintf(`(() => { const st = camhubMedia.stats(); const ts = [...document.querySelectorAll('.tile')];
			return ts.length === 16 && ts.every(e => e.dataset.tier === '%s' && st[e.dataset.id] && !st[e.dataset.id].stale && !st[e.dataset.id].switching); })()`, tier)
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
	run(t, ctx, "auto tiers", chromedp.Evaluate[chromedp.Void](`if (state.tier !== 'auto') { state.tier = 'auto'; retier(); }`))
	onBytes, onFrames := measure(wire.TierLo)
	run(t, ctx, "pin main", chromedp.Evaluate[chromedp.Void](`state.tier = 'main'; retier()`))
	offBytes, offFrames := measure(wire.TierMain)
	run(t, ctx, "unpin", chromedp.Evaluate[chromedp.Void](`state.tier = 'auto'`))
	t.Logf("16 H.264 cameras, tiers on: %.2f MB/s to the page, %.0f frames/s shown", onBytes/1e6, onFrames)
	t.Logf("16 H.264 cameras, tiers off: %.2f MB/s to the page, %.0f frames/s shown", offBytes/1e6, offFrames)
	if onBytes*3 > offBytes {
		t.Errorf("tiers on %.0f bytes/s, off %.0f: want on at most a third", onBytes, offBytes)
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("page problems: %v", p)
	}
}

// A small tier whose keyframes go missing: the page pinned to it keeps
// the main tier's picture (never blank), counts the wait and says
// "waiting for a keyframe" on the tile after 10 s, and switches when one
// comes; the server counts the access units it could not send and the
// wait.
func TestPageH264MissingKeyframe(t *testing.T) {
	s, nc, ts, _ := countedWeb(t)
	vt := publishVideoTiers(t, nc, []string{"cam"}, time.Second/15, 15)
	ctx, problems := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL)); err != nil {
		t.Fatal(err)
	}
	pin := func(tier string) {
		run(t, ctx, "pin "+tier, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`state.tier = '%s'; retier()`, tier)))
	}
	on := func(tier string, w int) string {
		return fmt.Sprintf(`%[1]s?.dataset.tier === '%[2]s' && %[1]s.dataset.width === '%[3]d' && camhubMedia.stats().cam?.stale === false`, tileJS("cam"), tier, w)
	}
	pin(wire.TierLo)
	poll(t, ctx, "cam on its small tier", on(wire.TierLo, loW))
	pin(wire.TierMain)
	poll(t, ctx, "cam on its main tier", on(wire.TierMain, mainW))
	vt.noKeys.Store(true)
	skipped := s.mediaStats().Skipped
	run(t, ctx, "watch cam", chromedp.Evaluate[chromedp.Void](blankWatchJS("cam")))
	pin(wire.TierLo)
	run(t, ctx, "the wait said", chromedp.Poll[bool](tileJS("cam")+`.querySelector('.note').textContent === 'waiting for a keyframe\u2026' && camhubMedia.stats().cam.keyWaits === 1`,
		chromedp.WithPollingTimeout(40*time.Second)))
	if st := s.mediaStats(); st.Skipped <= skipped {
		t.Errorf("server: %d access units skipped, %d before the wait: the small tier's deltas without a keyframe were not counted", st.Skipped, skipped)
	}
	testenv.Eventually(t, 20*time.Second, "the server's count of the wait", func() bool { return s.mediaStats().KeyWaits == 1 })
	vt.noKeys.Store(false)
	poll(t, ctx, "cam on its small tier after its keyframe", on(wire.TierLo, loW)+` && `+tileJS("cam")+`.querySelector('.note').textContent === ''`)
	type watch struct {
		Frames, Blank int
	}
	if w := run(t, ctx, "cam watched", chromedp.Evaluate[watch](`blankWatch.stop()`)); w.Blank > 0 || w.Frames < 10 {
		t.Errorf("cam watched at %d animation frames: %d blank", w.Frames, w.Blank)
	}
	pin("auto")
	if p := problems(); len(p) > 0 {
		t.Errorf("page problems: %v", p)
	}
}
