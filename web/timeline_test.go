package web

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/hub"
	"camhub/hub/hubtest"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// Cameras of the timeline tests: a JPEG camera at 10 fps and an H.264
// camera at 15 fps with a keyframe a second, each with history seconds
// in the buffer (capture times known), then live.
const (
	tlJPEGInterval  = 100 * time.Millisecond
	tlVideoInterval = time.Second / 15
	tlGOP           = 15
)

// timelineCams is what timelineSetup published.
type timelineCams struct {
	pic   *camera
	cam   *videoCamera
	first time.Time   // the oldest capture time in the buffer
	jpegs []time.Time // pic's history, Frame-Seq i+1 at jpegs[i]
	aus   []time.Time // cam's history
}

// timelineSetup publishes history of pic (JPEG) and cam (H.264) into the
// hub's buffer, acknowledged, ending now; with live, both go on.
func timelineSetup(t *testing.T, nc *nats.Conn, history time.Duration, live bool) *timelineCams {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Microsecond) // what records carry
	tc := &timelineCams{
		pic:   newCamera(t, nc, "pic", 160, 120, 20, 0),
		cam:   newVideoCamera(t, nc, "cam", 320, 240, 3*tlGOP, tlGOP),
		first: now.Add(-history),
	}
	for at := tc.first; !at.After(now); at = at.Add(tlJPEGInterval) {
		tc.pic.seq++
		if _, err := js.PublishMsg(context.Background(), natsFrame(tc.pic, tc.pic.seq, at)); err != nil {
			t.Fatal(err)
		}
		tc.jpegs = append(tc.jpegs, at)
	}
	var aus [][]byte
	for at := tc.first.Add(time.Millisecond); !at.After(now); at = at.Add(tlVideoInterval) {
		aus = append(aus, tc.cam.aus[len(aus)%len(tc.cam.aus)])
		tc.aus = append(tc.aus, at.Truncate(time.Microsecond))
	}
	n := len(aus) / tlGOP * tlGOP // whole GOPs: the live camera goes on with a keyframe
	aus, tc.aus = aus[:n], tc.aus[:n]
	testenv.PublishVideo(t, js, "cam", aus, tc.aus, 320, 240)
	tc.cam.seq = uint64(n)
	// the server hears of them (acknowledged publishes are not shown live)
	tc.pic.report(wire.StateStreaming)
	(&camera{t: t, nc: nc, id: "cam", w: 320, h: 240}).report(wire.StateStreaming)
	if live {
		tc.pic.run(tlJPEGInterval)
		tc.cam.run(tlVideoInterval)
	}
	return tc
}

// before returns the last of times at or before at.
func before(times []time.Time, at time.Time) time.Time {
	i, _ := slices.BinarySearchFunc(times, at, func(a, b time.Time) int { return a.Compare(b) })
	if i < len(times) && times[i].Equal(at) {
		return times[i]
	}
	return times[max(i-1, 0)]
}

// stillRecords reads GET /api/still's records by camera.
func stillRecords(t *testing.T, url string) map[string][]MediaRecord {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != MediaContentType {
		t.Fatalf("GET %s: %s %s", url, res.Status, res.Header.Get("Content-Type"))
	}
	out := make(map[string][]MediaRecord)
	m := &mediaReader{r: bufio.NewReader(res.Body)}
	for {
		rec, err := m.next()
		if err != nil {
			break
		}
		out[rec.ID] = append(out[rec.ID], rec)
	}
	return out
}

