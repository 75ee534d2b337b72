package web

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/replay"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// videoCamera publishes an H.264 clip live, looped, as an agent does: an
// access unit every interval captured now, Frame-Seq from 1.
type videoCamera struct {
	t    testing.TB
	nc   *nats.Conn
	id   string
	w, h int
	aus  [][]byte // the clip; its length a multiple of its GOP

	mu  sync.Mutex
	seq uint64
}

func newVideoCamera(t testing.TB, nc *nats.Conn, id string, w, h, frames, gop int) *videoCamera {
	return &videoCamera{t: t, nc: nc, id: id, w: w, h: h, aus: testenv.H264Clip(t, w, h, frames, gop)}
}

// next publishes the next access unit and returns its Frame-Seq.
func (c *videoCamera) next() uint64 {
	c.mu.Lock()
	c.seq++
	seq := c.seq
	c.mu.Unlock()
	au := c.aus[int(seq-1)%len(c.aus)]
	if err := c.nc.PublishMsg(testenv.VideoMsg(c.t, c.id, seq, time.Now(), au, c.w, c.h)); err != nil {
		c.t.Error(err)
	}
	return seq
}

// run publishes an access unit every interval until the test ends.
func (c *videoCamera) run(interval time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	c.t.Cleanup(func() {
		cancel()
		<-done
	})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				c.next()
			}
		}
	}()
}

// mediaReader reads GET /api/media.
type mediaReader struct {
	r   *bufio.Reader
	buf []byte
}

func openMedia(t *testing.T, ctx context.Context, url string) *mediaReader {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != MediaContentType {
		body, _ := io.ReadAll(res.Body)
		t.Fatalf("GET %s: %s %s: %s", url, res.Status, res.Header.Get("Content-Type"), body)
	}
	return &mediaReader{r: bufio.NewReader(res.Body)}
}

// next returns the next record, its payload copied.
func (m *mediaReader) next() (MediaRecord, error) {
	rec, buf, err := ReadMediaRecord(m.r, m.buf)
	m.buf = buf
	rec.Payload = bytes.Clone(rec.Payload)
	return rec, err
}

// until returns the next record of camera id.
func (m *mediaReader) until(t *testing.T, id string) MediaRecord {
	t.Helper()
	for {
		rec, err := m.next()
		if err != nil {
			t.Fatalf("waiting for a record of %s: %v", id, err)
		}
		if rec.ID == id {
			return rec
		}
	}
}

// fragmentSeqs returns the decode order of the samples of an MP4 fragment
// as their count and whether the first is a keyframe.
func fragmentSamples(t *testing.T, frag []byte) (n int, key bool) {
	t.Helper()
	var parts fmp4.Parts
	if err := parts.Unmarshal(frag); err != nil {
		t.Fatalf("fragment: %v", err)
	}
	if len(parts) != 1 || len(parts[0].Tracks) != 1 {
		t.Fatalf("fragment: %d parts, want one of one track", len(parts))
	}
	s := parts[0].Tracks[0].Samples
	return len(s), len(s) > 0 && !s[0].IsNonSyncSample
}

