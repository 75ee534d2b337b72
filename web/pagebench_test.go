package web

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"

	"camhub/internal/proc"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// The page's benchmarks (docs/BENCHMARKS.md, "The web page"): the age of
// the picture each player shows, over a run, and Chromium's CPU per frame
// shown. Without $CAMHUB_PAGE_BENCH they are short tests that check what
// the benchmarks rely on (each player reports finite, non-negative ages;
// Chromium's processes and the frames shown are counted), with no timed
// assertion. With it (a duration: how long to measure) they measure and,
// with $CAMHUB_PAGE_BENCH_OUT, append their tables to that file in
// Markdown (bench/run.sh puts them into BENCHMARKS.md).

// pageBench is how long to measure: $CAMHUB_PAGE_BENCH if set (bench is
// then true), else short.
func pageBench(t *testing.T, short time.Duration) (d time.Duration, bench bool) {
	t.Helper()
	v := os.Getenv("CAMHUB_PAGE_BENCH")
	if v == "" {
		return short, false
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("CAMHUB_PAGE_BENCH=%q: want a duration", v)
	}
	return d, true
}

// pageWarmUp is how long a benchmark lets the page run before measuring.
const pageWarmUp = 5 * time.Second

// pageReport appends to $CAMHUB_PAGE_BENCH_OUT, if set.
func pageReport(t *testing.T, format string, args ...any) {
	t.Helper()
	out := os.Getenv("CAMHUB_PAGE_BENCH_OUT")
	if out == "" {
		return
	}
	f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, format, args...); err != nil {
		t.Fatal(err)
	}
}

// loadNow says the machine's load average, for the report.
func loadNow(t *testing.T) string {
	l, err := proc.Loadavg()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%.2f %.2f %.2f", l[0], l[1], l[2])
}

