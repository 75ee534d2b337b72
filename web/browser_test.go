package web

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"camhub/internal/testenv/browsertest"
	"camhub/internal/wire"
)

// browser starts headless Chromium for the test (browsertest.Start) with a
// window the size of a laptop's.
func browser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	return browsertest.Start(t, chromedp.WindowSize(1280, 900))
}

// run runs a chromedp action that returns a value, failing the test on
// error.
func run[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// poll waits until the JavaScript expression is true.
func poll(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	run(t, ctx, what, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second)))
}

// tileJS is a JavaScript expression for camera id's tile.
func tileJS(id string) string {
	return fmt.Sprintf(`document.querySelector('.tile[data-id="%s"]')`, id)
}

// shown is how many frames camera id's tile has shown.
func shown(t *testing.T, ctx context.Context, id string) int {
	t.Helper()
	return run(t, ctx, "frames shown", chromedp.Evaluate[int](fmt.Sprintf(`Number(%s?.dataset.shown ?? 0)`, tileJS(id))))
}

// waitShown waits until camera id's tile has shown more than n frames.
func waitShown(t *testing.T, ctx context.Context, id string, n int) {
	t.Helper()
	poll(t, ctx, fmt.Sprintf("tile %s showing frame %d", id, n+1), fmt.Sprintf(`Number(%s?.dataset.shown ?? 0) > %d`, tileJS(id), n))
}

// picture takes a screenshot of camera id's picture.
func tilePicture(t *testing.T, ctx context.Context, id string) image.Image {
	t.Helper()
	data := run(t, ctx, "screenshot of "+id, chromedp.Screenshot(chromedp.CSS(fmt.Sprintf(`.tile[data-id="%s"] img`, id)), chromedp.NodeVisible))
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot of %s: %v", id, err)
	}
	return img
}

// difference is the mean absolute difference of two pictures' pixels, per
// channel, 0 to 255.
func difference(a, b image.Image) float64 {
	r := a.Bounds().Intersect(b.Bounds())
	if r.Empty() {
		return 255
	}
	var sum, n float64
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			r1, g1, b1, _ := a.At(x, y).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			for _, d := range [3]int64{int64(r1) - int64(r2), int64(g1) - int64(g2), int64(b1) - int64(b2)} {
				sum += float64(max(d, -d)) / 257
			}
			n += 3
		}
	}
	return sum / n
}

// saveShot writes a screenshot of the page to $CAMHUB_WEB_SHOTS/name.png,
// if that is set, for a person to look at.
func saveShot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("CAMHUB_WEB_SHOTS")
	if dir == "" {
		return
	}
	data := run(t, ctx, "page screenshot", chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(dir, name+".png"), data, 0o644); err != nil {
		t.Error(err)
	}
}

