package web

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// evCSS selects event id's entry in the events panel; evJS is it in
// JavaScript.
func evCSS(id string) string { return fmt.Sprintf(`#events .ev[data-id="%s"]`, id) }

func evJS(id string) string { return fmt.Sprintf(`document.querySelector('%s')`, evCSS(id)) }

// clipHash is a JavaScript expression: a hash of the picture the events
// panel's player shows now (an MJPEG <img> or a <video>), drawn small.
const clipHash = `(() => {
  const m = document.querySelector('#events .ev-media');
  if (!m || (m.tagName === 'IMG' ? !m.naturalWidth : m.readyState < 2)) return 0;
  const c = document.createElement('canvas');
  c.width = 32; c.height = 24;
  const x = c.getContext('2d');
  x.drawImage(m, 0, 0, 32, 24);
  let h = 7;
  for (const v of x.getImageData(0, 0, 32, 24).data) h = (h * 31 + v) | 0;
  return h || 1;
})()`

// The events panel in a real browser, on a desktop and on a phone: the
// stored events listed newest first with their thumbnails decoded, a click
// on a JPEG camera's event plays its clip (the picture changes), on an
// H.264 camera's plays it in a <video> (its time advances), an event that
// starts while the panel is open appears in it, and nothing goes to the
// console.
func TestEventsPage(t *testing.T) {
	for _, phone := range []bool{false, true} {
		name := "desktop"
		if phone {
			name = "phone"
		}
		t.Run(name, func(t *testing.T) {
			_, nc := startHub(t)
			s, ts := startWeb(t, Config{}, nc)
			front, back := newCamera(t, nc, "front", 160, 120, 2, 0), newCamera(t, nc, "back", 160, 120, 2, 0)
			front.report(wire.StateStreaming)
			back.report(wire.StateStreaming)
			testenv.Eventually(t, 10*time.Second, "the cameras known", func() bool { return s.known("front") && s.known("back") })
			now := time.Now().Truncate(time.Millisecond)
			jpg := storeEvent(t, nc, "front", now.Add(-10*time.Minute), false, 40, true)
			h264 := storeEvent(t, nc, "back", now.Add(-5*time.Minute), true, 60, true)

			ctx, problems := browser(t)
			if phone {
				if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile)); err != nil {
					t.Fatal(err)
				}
			}
			if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL)); err != nil {
				t.Fatal(err)
			}
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#events-btn`), chromedp.NodeVisible)); err != nil {
				t.Fatal(err)
			}
			poll(t, ctx, "both events listed, newest first, with their thumbnails",
				`[...document.querySelectorAll('#events .ev')].map(e => e.dataset.id).join() === '`+h264.ev.ID+`,`+jpg.ev.ID+`' && `+
					`[...document.querySelectorAll('#events .ev-thumb')].every(i => i.complete && i.naturalWidth === 320)`)
			text := run(t, ctx, "an entry's text", chromedp.Evaluate[string](evJS(jpg.ev.ID)+`.textContent`))
			for _, want := range []string{"front", "4.2% moved", " s"} {
				if !contains(text, want) {
					t.Errorf("the JPEG event's entry says %q, without %q", text, want)
				}
			}
			if phone {
				poll(t, ctx, "the panel as wide as the phone, nothing wider",
					`document.querySelector('#events').getBoundingClientRect().width === 390 && document.documentElement.scrollWidth <= 390 && `+
						evJS(jpg.ev.ID)+`.getBoundingClientRect().right <= 390`)
			}
			saveShot(t, ctx, "events-"+name)

			// the JPEG camera's clip: an MJPEG <img> whose picture changes
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(evCSS(jpg.ev.ID)), chromedp.NodeVisible)); err != nil {
				t.Fatal(err)
			}
			poll(t, ctx, "the JPEG clip playing", `document.querySelector('#events .ev-media')?.tagName === 'IMG' && `+clipHash+` !== 0`)
			first := run(t, ctx, "the clip's picture", chromedp.Evaluate[int](clipHash))
			poll(t, ctx, "the JPEG clip's picture changing", clipHash+` !== 0 && `+clipHash+` !== `+fmt.Sprint(first))
			saveShot(t, ctx, "events-jpeg-"+name)

			// the H.264 camera's clip: a <video> that plays
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(evCSS(h264.ev.ID)), chromedp.NodeVisible)); err != nil {
				t.Fatal(err)
			}
			poll(t, ctx, "the H.264 clip playing", `(() => { const v = document.querySelector('#events .ev-media'); `+
				`return v?.tagName === 'VIDEO' && !v.error && v.videoWidth === 320 && v.currentTime > 0.5; })()`)
			at := run(t, ctx, "the video's time", chromedp.Evaluate[float64](`document.querySelector('#events .ev-media').currentTime`))
			poll(t, ctx, "the H.264 clip's time advancing", fmt.Sprintf(`document.querySelector('#events .ev-media').currentTime > %f`, at+0.5))
			if phone {
				poll(t, ctx, "the player as wide as the phone", `document.querySelector('#events .ev-media').getBoundingClientRect().width <= 390 && document.documentElement.scrollWidth <= 390`)
			}
			saveShot(t, ctx, "events-h264-"+name)

			// an event that starts meanwhile appears, with its thumbnail
			live := storeEvent(t, nc, "front", time.Now().Truncate(time.Millisecond), false, 3, false)
			poll(t, ctx, "the new event listed first", `document.querySelector('#events .ev')?.dataset.id === '`+live.ev.ID+`' && `+
				evJS(live.ev.ID)+`.querySelector('.ev-dur').textContent === 'ongoing' && `+evJS(live.ev.ID)+`.querySelector('img').naturalWidth === 320`)

			// closing the player ends its stream
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#events .ev-close`), chromedp.NodeVisible)); err != nil {
				t.Fatal(err)
			}
			poll(t, ctx, "the player closed", `document.querySelector('#events .ev-player').hidden`)
			testenv.Eventually(t, 10*time.Second, "the clips' replays to end", func() bool { return s.replays.Load() == 0 })
			for _, p := range problems() {
				t.Errorf("browser console: %s", p)
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