// sleepFor waits d, or fails when the browser's context ends first.
func sleepFor(t *testing.T, ctx context.Context, d time.Duration) {
	t.Helper()
	wait := time.NewTimer(d)
	defer wait.Stop()
	select {
	case <-wait.C:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
}

// pagePlayers are the ways the page shows a camera: its H.264 played by
// Media Source Extensions or by WebCodecs, or JPEG tiles (api/stream).
var pagePlayers = []struct {
	name  string // ?player=
	codec string // of the cameras it shows
}{
	{"mse", wire.CodecH264},
	{"webcodecs", wire.CodecH264},
	{"jpeg", wire.CodecJPEG},
}

// pageCameras publishes cameras ids of codec at fps, 640x480 (w x h) real
// footage, captured now, as agents do, until the returned function (or
// the test's end) stops them.
func pageCameras(t *testing.T, nc *nats.Conn, codec string, ids []string, w, h, fps int) (stop func()) {
	t.Helper()
	var aus, jpegs [][]byte
	if codec == wire.CodecH264 {
		aus = testenv.H264Clip(t, w, h, 3*fps, fps) // a keyframe a second
	} else {
		jpegs = footageJPEGs(t, w, h, 3*fps)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	stop = func() {
		cancel()
		wg.Wait()
	}
	t.Cleanup(stop)
	wg.Go(func() {
		tick := time.NewTicker(time.Second / time.Duration(fps))
		defer tick.Stop()
		for seq := uint64(1); ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			now := time.Now()
			for _, id := range ids {
				var m *nats.Msg
				if aus != nil {
					m = testenv.VideoMsg(t, id, seq, now, aus[int(seq-1)%len(aus)], w, h)
				} else {
					m = testenv.FrameMsg(id, seq, now, jpegs[int(seq-1)%len(jpegs)], w, h)
				}
				if err := nc.PublishMsg(m); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	return stop
}

// shownJS is a JavaScript expression: the frames the page's tiles have
// shown (an MSE player's decoded frames less those it dropped; a
// WebCodecs tile's drawn; a JPEG tile's loaded).
const shownJS = `(() => {
  const s = camhubMedia.stats();
  let n = 0;
  for (const e of document.querySelectorAll('.tile')) {
    const p = s[e.dataset.id];
    n += p ? (p.player === 'mse' ? p.frames - p.dropped : p.frames) : Number(e.dataset.shown);
  }
  return n;
})()`

// agesJS is a JavaScript expression: camera id's age samples from the
// from-th on, -1 for any that is not a finite number.
func agesJS(id string, from int) string {
	return fmt.Sprintf(`camhubAges(%q, %d).map((a) => Number.isFinite(a) ? a : -1)`, id, from)
}

// TestPageAge: the age of the picture the page shows (its capture time
// against the clock of the same machine) for each player, one page each,
// side by side, on loopback, one 640x480 camera at 15 fps each, over the
// run in ten windows, to see whether it grows. Short, it checks that
// every player reports ages, finite and not negative, and shows them in
// its tile's caption.
func TestPageAge(t *testing.T) {
	length, bench := pageBench(t, 3*time.Second)
	windows := 1
	if bench {
		windows = 10
	}
	_, nc := startHub(t)
	_, ts := startWeb(t, Config{}, nc)
	pageCameras(t, nc, wire.CodecH264, []string{"h264"}, 640, 480, 15)
	pageCameras(t, nc, wire.CodecJPEG, []string{"jpeg"}, 640, 480, 15)

	type page struct {
		player, cam string
		ctx         context.Context
		problems    func() []string
		from, shown int
		ages        []int   // all samples
		windows     [][]int // per window
	}
	var pages []*page
	for _, p := range pagePlayers {
		cam := "h264"
		if p.codec == wire.CodecJPEG {
			cam = "jpeg"
		}
		ctx, problems := browser(t)
		pg := &page{player: p.name, cam: cam, ctx: ctx, problems: problems}
		if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/?player="+p.name+"#cam="+cam)); err != nil {
			t.Fatal(err)
		}
		if mode := run(t, ctx, "player", chromedp.Evaluate[string](`camhubMedia.mode()`)); mode != p.name {
			t.Fatalf("?player=%s: the page plays H.264 with %q", p.name, mode)
		}
		pages = append(pages, pg)
	}
	for _, pg := range pages {
		poll(t, pg.ctx, pg.player+": ages measured", fmt.Sprintf(`camhubAges(%q).length > 0`, pg.cam))
	}
	if bench {
		sleepFor(t, pages[0].ctx, pageWarmUp) // past the pages' start
	}
	for _, pg := range pages {
		pg.from = run(t, pg.ctx, "age samples", chromedp.Evaluate[int](fmt.Sprintf(`camhubAges(%q).length`, pg.cam)))
		pg.shown = run(t, pg.ctx, "frames shown", chromedp.Evaluate[int](shownJS))
	}
	load0 := loadNow(t)
	start := time.Now()
	for w := 1; w <= windows; w++ {
		sleepFor(t, pages[0].ctx, time.Until(start.Add(time.Duration(w)*length/time.Duration(windows))))
		for _, pg := range pages {
			ages := run(t, pg.ctx, "age samples", chromedp.Evaluate[[]int](agesJS(pg.cam, pg.from)))
			pg.from += len(ages)
			pg.ages = append(pg.ages, ages...)
			pg.windows = append(pg.windows, slices.Sorted(slices.Values(ages)))
		}
	}
	elapsed := time.Since(start)
	load1 := loadNow(t)

	var table, over strings.Builder
	fmt.Fprintf(&over, "| window |")
	for _, pg := range pages {
		fmt.Fprintf(&over, " %s p99 ms |", pg.player)
	}
	fmt.Fprintf(&over, "\n|---|%s\n", strings.Repeat("---|", len(pages)))
	for w := range windows {
		fmt.Fprintf(&over, "| %s–%s |", fmtWindow(time.Duration(w)*length/time.Duration(windows)), fmtWindow(time.Duration(w+1)*length/time.Duration(windows)))
		for _, pg := range pages {
			fmt.Fprintf(&over, " %d |", percentile(pg.windows[w], 99))
		}
		over.WriteString("\n")
	}
	for _, pg := range pages {
		if len(pg.ages) == 0 {
			t.Errorf("%s: no age measured over %v", pg.player, elapsed)
			continue
		}
		if i := slices.IndexFunc(pg.ages, func(a int) bool { return a < 0 }); i >= 0 {
			t.Errorf("%s: age sample %d of %d is not a finite number, or negative", pg.player, i, len(pg.ages))
		}
		all := slices.Sorted(slices.Values(pg.ages))
		if all[len(all)-1] == 0 {
			t.Errorf("%s: every age measured is 0", pg.player)
		}
		shown := run(t, pg.ctx, "frames shown", chromedp.Evaluate[int](shownJS)) - pg.shown
		label := run(t, pg.ctx, "age caption", chromedp.Evaluate[string](tileJS(pg.cam)+`.querySelector('.age').textContent`))
		if !strings.HasSuffix(label, " s") {
			t.Errorf("%s: the tile's caption says its age as %q", pg.player, label)
		}
		t.Logf("%s: %d age samples over %v: p50 %d ms, p99 %d ms, max %d ms; %d frames shown",
			pg.player, len(all), elapsed.Round(time.Second), percentile(all, 50), percentile(all, 99), all[len(all)-1], shown)
		fmt.Fprintf(&table, "| %s | %d | %d | %d | %d | %.1f |\n", pg.player, len(all), percentile(all, 50), percentile(all, 99),
			all[len(all)-1], float64(shown)/elapsed.Seconds())
		for _, p := range pg.problems() {
			t.Errorf("%s: browser console: %s", pg.player, p)
		}
	}
	t.Logf("p99 of the age by window:\n%s", over.String())
	if bench {
		pageReport(t, "**Glass to glass** (`TestPageAge`, %s UTC, %v; load average %s at the start, %s at the end): "+
			"a 640x480 camera of real footage at 15 fps (H.264: libx264 ultrafast, a keyframe a second; JPEG: ffmpeg -q:v 5), "+
			"captured (timestamped) just before it is published to an in-process hub, through the web server "+
			"to headless Chromium on loopback, one page per player, side by side, each showing its camera alone, "+
			"measured from 5 s after the pages started. "+
			"The age is the page's own: every 100 ms, now minus the capture time of the picture the tile shows "+
			"(an MSE player's at its playhead; WebCodecs' last drawn; a JPEG tile's last loaded), the same clock at both ends; "+
			"the time to put a shown picture on the screen (a frame of the compositor, ≤ 17 ms) is not in it.\n\n"+
			"| player | samples | p50 ms | p99 ms | max ms | frames shown/s |\n|---|---|---|---|---|---|\n%s\n"+
			"**Over time** (the same run): p99 of the age in each tenth of the run.\n\n%s\n",
			start.UTC().Format("2006-01-02 15:04"), length, load0, load1, table.String(), over.String())
	}
}

// fmtWindow writes the bounds of a window of the run: "1:30" or "12 s".
func fmtWindow(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.0f s", d.Seconds())
	}
	s := int(d.Round(time.Second).Seconds())
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// TestPageCPU: Chromium's CPU time per frame it shows, a grid of H.264
// tiles (MSE, WebCodecs) against one of JPEG tiles: every process of the
// browser (its /proc tree), over a window once every tile shows pictures,
// divided by the frames the tiles showed in it. Benchmarked: 16 cameras of
// 640x480 footage at 15 fps; short: 4 of 320x240, checking that the
// browser's CPU and the frames shown are counted.
func TestPageCPU(t *testing.T) {
	length, bench := pageBench(t, 2*time.Second)
	n, w, h := 4, 320, 240
	if bench {
		n, w, h = 16, 640, 480
		length = min(length, 30*time.Second)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("cam%02d", i)
	}
	var table strings.Builder
	load0 := loadNow(t)
	started := time.Now()
	for _, p := range pagePlayers {
		t.Run(p.name, func(t *testing.T) {
			_, nc := startHub(t)
			_, ts := startWeb(t, Config{}, nc)
			pageCameras(t, nc, p.codec, ids, w, h, 15)
			ctx, problems := browser(t)
			if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/?player="+p.name)); err != nil {
				t.Fatal(err)
			}
			poll(t, ctx, "every tile showing pictures", fmt.Sprintf(
				`document.querySelectorAll('.tile').length === %d && [...document.querySelectorAll('.tile')].every((e) => Number(e.dataset.shown) > 0)`, n))
			if bench {
				sleepFor(t, ctx, pageWarmUp)
			}
			pid := chromedp.FromContext(ctx).Browser.Process().Pid
			cpu0, procs, err := proc.TreeCPU(pid)
			if err != nil {
				t.Fatal(err)
			}
			shown0, t0 := run(t, ctx, "frames shown", chromedp.Evaluate[int](shownJS)), time.Now()
			sleepFor(t, ctx, length)
			cpu1, _, err := proc.TreeCPU(pid)
			if err != nil {
				t.Fatal(err)
			}
			shown, el := run(t, ctx, "frames shown", chromedp.Evaluate[int](shownJS))-shown0, time.Since(t0)
			cpu := cpu1 - cpu0
			if shown <= 0 || cpu <= 0 || procs < 2 {
				t.Errorf("%d frames shown, Chromium (%d processes) used %v of CPU", shown, procs, cpu)
			}
			perFrame := float64(cpu) / 1e6 / float64(max(shown, 1))
			t.Logf("%s, %d cameras %dx%d at 15 fps: %d frames shown in %v (%.0f/s), Chromium (%d processes) %v of CPU (%.0f %% of a core): %.2f ms a frame",
				p.name, n, w, h, shown, el.Round(time.Millisecond), float64(shown)/el.Seconds(), procs, cpu,
				100*cpu.Seconds()/el.Seconds(), perFrame)
			fmt.Fprintf(&table, "| %s | %.0f | %.0f | %.2f |\n", p.name, float64(shown)/el.Seconds(), 100*cpu.Seconds()/el.Seconds(), perFrame)
			for _, p := range problems() {
				t.Errorf("browser console: %s", p)
			}
		})
	}
	if bench {
		pageReport(t, "**Chromium's CPU per frame shown** (`TestPageCPU`, %s UTC; load average %s at the start, %s at the end): "+
			"%d cameras of real footage, %dx%d at 15 fps (%d frames/s offered), a grid of them in headless Chromium (1280x900, "+
			"software decoding and drawing, no GPU) on loopback; the CPU time of all of Chromium's processes (its /proc tree) "+
			"over %v from 5 s after every tile shows pictures, divided by the frames the tiles showed in it. %d cores.\n\n"+
			"| tiles | frames shown/s | Chromium CPU (%% of a core) | CPU ms per frame shown |\n|---|---|---|---|\n%s\n",
			started.UTC().Format("2006-01-02 15:04"), load0, loadNow(t), n, w, h, 15*n, length, runtime.NumCPU(), table.String())
	}
}