// GET /api/media without a decoder on the server: an H.264 camera starts
// with its init segment and a fragment from its newest keyframe in the
// buffer to the access unit that came live, then a fragment per access
// unit; a JPEG camera's frames come as JPEG; a camera that joins appears.
func TestMediaStream(t *testing.T) {
	_, nc := startHub(t)
	_, ts := startWeb(t, Config{}, nc)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cam := newVideoCamera(t, nc, "cam", 320, 240, 30, 10) // keyframes: 1, 11, 21
	times := make([]time.Time, 13)
	for i := range times {
		times[i] = time.Now().Add(time.Duration(i-13) * time.Second / 15)
	}
	testenv.PublishVideo(t, js, "cam", cam.aus[:13], times, 320, 240)
	cam.seq = 13
	pic := newCamera(t, nc, "pic", 160, 120, 5, 0)
	pic.run(50 * time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m := openMedia(t, ctx, ts.URL+"/api/media")
	if seq := cam.next(); seq != 14 {
		t.Fatalf("published %d", seq)
	}
	init := m.until(t, "cam")
	if init.Kind != RecordInit || init.Type != `video/mp4; codecs="avc1.42C01E"` && !strings.HasPrefix(init.Type, `video/mp4; codecs="avc1.`) ||
		init.Width != 320 || init.Height != 240 || len(init.Payload) == 0 {
		t.Fatalf("first record of cam: kind %d %q %dx%d, want an init segment of 320x240", init.Kind, init.Type, init.Width, init.Height)
	}
	first := m.until(t, "cam")
	if first.Kind != RecordFragment || first.Seq != 14 {
		t.Fatalf("second record of cam: kind %d seq %d, want a fragment up to 14", first.Kind, first.Seq)
	}
	if n, key := fragmentSamples(t, first.Payload); n != 4 || !key {
		t.Errorf("first fragment: %d samples (keyframe first: %v), want 4 from the keyframe 11", n, key)
	}
	if age := time.Since(first.Time); age < 0 || age > 10*time.Second {
		t.Errorf("first fragment captured %v ago", age)
	}
	for want := uint64(15); want <= 40; want++ {
		if seq := cam.next(); seq != want {
			t.Fatalf("published %d", seq)
		}
		rec := m.until(t, "cam")
		if rec.Kind != RecordFragment || rec.Seq != want {
			t.Fatalf("record of cam: kind %d seq %d, want fragment %d", rec.Kind, rec.Seq, want)
		}
		n, key := fragmentSamples(t, rec.Payload)
		if n != 1 || key != ((want-1)%10 == 0) {
			t.Fatalf("fragment %d: %d samples, keyframe %v", want, n, key)
		}
		if rec.MediaTime <= first.MediaTime {
			t.Fatalf("fragment %d: media time %v after %v", want, rec.MediaTime, first.MediaTime)
		}
	}
	// the JPEG camera
	p := m.until(t, "pic")
	if p.Kind != RecordJPEG || p.Type != wire.ContentTypeJPEG || p.Width != 160 {
		t.Errorf("record of pic: kind %d %q %d wide, want JPEG 160 wide", p.Kind, p.Type, p.Width)
	}
	if cfg, err := jpeg.DecodeConfig(bytes.NewReader(p.Payload)); err != nil || cfg.Width != 160 {
		t.Errorf("pic's JPEG: %+v %v", cfg, err)
	}
	// a camera that joins appears, from its first keyframe
	late := newVideoCamera(t, nc, "late", 160, 120, 10, 5)
	late.next()
	if rec := m.until(t, "late"); rec.Kind != RecordInit {
		t.Errorf("first record of late: kind %d, want an init", rec.Kind)
	}
	if rec := m.until(t, "late"); rec.Kind != RecordFragment || rec.Seq != 1 {
		t.Errorf("second record of late: kind %d seq %d, want fragment 1", rec.Kind, rec.Seq)
	}
	// asked for one camera, it gets that one
	one := openMedia(t, ctx, ts.URL+"/api/media?cams=late")
	late.next()
	late.next()
	for {
		rec, err := one.next()
		if err != nil {
			t.Fatal(err)
		}
		if rec.ID != "late" {
			t.Fatalf("a stream of late has a record of %s", rec.ID)
		}
		if rec.Kind == RecordFragment && rec.Seq == 3 {
			break
		}
	}
	res, err := http.Get(ts.URL + "/api/media?fps=5")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("a rate limit of /api/media: %s, want 400", res.Status)
	}
}