// The timeline's requests: GET /api/timeline spans what the buffer holds
// of each camera; GET /api/still gives each camera's picture at a time
// (JPEG: the frame at or before it; H.264: the keyframe at or before it,
// or with exact=1 the access units from it up to the time); the snapshot
// of a time; GET /api/media?at= plays from the time; bad times are 400.
func TestTimelineAPI(t *testing.T) {
	_, nc := startHub(t)
	_, ts := startWeb(t, Config{}, nc)
	tc := timelineSetup(t, nc, 10*time.Second, false)
	testenv.Eventually(t, 10*time.Second, "the server to know both cameras", func() bool {
		var cams []Camera
		return getJSON(t, ts.URL+"/api/cams", &cams) == http.StatusOK && len(cams) == 2
	})

	var tl Timeline
	if st := getJSON(t, ts.URL+"/api/timeline", &tl); st != http.StatusOK {
		t.Fatalf("timeline: %d", st)
	}
	if tl.From == nil || !tl.From.Equal(tc.first) || tl.To == nil || !tl.To.Equal(tc.jpegs[len(tc.jpegs)-1]) || len(tl.Cameras) != 2 {
		t.Fatalf("timeline %+v, want from %v to %v, two cameras", tl, tc.first, tc.jpegs[len(tc.jpegs)-1])
	}
	for _, c := range tl.Cameras {
		want := map[string][2]time.Time{"pic": {tc.jpegs[0], tc.jpegs[len(tc.jpegs)-1]}, "cam": {tc.aus[0], tc.aus[len(tc.aus)-1]}}[c.ID]
		if !c.From.Equal(want[0]) || !c.To.Equal(want[1]) || c.Video != (c.ID == "cam") {
			t.Errorf("timeline of %s: %+v, want %v to %v", c.ID, c, want[0], want[1])
		}
	}

	at := tc.first.Add(4321 * time.Millisecond)
	ms := strconv.FormatInt(at.UnixMilli(), 10)
	at = time.UnixMilli(at.UnixMilli())
	keyAt := tc.aus[slices.IndexFunc(tc.aus, func(a time.Time) bool { return a.After(at) })/tlGOP*tlGOP]
	for _, exact := range []bool{false, true} {
		recs := stillRecords(t, ts.URL+"/api/still?at="+ms+"&exact="+strconv.FormatBool(exact))
		if p := recs["pic"]; len(p) != 1 || p[0].Kind != RecordJPEG || !p[0].Time.Equal(before(tc.jpegs, at)) {
			t.Errorf("exact=%v: pic's still %+v, want the JPEG of %v", exact, p, before(tc.jpegs, at))
		}
		c := recs["cam"]
		if len(c) != 2 || c[0].Kind != RecordInit || c[1].Kind != RecordFragment {
			t.Fatalf("exact=%v: cam's still: %d records, want an init and a fragment", exact, len(c))
		}
		n, key := fragmentSamples(t, c[1].Payload)
		wantTime, wantN := keyAt, 1
		if exact {
			wantTime = before(tc.aus, at)
			wantN = slices.Index(tc.aus, wantTime) - slices.Index(tc.aus, keyAt) + 1
		}
		if !key || n != wantN || !c[1].Time.Equal(wantTime) {
			t.Errorf("exact=%v: cam's fragment: %d samples to %v (keyframe first: %v), want %d to %v", exact, n, c[1].Time, key, wantN, wantTime)
		}
	}
	// one camera
	if recs := stillRecords(t, ts.URL+"/api/still?cams=pic&at="+ms); len(recs) != 1 || len(recs["pic"]) != 1 {
		t.Errorf("a still of pic: %v", recs)
	}
	// the snapshot of a time (an H.264 one needs a decoder: 501 here)
	res, err := http.Get(ts.URL + "/cams/pic/snapshot.jpg?at=" + at.UTC().Format(time.RFC3339Nano))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got, want := res.Header.Get("Frame-Seq"), strconv.Itoa(slices.Index(tc.jpegs, before(tc.jpegs, at))+1); res.StatusCode != http.StatusOK || got != want {
		t.Errorf("pic's snapshot at %v: %s, frame %s, want %s", at, res.Status, got, want)
	}
	if res, err = http.Get(ts.URL + "/cams/cam/snapshot.jpg?at=" + ms); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotImplemented {
		t.Errorf("cam's snapshot at a time without a decoder: %s, want 501", res.Status)
	}

	// playing from the time: pic from its first frame at or after it, cam
	// from its keyframe before it (the access units before it come at
	// once), at the pace they were captured
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m := openMedia(t, ctx, ts.URL+"/api/media?at="+ms)
	var picTimes []time.Time
	var camSeen int
	var started time.Time
	for len(picTimes) < 10 || camSeen < 10 {
		rec, err := m.next()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case rec.ID == "pic":
			if started.IsZero() {
				started = time.Now()
			}
			picTimes = append(picTimes, rec.Time)
		case rec.ID == "cam" && rec.Kind == RecordFragment:
			if camSeen == 0 {
				if n, key := fragmentSamples(t, rec.Payload); !key || n < 1 {
					t.Errorf("cam's first fragment: %d samples, keyframe first: %v", n, key)
				}
				if rec.Time.Before(keyAt) {
					t.Errorf("cam's first fragment ends at %v, before its keyframe before the start, %v", rec.Time, keyAt)
				}
			}
			camSeen++
			if d := rec.Time.Sub(at); d > 5*time.Second {
				t.Fatalf("cam played %v past the start", d)
			}
		}
	}
	if want := tc.jpegs[slices.IndexFunc(tc.jpegs, func(a time.Time) bool { return !a.Before(at) })]; !picTimes[0].Equal(want) {
		t.Errorf("pic's first frame played %v, want %v", picTimes[0], want)
	}
	if d := picTimes[9].Sub(picTimes[0]); d != 9*tlJPEGInterval {
		t.Errorf("pic's 10 frames span %v", d)
	}
	if d := time.Since(started); d < 700*time.Millisecond {
		t.Errorf("pic's 10 frames came in %v: not at their pace", d)
	}

	for _, q := range []string{"at=0", "at=-5", "at=abc", "at=1e300", "at=" + strconv.FormatInt(time.Now().Add(48*time.Hour).UnixMilli(), 10)} {
		res, err := http.Get(ts.URL + "/api/still?" + q)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("still?%s: %s, want 400", q, res.Status)
		}
	}
	if res, err = http.Get(ts.URL + "/api/still"); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("a still without at: %s, want 400", res.Status)
	}
}