// The page in a real browser: a tile per camera with a moving picture,
// cameras that join appear, a click shows one camera alone, the rewind
// buttons replay from the buffer, and nothing goes to the console.
func TestPage(t *testing.T) {
	_, nc := startHub(t)
	_, ts := startWeb(t, Config{}, nc)
	alpha := newCamera(t, nc, "alpha", 160, 120, 50, 0)
	beta := newCamera(t, nc, "beta", 160, 90, 50, 0)
	// alpha has 20 s in the buffer already, one frame every 500 ms
	alpha.past(40, 500*time.Millisecond, time.Now())
	alpha.run(100 * time.Millisecond)
	beta.run(100 * time.Millisecond)
	// delta has stopped
	delta := newCamera(t, nc, "delta", 64, 48, 1, 0)
	delta.frame()
	delta.report(wire.StateStopped)

	ctx, problems := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL)); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "marking the page", chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))

	// a tile per camera, each showing its pictures as they come
	waitShown(t, ctx, "alpha", 0)
	waitShown(t, ctx, "beta", 0)
	first := tilePicture(t, ctx, "alpha")
	waitShown(t, ctx, "alpha", shown(t, ctx, "alpha")+2)
	second := tilePicture(t, ctx, "alpha")
	if d := difference(first, second); d < 5 {
		t.Errorf("alpha's picture did not change between two screenshots (mean difference %.1f)", d)
	}
	if b := tilePicture(t, ctx, "beta"); difference(second, b) < 5 {
		t.Error("alpha's and beta's tiles show the same picture")
	}
	poll(t, ctx, "fps and age in the captions",
		tileJS("alpha")+`.querySelector('.fps').textContent.endsWith(' fps') && `+tileJS("alpha")+`.querySelector('.age').textContent.endsWith(' s')`)
	// an offline camera says so
	poll(t, ctx, "delta offline", tileJS("delta")+`?.classList.contains('down') && `+tileJS("delta")+`.querySelector('.note').textContent.startsWith('offline')`)
	saveShot(t, ctx, "grid")

	// a camera that joins appears without a reload
	gamma := newCamera(t, nc, "gamma", 120, 120, 50, 0)
	gamma.run(100 * time.Millisecond)
	waitShown(t, ctx, "gamma", 0)
	poll(t, ctx, "tiles in order", `[...document.querySelectorAll('.tile')].map(e => e.dataset.id).join() === 'alpha,beta,delta,gamma'`)

	// a click shows the camera alone, and back
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`.tile[data-id="beta"] .pic`), chromedp.NodeVisible)); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "beta alone", tileJS("alpha")+`.offsetParent === null && `+tileJS("gamma")+`.offsetParent === null && `+
		tileJS("beta")+`.offsetParent !== null && location.hash === '#cam=beta'`)
	waitShown(t, ctx, "beta", shown(t, ctx, "beta")+2)
	alone := run(t, ctx, "beta's size alone", chromedp.Evaluate[float64](tileJS("beta")+`.getBoundingClientRect().width`))
	saveShot(t, ctx, "alone")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#back`), chromedp.NodeVisible)); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "all tiles again", `[...document.querySelectorAll('.tile')].every(e => e.offsetParent !== null)`)
	if inGrid := run(t, ctx, "beta's size in the grid", chromedp.Evaluate[float64](tileJS("beta")+`.getBoundingClientRect().width`)); alone <= inGrid {
		t.Errorf("beta alone is %.0f px wide, in the grid %.0f", alone, inGrid)
	}

	// rewind 10 s: alpha's frames are 10 s old, and still come; then live
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#rewind button[data-since="10"]`), chromedp.NodeVisible)); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "alpha rewound 10 s", `document.querySelector('.grid').classList.contains('rewound') && Number(`+tileJS("alpha")+`.dataset.age) > 8000`)
	waitShown(t, ctx, "alpha", shown(t, ctx, "alpha")+2)
	if age := run(t, ctx, "rewound age", chromedp.Evaluate[int](`Number(`+tileJS("alpha")+`.dataset.age)`)); age < 8000 || age > 15000 {
		t.Errorf("rewound 10 s, alpha's frames are %d ms old", age)
	}
	if label := run(t, ctx, "rewound label", chromedp.Evaluate[string](tileJS("alpha")+`.querySelector('.age').textContent`)); !strings.HasPrefix(label, "\u2212") {
		t.Errorf("rewound tile's age label %q", label)
	}
	saveShot(t, ctx, "rewound")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#rewind button[data-since="0"]`), chromedp.NodeVisible)); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "alpha live again", `!document.querySelector('.grid').classList.contains('rewound') && Number(`+tileJS("alpha")+`.dataset.age) < 2000`)

	// the snapshot link
	href := run(t, ctx, "snapshot link", chromedp.Evaluate[string](tileJS("gamma")+`.querySelector('a.snap').href`))
	if href != ts.URL+"/cams/gamma/snapshot.jpg?download=1" {
		t.Errorf("snapshot link %q", href)
	}

	if !run(t, ctx, "checking for a reload", chromedp.Evaluate[bool](`window.notReloaded === true`)) {
		t.Error("the page reloaded")
	}
	for _, p := range problems() {
		t.Errorf("browser console: %s", p)
	}
}

