package mp4

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"camhub/internal/h264"
	"camhub/internal/testenv/browsertest"
)

// msePage appends the init segment then every fragment to a SourceBuffer,
// plays the result at twice the speed and records what it saw.
const msePage = `<!doctype html><video id=v muted playsinline></video><script>
const v = document.getElementById('v'), ms = new MediaSource();
window.result = null; window.failure = '';
v.addEventListener('error', () => { window.failure = 'video error ' + (v.error && v.error.message); });
v.addEventListener('ended', () => {
  const q = v.getVideoPlaybackQuality();
  window.result = {frames: q.totalVideoFrames, dropped: q.droppedVideoFrames, width: v.videoWidth, height: v.videoHeight,
    start: window.start, end: window.end};
});
ms.addEventListener('sourceopen', async () => {
  try {
    const sb = ms.addSourceBuffer(MIME);
    const append = b => new Promise((res, rej) => {
      sb.addEventListener('updateend', res, {once: true});
      sb.addEventListener('error', () => rej(new Error('append failed')), {once: true});
      sb.appendBuffer(b);
    });
    await append(await (await fetch('/init')).arrayBuffer());
    for (let i = 0; i < COUNT; i++) await append(await (await fetch('/frag/' + i)).arrayBuffer());
    window.start = sb.buffered.start(0); window.end = sb.buffered.end(sb.buffered.length - 1);
    ms.endOfStream();
    v.playbackRate = 2;
    await v.play();
  } catch (e) { window.failure = String(e); }
});
v.src = URL.createObjectURL(ms);
</script>`

// TestMSEChromium gives Debian's Chromium the init segment and the
// fragments through Media Source Extensions, as a page of camhub's will:
// it takes the codec string, buffers the whole clip (0 to 3 s) and
// decodes every frame, B-frames included.
func TestMSEChromium(t *testing.T) {
	browsertest.Need(t)
	for _, tc := range []struct {
		name   string
		bf     int
		perGOP bool
	}{
		{"a fragment per frame", 0, false},
		{"a fragment per GOP with B-frames", 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := makeClip(t, "640:360", 45, 15, tc.bf)
			m, err := NewMuxer(c.aus[0])
			if err != nil {
				t.Fatal(err)
			}
			var frags [][]byte
			var run []Sample
			flush := func(end time.Duration) {
				f, err := m.Fragment(run, end)
				if err != nil {
					t.Fatal(err)
				}
				frags, run = append(frags, f), run[:0]
			}
			for i, au := range c.aus {
				if len(run) > 0 && (!tc.perGOP || h264.IsKeyframe(au)) {
					flush(c.dts[i])
				}
				run = append(run, Sample{AU: au, PTS: c.pts[i], DTS: c.dts[i]})
			}
			flush(c.dts[len(c.dts)-1] + interval)

			mux := http.NewServeMux()
			page := strings.NewReplacer("MIME", strconv.Quote(m.MIME()), "COUNT", strconv.Itoa(len(frags))).Replace(msePage)
			mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Write([]byte(page))
			})
			mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
			mux.HandleFunc("GET /init", func(w http.ResponseWriter, _ *http.Request) { w.Write(m.Init()) })
			mux.HandleFunc("GET /frag/{n}", func(w http.ResponseWriter, r *http.Request) {
				n, err := strconv.Atoi(r.PathValue("n"))
				if err != nil || n < 0 || n >= len(frags) {
					http.NotFound(w, r)
					return
				}
				w.Write(frags[n])
			})
			ts := httptest.NewServer(mux)
			defer ts.Close()

			ctx, problems := browser(t)
			if _, err := chromedp.Run(ctx, chromedp.Navigate(ts.URL)); err != nil {
				t.Fatal(err)
			}
			type result struct {
				Frames, Dropped, Width, Height int
				Start, End                     float64
			}
			r, err := chromedp.Run(ctx, chromedp.Poll[result](`window.failure ? (() => { throw new Error(window.failure) })() : window.result`,
				chromedp.WithPollingTimeout(60*time.Second)))
			if err != nil {
				t.Fatalf("playing through MSE: %v; console: %q", err, problems())
			}
			t.Logf("Chromium: %+v (%s)", r, m.MIME())
			if r.Frames != 45 || r.Width != 640 || r.Height != 360 {
				t.Errorf("Chromium decoded %d frames of %dx%d, want 45 of 640x360", r.Frames, r.Width, r.Height)
			}
			if r.Start > 0.001 || r.End < 2.999 || r.End > 3.001 {
				t.Errorf("buffered %.4f to %.4f s, want 0 to 3 s", r.Start, r.End)
			}
			if p := problems(); len(p) > 0 {
				t.Errorf("console: %q", p)
			}
		})
	}
}

// browser starts headless Chromium for the test (browsertest.Start),
// playing media without a user's gesture.
func browser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	return browsertest.Start(t, chromedp.Flag("autoplay-policy", "no-user-gesture-required"))
}

// filePage plays a file with a plain video element, as a browser opens
// an exported file, at twice the speed, and records what it saw.
const filePage = `<!doctype html><video id=v muted playsinline src="/out.mp4"></video><script>
const v = document.getElementById('v');
window.result = null; window.failure = '';
v.addEventListener('error', () => { window.failure = 'video error ' + (v.error && v.error.message); });
v.addEventListener('loadedmetadata', () => { window.duration = v.duration; v.playbackRate = 2; v.play().catch(e => { window.failure = String(e); }); });
v.addEventListener('ended', () => {
  const q = v.getVideoPlaybackQuality();
  window.result = {frames: q.totalVideoFrames, width: v.videoWidth, height: v.videoHeight, duration: window.duration};
});
</script>`

// TestExportChromium: Chromium plays an exported file from start to end,
// B-frames included: every frame decoded, the duration the timestamps'.
func TestExportChromium(t *testing.T) {
	browsertest.Need(t)
	c := makeClip(t, "640:360", 45, 15, 2)
	var file bytes.Buffer
	w := NewWriter(&file, Options{})
	for i, au := range c.aus {
		if err := w.WriteAU(au, c.pts[i], c.dts[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(filePage))
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /out.mp4", func(rw http.ResponseWriter, r *http.Request) {
		http.ServeContent(rw, r, "out.mp4", time.Time{}, bytes.NewReader(file.Bytes()))
	})
	ts := httptest.NewServer(mux)
	defer ts.Close()

	ctx, problems := browser(t)
	if _, err := chromedp.Run(ctx, chromedp.Navigate(ts.URL)); err != nil {
		t.Fatal(err)
	}
	type result struct {
		Frames, Width, Height int
		Duration              float64
	}
	r, err := chromedp.Run(ctx, chromedp.Poll[result](`window.failure ? (() => { throw new Error(window.failure) })() : window.result`,
		chromedp.WithPollingTimeout(60*time.Second)))
	if err != nil {
		t.Fatalf("playing the file: %v; console: %q", err, problems())
	}
	t.Logf("Chromium: %+v", r)
	if r.Frames != 45 || r.Width != 640 || r.Height != 360 || r.Duration < 2.999 || r.Duration > 3.001 {
		t.Errorf("Chromium played %d frames of %dx%d lasting %.4f s, want 45 of 640x360 lasting 3 s", r.Frames, r.Width, r.Height, r.Duration)
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("console: %q", p)
	}
}