// tlTimes is the capture times shown by the tiles pic and cam, and the
// timeline's position.
type tlTimes struct{ Pic, Cam, Pos float64 }

const tlTimesJS = `({pic: Number(document.querySelector('.tile[data-id="pic"]')?.dataset.time || 0),
	cam: Number(document.querySelector('.tile[data-id="cam"]')?.dataset.time || 0),
	pos: Number(document.getElementById('tl-bar').dataset.pos)})`

// atTimeJS is true when both tiles show a picture from the timeline's
// position back to slack ms before it.
func atTimeJS(picSlack, camSlack time.Duration) string {
	return fmt.Sprintf(`(() => { const t = %s; return t.pic <= t.pos + 1 && t.pic >= t.pos - %d && t.cam <= t.pos + 1 && t.cam >= t.pos - %d; })()`,
		tlTimesJS, picSlack.Milliseconds(), camSlack.Milliseconds())
}

// barPoint is the point of the timeline bar at time at.
func barPoint(t *testing.T, ctx context.Context, at time.Time) (float64, float64) {
	t.Helper()
	type rect struct{ Left, Top, Width, Height, From, To float64 }
	r := run(t, ctx, "the bar", chromedp.Evaluate[rect](`(() => { const b = document.getElementById('tl-bar'); const r = b.getBoundingClientRect();
		return {left: r.left, top: r.top, width: r.width, height: r.height, from: Number(b.dataset.from), to: Number(b.dataset.to)}; })()`))
	if r.Width < 50 || r.Height < 20 {
		t.Fatalf("the timeline bar is %.0fx%.0f", r.Width, r.Height)
	}
	x := (float64(at.UnixMilli()) - r.From) / (r.To - r.From)
	if x < 0 || x > 1 {
		t.Fatalf("%v is not on the timeline (%v to %v)", at, time.UnixMilli(int64(r.From)), time.UnixMilli(int64(r.To)))
	}
	return r.Left + x*r.Width, r.Top + r.Height/2
}