// A client that takes nothing while two GOPs come gets the newer one
// whole; the older is skipped, counted, and nothing of it is sent.
func TestMediaNewestGOPWins(t *testing.T) {
	_, nc := startHub(t)
	s, _ := startWeb(t, Config{}, nc)
	aus := testenv.H264Clip(t, 160, 120, 20, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mc := &mediaClient{ctx: ctx, wake: make(chan struct{}, 1), cams: make(map[camTier]*mediaCam)}
	s.media.mu.Lock()
	s.media.clients[mc] = struct{}{}
	s.media.mu.Unlock()
	t0 := time.Now()
	for i, au := range aus[:15] {
		msg := testenv.VideoMsg(t, "cam", uint64(i+1), t0.Add(time.Duration(i)*time.Second/15), au, 160, 120)
		v, err := wire.ParseVideo(msg.Header)
		if err != nil {
			t.Fatal(err)
		}
		s.pushMedia("cam", replay.AU{Video: v, Data: au, Stored: time.Now()}, false)
	}
	rec := httptest.NewRecorder()
	c := &client{s: s, w: rec, rc: http.NewResponseController(rec), ctx: ctx}
	if _, err := s.sendVideo(c, mc.cams[camTier{"cam", false}]); err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(rec.Body.Bytes())
	init, _, err := ReadMediaRecord(r, nil)
	if err != nil || init.Kind != RecordInit {
		t.Fatalf("first record: kind %d, %v; want an init", init.Kind, err)
	}
	frag, _, err := ReadMediaRecord(r, nil)
	if err != nil || frag.Kind != RecordFragment || frag.Seq != 15 {
		t.Fatalf("second record: kind %d seq %d, %v; want a fragment up to 15", frag.Kind, frag.Seq, err)
	}
	if n, key := fragmentSamples(t, frag.Payload); n != 5 || !key {
		t.Errorf("fragment: %d samples (keyframe first: %v), want 11 to 15", n, key)
	}
	if st := s.mediaStats(); st.Skipped != 10 || st.Fragments != 1 || st.Inits != 1 {
		t.Errorf("stats %+v, want 10 skipped, 1 fragment, 1 init", st)
	}
}

// FuzzReadMediaRecord: any bytes give a record or an error, never a
// panic, and a record read writes back the same.
func FuzzReadMediaRecord(f *testing.F) {
	for _, r := range []MediaRecord{
		{Kind: RecordInit, ID: "cam", Sent: time.UnixMicro(1), Seq: 1, Width: 320, Height: 240, Type: `video/mp4; codecs="avc1.42C01E"`, Payload: []byte("ftypmoov")},
		{Kind: RecordFragment, ID: "a-b_c", Time: time.UnixMicro(1764547200000000), MediaTime: time.Second, Sent: time.UnixMicro(1764547200000100), Seq: 99, Payload: []byte("moofmdat")},
		{Kind: RecordJPEG, ID: "x", Time: time.UnixMicro(5), Sent: time.UnixMicro(6), Type: "image/jpeg", Payload: []byte{0xff, 0xd8, 0xff, 0xd9}},
	} {
		b := appendRecordHead(nil, &r, len(r.Payload))
		f.Add(append(b, r.Payload...))
	}
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		rec, _, err := ReadMediaRecord(r, nil)
		if err != nil {
			return
		}
		used := len(data) - r.Len()
		out := appendRecordHead(nil, &rec, len(rec.Payload))
		out = append(out, rec.Payload...)
		if !bytes.Equal(out, data[:used]) {
			t.Fatalf("read %x, wrote back %x", data[:used], out)
		}
	})
}

// videoPicture takes a screenshot of camera id's video element.
func videoPicture(t *testing.T, ctx context.Context, id string) image.Image {
	t.Helper()
	data := run(t, ctx, "screenshot of "+id, chromedp.Screenshot(chromedp.CSS(fmt.Sprintf(`.tile[data-id="%s"] video`, id)), chromedp.NodeVisible))
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot of %s: %v", id, err)
	}
	return img
}

// videoFrames is how many frames camera id's video element has decoded.
func videoFrames(t *testing.T, ctx context.Context, id string) int {
	t.Helper()
	return run(t, ctx, "frames decoded", chromedp.Evaluate[int](fmt.Sprintf(
		`%s?.querySelector('video')?.getVideoPlaybackQuality().totalVideoFrames ?? 0`, tileJS(id))))
}

// measureRun is how long a page's age is measured: $CAMHUB_MEDIA_RUN (a
// duration) if set, else d.
func measureRun(t *testing.T, d time.Duration) time.Duration {
	if v := os.Getenv("CAMHUB_MEDIA_RUN"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatalf("CAMHUB_MEDIA_RUN: %v", err)
		}
	}
	return d
}

// percentile returns the p-th percentile (0-100) of sorted.
func percentile(sorted []int, p float64) int {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p/100))]
}

