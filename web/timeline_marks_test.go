package web

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// markJS is a JavaScript expression for event id's mark on the timeline.
func markJS(id string) string {
	return fmt.Sprintf(`document.querySelector('#tl-marks .tl-mark[data-id="%s"]')`, id)
}

// markOffJS is a JavaScript expression: how many pixels event id's mark
// is from where the bar puts its start time (NaN: not shown).
func markOffJS(id string, start time.Time) string {
	return fmt.Sprintf(`(() => {
		const m = %s;
		if (!m || m.hidden) return NaN;
		const b = document.getElementById('tl-bar');
		const r = b.getBoundingClientRect();
		const mr = m.getBoundingClientRect();
		const from = Number(b.dataset.from), to = Number(b.dataset.to);
		return Math.abs(mr.left + mr.width / 2 - (r.left + (%d - from) / (to - from) * r.width));
	})()`, markJS(id), start.UnixMilli())
}

// The detector's events on the timeline, on a desktop and on a phone:
// events stored as the detector stores them (EVENTS and CLIPS) of a JPEG
// and an H.264 camera are marks on the bar at their start; a click (a tap)
// on one while live plays every tile from its start; paused, a click on
// the other shows every tile exactly at its start; a camera shown alone
// has only its own marks; nothing goes to the console.
func TestTimelineMarks(t *testing.T) {
	for _, phone := range []bool{false, true} {
		name := "desktop"
		if phone {
			name = "phone"
		}
		t.Run(name, func(t *testing.T) {
			nc := startTimelineHub(t)
			_, ts := startWeb(t, Config{}, nc)
			tc := timelineSetup(t, nc, 20*time.Second, true)
			picAt := tc.first.Add(6 * time.Second).Truncate(time.Millisecond)
			camAt := tc.first.Add(14*time.Second + 30*time.Millisecond).Truncate(time.Millisecond)
			picEv := storeEvent(t, nc, "pic", picAt, false, 10, true).ev
			camEv := storeEvent(t, nc, "cam", camAt, true, 20, true).ev

			ctx, problems := browser(t)
			if phone {
				act(t, ctx, "a phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile, chromedp.EmulateTouch))
			}
			act(t, ctx, "opening the page", chromedp.Navigate(ts.URL))
			waitShown(t, ctx, "pic", 0)
			waitShown(t, ctx, "cam", 0)
			poll(t, ctx, "both events marked where their times are on the bar", fmt.Sprintf(`%s < 2 && %s < 2`,
				markOffJS(picEv.ID, picAt), markOffJS(camEv.ID, camAt)))
			if title := run(t, ctx, "a mark's title", chromedp.Evaluate[string](markJS(camEv.ID)+`.title`)); !contains(title, "cam") || !contains(title, "4.2% moved") {
				t.Errorf("the H.264 camera's event's mark says %q", title)
			}
			if w := run(t, ctx, "a mark's width", chromedp.Evaluate[float64](markJS(picEv.ID)+`.getBoundingClientRect().width`)); w < 20 {
				t.Errorf("a mark is %.0f px wide: too narrow for a finger", w)
			}
			saveShot(t, ctx, "timeline-marks-"+name)
			click := func(id string) {
				t.Helper()
				if phone {
					xy := run(t, ctx, "the mark", chromedp.Evaluate[[]float64](`(() => { const r = `+markJS(id)+`.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })()`))
					act(t, ctx, "tapping the mark", chromedp.TapXY(xy[0], xy[1]))
				} else {
					act(t, ctx, "clicking the mark", chromedp.Click(chromedp.CSS(`#tl-marks .tl-mark[data-id="`+id+`"]`), chromedp.NodeVisible))
				}
			}

			// live, a click plays every tile from the event's start
			click(picEv.ID)
			poll(t, ctx, "playing", `camhubTimeline.mode() === 'playing'`)
			tlPoll(t, ctx, problems, "every tile playing from the event", fmt.Sprintf(`(() => { const t = %s;
				return t.pic >= %d && t.pic < %d && t.cam >= %d && t.cam < %d; })()`, tlTimesJS,
				picAt.UnixMilli(), picAt.Add(5*time.Second).UnixMilli(), picAt.Add(-tlVideoInterval).UnixMilli(), picAt.Add(5*time.Second).UnixMilli()))

			// paused, a click shows every tile exactly at the event's start
			run(t, ctx, "pausing", chromedp.Evaluate[chromedp.Void](`camhubTimeline.pause()`))
			poll(t, ctx, "paused", `camhubTimeline.mode() === 'paused'`)
			click(camEv.ID)
			poll(t, ctx, "at the event", fmt.Sprintf(`camhubTimeline.mode() === 'paused' && Math.abs(Number(document.getElementById('tl-bar').dataset.pos) - %d) < 1`, camAt.UnixMilli()))
			tlPoll(t, ctx, problems, "every tile within a frame of the event's start", atTimeJS(tlJPEGInterval, tlVideoInterval+2*time.Millisecond))

			// alone, a camera has its own marks only
			run(t, ctx, "pic alone", chromedp.Evaluate[chromedp.Void](`location.hash = '#cam=pic'`))
			poll(t, ctx, "only pic's mark", markJS(camEv.ID)+`.hidden && !`+markJS(picEv.ID)+`.hidden`)
			for _, p := range problems() {
				t.Errorf("browser console: %s", p)
			}
		})
	}
}