// startTimelineHub is startHub with a buffer of two minutes: the history
// published stays in it while a test runs.
func startTimelineHub(t *testing.T) *nats.Conn {
	t.Helper()
	h := hubtest.Start(t, &hub.Config{
		Listen: "127.0.0.1:0", Replay: 2 * time.Minute, ReplayBytes: 256 << 20, Storage: hub.StorageMemory,
	})
	return testenv.Conn(t, h.ClientURL())
}

func mouse(typ input.DispatchMouseEventType, x, y float64) chromedp.Action[chromedp.Void] {
	return chromedp.MouseEvent(typ, x, y, func(p *input.DispatchMouseEventParams) {
		p.Button = input.MouseButtonLeft
		if typ != chromedp.MouseReleased {
			p.Buttons = 1
		}
		p.ClickCount = 1
	})
}

func act(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// The timeline in a real browser, with a JPEG and an H.264 camera (played
// by WebCodecs and by MSE): it spans the buffer; dragging shows every tile
// at the time under the pointer (within a GOP), release exactly there
// (within a frame); playing advances every tile in sync, at 4x four
// times as fast; the keys step, pause and play, and go live; nothing goes
// to the console. It logs how long seeks took (CAMHUB_TIMELINE_SEEKS=n
// drags n more times).
func TestTimelinePage(t *testing.T) {
	for _, player := range []string{"webcodecs", "mse"} {
		t.Run(player, func(t *testing.T) {
			nc := startTimelineHub(t)
			_, ts := startWeb(t, Config{}, nc)
			tc := timelineSetup(t, nc, 20*time.Second, true)
			ctx, problems := browser(t)
			act(t, ctx, "opening the page", chromedp.Navigate(ts.URL+"/?player="+player))
			if mode := run(t, ctx, "player", chromedp.Evaluate[string](`camhubMedia.mode()`)); mode != player {
				t.Fatalf("the page plays H.264 with %q", mode)
			}
			waitShown(t, ctx, "pic", 0)
			waitShown(t, ctx, "cam", 0)

			// the timeline spans the buffer
			poll(t, ctx, "the timeline read", `camhubTimeline.bounds().from !== null`)
			type bounds struct{ From, To float64 }
			b := run(t, ctx, "bounds", chromedp.Evaluate[bounds](`camhubTimeline.bounds()`))
			if first := float64(tc.first.UnixMilli()); b.From < first-1 || b.From > first+1 || b.To < float64(tc.jpegs[len(tc.jpegs)-1].UnixMilli()) {
				t.Errorf("the timeline spans %v to %v, want from %v", time.UnixMilli(int64(b.From)), time.UnixMilli(int64(b.To)), tc.first)
			}
			if run(t, ctx, "readout", chromedp.Evaluate[string](`document.getElementById('tl-time').textContent`)) != "live" {
				t.Error("the readout does not say live")
			}

			// space pauses; a drag shows the time under the pointer
			act(t, ctx, "space", chromedp.KeyEvent(" "))
			poll(t, ctx, "paused", `camhubTimeline.mode() === 'paused'`)
			act(t, ctx, "timing pointer events", chromedp.Evaluate[chromedp.Void](`for (const k of ['pointerdown', 'pointermove'])
				document.getElementById('tl-bar').addEventListener(k, (e) => { window.tlPointer = e.timeStamp; }, true)`))
			x, y := barPoint(t, ctx, tc.first.Add(5*time.Second))
			start := time.Now()
			act(t, ctx, "pressing on the bar", mouse(chromedp.MousePressed, x, y))
			tlPoll(t, ctx, problems, "every tile within a GOP of the pointer", atTimeJS(tlJPEGInterval, time.Second))
			t.Logf("seek on press: %v to both tiles", time.Since(start))
			// within the history published (frames 100 ms apart there;
			// live, under load, the test's may not be); each drag timed
			// in the page, from the pointer event to both tiles showing
			// the time
			var drags []time.Duration
			moves := []time.Duration{10 * time.Second, 9 * time.Second, 15 * time.Second, 3 * time.Second, 12 * time.Second}
			if v := os.Getenv("CAMHUB_TIMELINE_SEEKS"); v != "" { // more, to measure
				n, err := strconv.Atoi(v)
				if err != nil {
					t.Fatalf("CAMHUB_TIMELINE_SEEKS: %v", err)
				}
				rng := rand.New(rand.NewPCG(1, 2))
				for range n {
					moves = append(moves[:len(moves)-1], time.Duration(1000+rng.IntN(18000))*time.Millisecond, moves[len(moves)-1])
				}
			}
			for _, s := range moves {
				x, y = barPoint(t, ctx, tc.first.Add(s))
				act(t, ctx, "dragging", mouse(chromedp.MouseMoved, x, y))
				ms := run(t, ctx, "timing the drag", chromedp.Evaluate[float64](seekProbeJS(atTimeJS(tlJPEGInterval, time.Second)), chromedp.EvalAwaitPromise))
				if ms < 0 {
					tlPoll(t, ctx, problems, "every tile within a GOP of the pointer", atTimeJS(tlJPEGInterval, time.Second))
				}
				drags = append(drags, time.Duration(ms*float64(time.Millisecond)))
			}
			// release: exactly there
			act(t, ctx, "releasing", mouse(chromedp.MouseReleased, x, y))
			tlPoll(t, ctx, problems, "every tile within a frame of the time", atTimeJS(tlJPEGInterval, tlVideoInterval+2*time.Millisecond))
			times := run(t, ctx, "times", chromedp.Evaluate[tlTimes](tlTimesJS))
			if want := tc.first.Add(12 * time.Second); times.Pos < float64(want.UnixMilli()-500) || times.Pos > float64(want.UnixMilli()+500) {
				t.Errorf("the position %v after a drag to %v", time.UnixMilli(int64(times.Pos)), want)
			}
			type seek struct {
				MS    float64
				Exact bool
			}
			seeks := run(t, ctx, "seeks", chromedp.Evaluate[[]seek](`camhubTimeline.seeks()`))
			var inPage []time.Duration
			for _, s := range seeks {
				inPage = append(inPage, time.Duration(s.MS*float64(time.Millisecond)))
			}
			sorted := slices.Sorted(slices.Values(drags))
			t.Logf("%s: %d drags, pointer event to both tiles showing the time: p50 %v, p90 %v, max %v (%v); stills (request to read): %v",
				player, len(drags), sorted[len(sorted)/2], sorted[len(sorted)*9/10], sorted[len(sorted)-1], drags, inPage)
			saveShot(t, ctx, "timeline-"+player)

			// keys: shift+left steps back 10 s, right 1 s, exactly
			pos := times.Pos
			act(t, ctx, "shift+left", chromedp.KeyEvent(kb.ArrowLeft, chromedp.KeyModifiers(chromedp.ModifierShift)))
			poll(t, ctx, "10 s back", fmt.Sprintf(`Math.abs(Number(document.getElementById('tl-bar').dataset.pos) - %f) < 1`, pos-10000))
			tlPoll(t, ctx, problems, "every tile within a frame of the time", atTimeJS(tlJPEGInterval, tlVideoInterval+2*time.Millisecond))
			act(t, ctx, "right", chromedp.KeyEvent(kb.ArrowRight))
			poll(t, ctx, "1 s on", fmt.Sprintf(`Math.abs(Number(document.getElementById('tl-bar').dataset.pos) - %f) < 1`, pos-9000))
			tlPoll(t, ctx, problems, "every tile within a frame of the time", atTimeJS(tlJPEGInterval, tlVideoInterval+2*time.Millisecond))

			// space plays: every tile advances, in sync
			from := run(t, ctx, "times", chromedp.Evaluate[tlTimes](tlTimesJS))
			act(t, ctx, "space", chromedp.KeyEvent(" "))
			poll(t, ctx, "playing", `camhubTimeline.mode() === 'playing'`)
			poll(t, ctx, "every tile 2 s on", fmt.Sprintf(`(() => { const t = %s; return t.pic > %f && t.cam > %f; })()`, tlTimesJS, from.Pos+2000, from.Pos+2000))
			now := run(t, ctx, "times", chromedp.Evaluate[tlTimes](tlTimesJS))
			if d := now.Pic - now.Cam; d > 700 || d < -700 {
				t.Errorf("playing, pic shows %v and cam %v: %.0f ms apart", time.UnixMilli(int64(now.Pic)), time.UnixMilli(int64(now.Cam)), d)
			}
			if now.Pic > from.Pos+8000 {
				t.Errorf("playing from %v, pic is at %v already", time.UnixMilli(int64(from.Pos)), time.UnixMilli(int64(now.Pic)))
			}
			if !run(t, ctx, "rewound", chromedp.Evaluate[bool](`document.getElementById('grid').classList.contains('rewound')`)) {
				t.Error("the grid is not marked as rewound")
			}

			// 4 times real time: the tiles advance about four seconds a second
			act(t, ctx, "4x", chromedp.Evaluate[chromedp.Void](`(() => { const s = document.getElementById('tl-speed'); s.value = '4'; s.dispatchEvent(new Event('change')); })()`))
			a := run(t, ctx, "times", chromedp.Evaluate[tlTimes](tlTimesJS))
			poll(t, ctx, "every tile playing at 4x", fmt.Sprintf(`(() => { const t = %s; return t.pic > %f && t.cam > %f; })()`, tlTimesJS, a.Pic+500, a.Cam+500))
			a = run(t, ctx, "times", chromedp.Evaluate[tlTimes](tlTimesJS))
			wall := time.Now()
			poll(t, ctx, "every tile 4 s on", fmt.Sprintf(`(() => { const t = %s; return t.pic > %f && t.cam > %f; })()`, tlTimesJS, a.Pic+4000, a.Cam+4000))
			if d := time.Since(wall); d > 2500*time.Millisecond {
				t.Errorf("at 4x, 4 s of pictures took %v", d)
			} else {
				t.Logf("at 4x, 4 s of pictures took %v", d)
			}

			// L: live, the pictures new
			act(t, ctx, "L", chromedp.KeyEvent("l"))
			poll(t, ctx, "live", `camhubTimeline.mode() === 'live' && document.getElementById('tl-time').textContent === 'live'`)
			poll(t, ctx, "every tile live", fmt.Sprintf(`(() => { const t = %s; const now = Date.now(); return now - t.pic < 1500 && now - t.cam < 1500; })()`, tlTimesJS))

			for _, p := range problems() {
				t.Errorf("browser console: %s", p)
			}
		})
	}
}

// The timeline on a phone: touch drags it (pointer events), the tiles
// show the time under the finger, release plays from there, the live
// button returns; the page is no wider than the screen.
func TestTimelinePhone(t *testing.T) {
	nc := startTimelineHub(t)
	_, ts := startWeb(t, Config{}, nc)
	tc := timelineSetup(t, nc, 20*time.Second, true)
	ctx, problems := browser(t)
	act(t, ctx, "opening the page",
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile, chromedp.EmulateTouch),
		chromedp.Navigate(ts.URL))
	waitShown(t, ctx, "pic", 0)
	waitShown(t, ctx, "cam", 0)
	poll(t, ctx, "the timeline read", `camhubTimeline.bounds().from !== null`)
	if w := run(t, ctx, "page width", chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > 390 {
		t.Errorf("the page is %d px wide on a 390 px screen", w)
	}
	x, y := barPoint(t, ctx, tc.first.Add(5*time.Second))
	act(t, ctx, "touching the bar", touchAction(input.DispatchTouchEventTypeTouchStart, x, y))
	poll(t, ctx, "every tile within a GOP of the finger", atTimeJS(tlJPEGInterval, time.Second))
	x, y = barPoint(t, ctx, tc.first.Add(12*time.Second))
	act(t, ctx, "dragging", touchAction(input.DispatchTouchEventTypeTouchMove, x, y))
	poll(t, ctx, "every tile within a GOP of the finger", atTimeJS(tlJPEGInterval, time.Second))
	pos := run(t, ctx, "times", chromedp.Evaluate[tlTimes](tlTimesJS)).Pos
	act(t, ctx, "lifting the finger", touchAction(input.DispatchTouchEventTypeTouchEnd, x, y))
	poll(t, ctx, "playing", `camhubTimeline.mode() === 'playing'`)
	poll(t, ctx, "every tile playing on from the time", fmt.Sprintf(`(() => { const t = %s; return t.pic > %f && t.cam > %f; })()`, tlTimesJS, pos+1000, pos+1000))
	saveShot(t, ctx, "timeline-phone")
	// the live button
	live := run(t, ctx, "live button", chromedp.Evaluate[[]float64](`(() => { const r = document.querySelector('#rewind button[data-since="0"]').getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })()`))
	act(t, ctx, "tapping live", chromedp.TapXY(live[0], live[1]))
	poll(t, ctx, "live", `camhubTimeline.mode() === 'live'`)
	poll(t, ctx, "every tile live", fmt.Sprintf(`(() => { const t = %s; const now = Date.now(); return now - t.pic < 1500 && now - t.cam < 1500; })()`, tlTimesJS))
	for _, p := range problems() {
		t.Errorf("browser console: %s", p)
	}
}

// touchAction dispatches a touch event of one finger at x, y (none for
// touchEnd).
func touchAction(typ input.DispatchTouchEventType, x, y float64) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		p := input.DispatchTouchEventParams{Type: typ, TouchPoints: []*input.TouchPoint{}}
		if typ != input.DispatchTouchEventTypeTouchEnd {
			one, zero := 1.0, 0.0
			p.TouchPoints = []*input.TouchPoint{{X: x, Y: y, RadiusX: &one, RadiusY: &one, Force: &one, ID: &zero}}
		}
		_, err := cdp.Call(ctx, tg, input.DispatchTouchEvent, p)
		return err
	})
}

// seekProbeJS is a promise of the milliseconds from the last pointer
// event on the timeline to cond being true (checked every frame); -1
// after 20 s.
func seekProbeJS(cond string) string {
	return fmt.Sprintf(`new Promise((resolve) => {
		const end = performance.now() + 20000;
		const check = () => {
			if (%s) resolve(performance.now() - window.tlPointer);
			else if (performance.now() > end) resolve(-1);
			else requestAnimationFrame(check);
		};
		check();
	})`, cond)
}

// tlPoll is poll that, on failure, says what the tiles and the timeline
// show, and what went to the console.
func tlPoll(t *testing.T, ctx context.Context, problems func() []string, what, expr string) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second)))
	if err == nil {
		return
	}
	state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({times: `+tlTimesJS+`, mode: camhubTimeline.mode(), seeks: camhubTimeline.seeks(), stats: camhubMedia.stats()})`))
	t.Fatalf("%s: %v\nstate: %s\nconsole: %q", what, err, state, problems())
}