// The page plays H.264 cameras itself, with no decoder on the server:
// their video elements decode (frame counts advance, the picture
// changes), beside a JPEG camera's tile; a camera that joins appears; the
// age of the picture shown stays bounded; nothing goes to the console.
// CAMHUB_MEDIA_RUN (a duration, 20s unless set) is how long the age is
// measured.
func TestMediaPage(t *testing.T) {
	measure := measureRun(t, 20*time.Second)
	_, nc := startHub(t)
	s, ts := startWeb(t, Config{}, nc)
	pic := newCamera(t, nc, "pic", 160, 120, 20, 0)
	pic.run(100 * time.Millisecond)
	cam := newVideoCamera(t, nc, "cam", 320, 240, 45, 15)
	cam.run(time.Second / 15)

	ctx, problems := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/?player=mse")); err != nil {
		t.Fatal(err)
	}
	if mode := run(t, ctx, "player", chromedp.Evaluate[string](`camhubMedia.mode()`)); mode != "mse" {
		t.Fatalf("the page plays H.264 with %q, want mse (Chromium plays avc1 through MSE)", mode)
	}
	poll(t, ctx, "cam's video decoding", tileJS("cam")+`?.querySelector('video')?.getVideoPlaybackQuality().totalVideoFrames > 0`)
	waitShown(t, ctx, "pic", 0)
	first := videoPicture(t, ctx, "cam")
	n := videoFrames(t, ctx, "cam")
	poll(t, ctx, "cam's video advancing", fmt.Sprintf(`%s.querySelector('video').getVideoPlaybackQuality().totalVideoFrames > %d`, tileJS("cam"), n+15))
	second := videoPicture(t, ctx, "cam")
	if d := difference(first, second); d < 0.5 {
		t.Errorf("cam's picture did not change between two screenshots (mean difference %.2f)", d)
	} else {
		t.Logf("cam's picture changed by %.2f between two screenshots", d)
	}
	if b := tilePicture(t, ctx, "pic"); difference(second, b) < 5 {
		t.Error("cam's and pic's tiles show the same picture")
	}
	if run(t, ctx, "pic is JPEG", chromedp.Evaluate[bool](tileJS("pic")+`.querySelector('video') !== null`)) {
		t.Error("the JPEG camera's tile has a video element")
	}
	poll(t, ctx, "cam's fps and age", tileJS("cam")+`.querySelector('.fps').textContent.endsWith(' fps') && `+
		tileJS("cam")+`.querySelector('.age').textContent.endsWith(' s')`)
	// the server decodes nothing, yet knows the camera is live: its tile
	// has no note ("offline", "no signal")
	poll(t, ctx, "cam's tile without a note", tileJS("cam")+`.querySelector('.note').textContent === '' && `+
		`!`+tileJS("cam")+`.classList.contains('down')`)

	// a camera that joins appears
	late := newVideoCamera(t, nc, "late", 240, 180, 30, 10)
	late.run(time.Second / 10)
	poll(t, ctx, "late's video decoding", tileJS("late")+`?.querySelector('video')?.getVideoPlaybackQuality().totalVideoFrames > 0`)
	saveShot(t, ctx, "h264")

	// the age of what the page shows, over the run
	from := run(t, ctx, "age samples", chromedp.Evaluate[int](`camhubMedia.ages('cam').length`))
	frames := videoFrames(t, ctx, "cam")
	wait := time.NewTimer(measure)
	select {
	case <-wait.C:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	ages := run(t, ctx, "age samples", chromedp.Evaluate[[]int](fmt.Sprintf(`camhubMedia.ages('cam', %d)`, from)))
	type stats struct {
		Frames, Dropped, Jumps, Waits int
	}
	st := run(t, ctx, "player stats", chromedp.Evaluate[stats](`camhubMedia.stats().cam`))
	if len(ages) == 0 {
		t.Fatal("the page measured no ages")
	}
	half := len(ages) / 2
	early, lately := slices.Sorted(slices.Values(ages[:half])), slices.Sorted(slices.Values(ages[half:]))
	all := slices.Sorted(slices.Values(ages))
	t.Logf("age of cam's picture over %v (%d samples, %d frames decoded, %d dropped, %d jumps to live, %d stalls): p50 %d ms, p99 %d ms, max %d ms; first half p99 %d ms, second half p99 %d ms",
		measure, len(ages), st.Frames-frames, st.Dropped, st.Jumps, st.Waits, percentile(all, 50), percentile(all, 99), all[len(all)-1],
		percentile(early, 99), percentile(lately, 99))
	// bounded: the player keeps near live (not a speed figure: an MSE
	// player left alone drifts by seconds)
	if p := percentile(lately, 99); p > 3000 {
		t.Errorf("p99 of the age shown in the second half of the run: %d ms", p)
	}
	if st := s.mediaStats(); st.Fragments == 0 || st.Clients != 1 {
		t.Errorf("server: %+v", st)
	}
	for _, p := range problems() {
		t.Errorf("browser console: %s", p)
	}
}