// Back from a camera shown alone, a rewind at once goes as far back as
// asked: the timeline's span, read for the camera that was alone (which
// had only started), does not cut it short before the span of all the
// cameras has been read.
func TestRewindAfterAlone(t *testing.T) {
	_, nc := startHub(t)
	_, ts := startWeb(t, Config{}, nc)
	// old has 20 s in the buffer
	old := newCamera(t, nc, "old", 160, 120, 20, 0)
	now := time.Now()
	old.past(40, 500*time.Millisecond, now)
	old.run(100 * time.Millisecond)
	ctx, problems := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL)); err != nil {
		t.Fatal(err)
	}
	waitShown(t, ctx, "old", 0)
	poll(t, ctx, "the timeline spanning old's buffer", fmt.Sprintf(`camhubTimeline.bounds().from < %d`, now.Add(-15*time.Second).UnixMilli()))

	// young starts now, and is shown alone: the timeline spans its frames
	young := newCamera(t, nc, "young", 160, 90, 20, 0)
	young.run(100 * time.Millisecond)
	waitShown(t, ctx, "young", 0)
	started := time.Now()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`.tile[data-id="young"] .pic`), chromedp.NodeVisible)); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the timeline spanning young's buffer", fmt.Sprintf(`camhubTimeline.bounds().from > %d`, now.UnixMilli()))

	// back to all, and rewind 10 s with the next click, before the page
	// hears from the server again
	behind := run(t, ctx, "back and rewind", chromedp.Evaluate[float64](`(() => {
		document.getElementById('back').click();
		document.querySelector('#rewind button[data-since="10"]').click();
		return Date.now() - camhubTimeline.position();
	})()`))
	if waited := time.Since(started); waited > 8*time.Second {
		// young's span is 8 s long already: cutting short would not show
		t.Logf("young has been sending for %v: the rewind is not checked against its span", waited)
	}
	if behind < 9500 || behind > 10500 {
		t.Fatalf("rewound 10 s after showing young alone, the timeline is %.0f ms behind", behind)
	}
	poll(t, ctx, "old rewound 10 s", `Number(`+tileJS("old")+`.dataset.age) > 8000`)

	// alone and back in one go, while the span of the one is being read:
	// the timeline goes on reading the span of all
	poll(t, ctx, "the timeline spanning all", fmt.Sprintf(`camhubTimeline.bounds().from < %d`, now.Add(-15*time.Second).UnixMilli()))
	since := run(t, ctx, "alone and back", chromedp.Evaluate[float64](`(() => {
		document.querySelector('.tile[data-id="young"] .pic').click();
		document.getElementById('back').click();
		return Date.now();
	})()`))
	poll(t, ctx, "the timeline read again", fmt.Sprintf(`camhubTimeline.bounds().to > %f + 1000`, since))
	for _, p := range problems() {
		t.Errorf("browser console: %s", p)
	}
}

// The page on a phone: one column of tiles, as wide as the screen.
func TestPagePhone(t *testing.T) {
	_, nc := startHub(t)
	_, ts := startWeb(t, Config{}, nc)
	for _, id := range []string{"a", "b"} {
		newCamera(t, nc, id, 160, 120, 5, 0).run(200 * time.Millisecond)
	}
	ctx, problems := browser(t)
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile),
		chromedp.Navigate(ts.URL)); err != nil {
		t.Fatal(err)
	}
	waitShown(t, ctx, "a", 0)
	waitShown(t, ctx, "b", 0)
	poll(t, ctx, "one column", tileJS("a")+`.getBoundingClientRect().left === `+tileJS("b")+`.getBoundingClientRect().left && `+
		tileJS("a")+`.getBoundingClientRect().width > 350 && document.documentElement.scrollWidth <= 390`)
	saveShot(t, ctx, "phone")
	for _, p := range problems() {
		t.Errorf("browser console: %s", p)
	}
}