// With ?player=jpeg the page reads /api/stream as before: JPEG cameras
// show, and H.264 cameras only through the server's decoder (none here).
func TestMediaPageFallback(t *testing.T) {
	_, nc := startHub(t)
	s, ts := startWeb(t, Config{}, nc)
	newCamera(t, nc, "pic", 160, 120, 5, 0).run(100 * time.Millisecond)
	newVideoCamera(t, nc, "cam", 160, 120, 10, 5).run(time.Second / 10)
	ctx, problems := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/?player=jpeg")); err != nil {
		t.Fatal(err)
	}
	if mode := run(t, ctx, "player", chromedp.Evaluate[string](`camhubMedia.mode()`)); mode != "jpeg" {
		t.Errorf("?player=jpeg: the page plays H.264 with %q", mode)
	}
	waitShown(t, ctx, "pic", 2)
	if n := run(t, ctx, "video elements", chromedp.Evaluate[int](`document.querySelectorAll('video').length`)); n != 0 {
		t.Errorf("%d video elements", n)
	}
	if st := s.mediaStats(); st.Clients != 0 || st.Fragments != 0 {
		t.Errorf("the page used /api/media: %+v", st)
	}
	for _, p := range problems() {
		t.Errorf("browser console: %s", p)
	}
}

// discard is a ResponseWriter that keeps nothing and counts the bytes.
type discard struct {
	h http.Header
	n int64
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { d.n += int64(len(p)); return len(p), nil }
func (d *discard) WriteHeader(int)             {}

// BenchmarkMediaSend: the server's cost of one access unit to one page of
// GET /api/media, live (a fragment per access unit): queueing it (the
// receiving goroutine's share) and putting it into MP4 and a record (the
// page's handler's). 640x480 footage, a keyframe a second at 15 fps.
// bytes/AU is what goes to the page, against the access unit's own.
func BenchmarkMediaSend(b *testing.B) {
	_, nc := startHub(b)
	s, _ := startWeb(b, Config{}, nc)
	aus := testenv.H264Clip(b, 640, 480, 45, 15)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mc := &mediaClient{ctx: ctx, wake: make(chan struct{}, 1), cams: make(map[camTier]*mediaCam)}
	s.media.mu.Lock()
	s.media.clients[mc] = struct{}{}
	s.media.mu.Unlock()
	w := &discard{h: make(http.Header)}
	c := &client{s: s, w: w, rc: http.NewResponseController(w), ctx: ctx}
	vids := make([]replay.AU, len(aus))
	var auBytes int64
	for i, au := range aus {
		msg := testenv.VideoMsg(b, "cam", uint64(i+1), time.Unix(0, 0), au, 640, 480)
		v, err := wire.ParseVideo(msg.Header)
		if err != nil {
			b.Fatal(err)
		}
		vids[i] = replay.AU{Video: v, Data: au}
	}
	t0 := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a := vids[i%len(vids)]
		a.Seq = uint64(i + 1)
		a.Time = t0.Add(time.Duration(i) * time.Second / 15)
		a.PTS = int64(i) * wire.VideoClockRate / 15
		a.DTS = a.PTS
		s.pushMedia("cam", a, false)
		if _, err := s.sendVideo(c, mc.cams[camTier{"cam", false}]); err != nil {
			b.Fatal(err)
		}
		auBytes += int64(len(a.Data))
	}
	b.StopTimer()
	b.ReportMetric(float64(w.n)/float64(b.N), "bytes/AU")
	b.ReportMetric(float64(w.n)/float64(auBytes), "bytes/AU-bytes")
	if st := s.mediaStats(); st.Broken != 0 || st.Skipped != 0 || st.Fragments != uint64(b.N) {
		b.Errorf("stats %+v after %d access units", st, b.N)
	}
}

// With ?player=webcodecs (the choice of browsers without MSE, in a secure
// context: loopback is one) the page decodes H.264 with WebCodecs onto a
// canvas: frames are drawn, the picture changes, the age shown stays
// bounded, alone the camera starts again, nothing goes to the console.
// CAMHUB_MEDIA_RUN (10s unless set) is how long the age is measured.
func TestMediaPageWebCodecs(t *testing.T) {
	_, nc := startHub(t)
	_, ts := startWeb(t, Config{}, nc)
	newCamera(t, nc, "pic", 160, 120, 5, 0).run(100 * time.Millisecond)
	cam := newVideoCamera(t, nc, "cam", 320, 240, 45, 15)
	cam.run(time.Second / 15)
	ctx, problems := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/?player=webcodecs")); err != nil {
		t.Fatal(err)
	}
	if mode := run(t, ctx, "player", chromedp.Evaluate[string](`camhubMedia.mode()`)); mode != "webcodecs" {
		t.Fatalf("?player=webcodecs: the page plays H.264 with %q", mode)
	}
	frames := func() int {
		return run(t, ctx, "frames drawn", chromedp.Evaluate[int](`camhubMedia.stats().cam?.frames ?? 0`))
	}
	poll(t, ctx, "cam's frames drawn", `camhubMedia.stats().cam?.frames > 0`)
	shot := func() image.Image {
		data := run(t, ctx, "screenshot of cam", chromedp.Screenshot(chromedp.CSS(`.tile[data-id="cam"] canvas`), chromedp.NodeVisible))
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	waitShown(t, ctx, "pic", 0)
	first := shot()
	poll(t, ctx, "cam's frames advancing", fmt.Sprintf(`camhubMedia.stats().cam.frames > %d`, frames()+15))
	if d := difference(first, shot()); d < 0.5 {
		t.Errorf("cam's picture did not change between two screenshots (mean difference %.2f)", d)
	}
	from := run(t, ctx, "age samples", chromedp.Evaluate[int](`camhubMedia.ages('cam').length`))
	n := frames()
	measure := measureRun(t, 10*time.Second)
	wait := time.NewTimer(measure)
	select {
	case <-wait.C:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	ages := slices.Sorted(slices.Values(run(t, ctx, "age samples", chromedp.Evaluate[[]int](fmt.Sprintf(`camhubMedia.ages('cam', %d)`, from)))))
	if len(ages) == 0 {
		t.Fatal("the page measured no ages")
	}
	type stats struct {
		Player                 string
		Frames, Dropped, Jumps int
	}
	st := run(t, ctx, "player stats", chromedp.Evaluate[stats](`camhubMedia.stats().cam`))
	t.Logf("WebCodecs: age of cam's picture over %v (%d samples, %d frames drawn, %d skipped, %d skips to a keyframe): p50 %d ms, p99 %d ms, max %d ms",
		measure, len(ages), st.Frames-n, st.Dropped, st.Jumps, percentile(ages, 50), percentile(ages, 99), ages[len(ages)-1])
	if st.Player != "webcodecs" {
		t.Errorf("cam's player: %q", st.Player)
	}
	if p := percentile(ages, 99); p > 3000 {
		t.Errorf("p99 of the age shown: %d ms", p)
	}
	// alone, the camera starts again at once (a new stream, from the
	// newest keyframe in the buffer)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`.tile[data-id="cam"] .pic`), chromedp.NodeVisible)); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "cam alone, playing", `location.hash === '#cam=cam' && `+tileJS("pic")+`.offsetParent === null && camhubMedia.stats().cam?.frames > 0`)
	for _, p := range problems() {
		t.Errorf("browser console: %s", p)
	}
}
