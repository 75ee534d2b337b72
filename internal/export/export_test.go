package export

import (
	"camhub/hub/hubtest"
	"camhub/internal/replay/replaytest"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"gocv.io/x/gocv"

	"camhub/hub"
	"camhub/internal/replay"
	"camhub/internal/testenv"
	"camhub/internal/testenv/cvtest"
)

// video is what OpenCV reads back from a clip.
type video struct {
	count  int     // CAP_PROP_FRAME_COUNT
	fps    float64 // CAP_PROP_FPS
	codec  string
	w, h   int
	frames []int // the number each frame shows
}

func (v video) duration() time.Duration {
	return time.Duration(float64(v.count) / v.fps * float64(time.Second))
}

func readVideo(t *testing.T, path string) video {
	t.Helper()
	vc := cvtest.OpenVideo(t, path)
	v := video{
		count: int(vc.Get(gocv.VideoCaptureFrameCount)),
		fps:   vc.Get(gocv.VideoCaptureFPS),
		codec: vc.CodecString(),
		w:     int(vc.Get(gocv.VideoCaptureFrameWidth)),
		h:     int(vc.Get(gocv.VideoCaptureFrameHeight)),
	}
	m := gocv.NewMat()
	defer m.Close()
	for vc.Read(&m) && !m.Empty() {
		v.frames = append(v.frames, replaytest.Number(m))
	}
	return v
}

// publishFront stores 41 frames of "front" at 10 fps (4 s) ending now,
// frame 20 twice the size of the others, with frames of "back" between
// them, and returns front's capture times.
func publishFront(t *testing.T, js jetstream.JetStream) []time.Time {
	ts := replaytest.Series(41, time.Now())
	for i, at := range ts {
		s := replaytest.Shot{ID: "front", Seq: uint64(i + 1), At: at}
		if i+1 == 20 {
			s.W, s.H = 320, 240
		}
		replaytest.Publish(t, js, s)
		replaytest.Publish(t, js, replaytest.Shot{ID: "back", Seq: uint64(i + 1), At: at.Add(50 * time.Millisecond)})
	}
	return ts
}

func TestExport(t *testing.T) {
	_, js := hubtest.StartJS(t, nil)
	ctx := testenv.Context(t, 60*time.Second)
	ts := publishFront(t, js)

	for _, tc := range []struct {
		ext    string
		codecs []string
	}{
		{".avi", []string{"MJPG"}},
		{".mp4", []string{"avc1", "mp4v"}},
	} {
		t.Run(tc.ext, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "clip"+tc.ext)
			var progress [][2]int
			// Frames 6..36: 31 frames over 3 s.
			res, err := Export(ctx, js, Options{
				ID: "front", From: ts[5], To: ts[35], Out: out,
				Progress: func(done, total int) { progress = append(progress, [2]int{done, total}) },
			})
			if err != nil {
				t.Fatal(err)
			}
			const n = 31
			span := ts[35].Sub(ts[5])
			if res.Frames != n || !res.First.Equal(ts[5]) || !res.Last.Equal(ts[35]) || res.Skipped != 0 {
				t.Fatalf("result %+v, want %d frames from %v to %v", res, n, ts[5], ts[35])
			}
			if len(progress) != n+1 || progress[0] != [2]int{0, n} || progress[n] != [2]int{n, n} {
				t.Fatalf("progress %v", progress)
			}
			for i, p := range progress {
				if p[0] != i || p[1] != n {
					t.Fatalf("progress %v", progress)
				}
			}
			if ns := testenv.Names(t, dir); len(ns) != 1 {
				t.Fatalf("files: %v", ns)
			}

			v := readVideo(t, out)
			t.Logf("%s: %s %dx%d, %d frames at %.3f fps: %v (captured over %v)", tc.ext, v.codec, v.w, v.h, v.count, v.fps, v.duration(), span)
			if v.codec != res.Codec || !contains(tc.codecs, v.codec) {
				t.Errorf("codec %q, result says %q, want one of %v", v.codec, res.Codec, tc.codecs)
			}
			if v.count != n || len(v.frames) != n {
				t.Fatalf("frame count %d, frames read %d: want %d", v.count, len(v.frames), n)
			}
			if d := v.duration(); math.Abs(d.Seconds()-span.Seconds()) > 0.1*span.Seconds() {
				t.Errorf("duration %v, captured over %v", d, span)
			}
			if v.w != 160 || v.h != 120 {
				t.Errorf("size %dx%d, want the first frame's 160x120", v.w, v.h)
			}
			// Every frame is there, in order: the bigger frame 20 too.
			for i, got := range v.frames {
				if got != 6+i {
					t.Fatalf("frame %d shows %d, want %d (all: %v)", i, got, 6+i, v.frames)
				}
			}
		})
	}

	// A zero From and To export the whole buffer.
	out := filepath.Join(t.TempDir(), "all.avi")
	res, err := Export(ctx, js, Options{ID: "front", Out: out})
	if err != nil || res.Frames != 41 || !res.First.Equal(ts[0]) || !res.Last.Equal(ts[40]) {
		t.Fatalf("whole buffer: %+v, %v", res, err)
	}
	if v := readVideo(t, out); v.count != 41 || v.frames[0] != 1 || v.frames[40] != 41 {
		t.Fatalf("whole buffer: %d frames, first %d", v.count, v.frames[0])
	}

	// A range starting before the buffer's oldest frame starts at it.
	res, err = Export(ctx, js, Options{ID: "front", From: ts[0].Add(-time.Minute), To: ts[2], Out: out})
	if err != nil || res.Frames != 3 || !res.First.Equal(ts[0]) {
		t.Fatalf("range from before the buffer: %+v, %v", res, err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// A bad request fails with a clear error and leaves no file.
func TestExportErrors(t *testing.T) {
	_, js := hubtest.StartJS(t, nil)
	ctx := testenv.Context(t, 60*time.Second)
	ts := publishFront(t, js)
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	bare := hubtest.JetStream(t, testenv.NATS(t, nil).ClientURL())
	mp4 := filepath.Join(dir, "clip.mp4")

	for _, tc := range []struct {
		name string
		o    Options
		is   error
		says []string
	}{
		{"extension", Options{ID: "front", Out: filepath.Join(dir, "clip.mkv")}, replay.ErrInvalid, []string{".mp4", ".avi"}},
		{"no extension", Options{ID: "front", Out: filepath.Join(dir, "clip")}, replay.ErrInvalid, []string{".mp4"}},
		{"missing directory", Options{ID: "front", Out: filepath.Join(dir, "missing", "clip.mp4")}, os.ErrNotExist,
			[]string{filepath.Join(dir, "missing")}},
		{"directory is a file", Options{ID: "front", Out: filepath.Join(file, "clip.avi")}, nil, []string{file}},
		{"unknown camera", Options{ID: "garage", Out: mp4}, replay.ErrNoFrames, []string{`"garage"`}},
		{"bad id", Options{ID: "a.b", Out: mp4}, replay.ErrInvalid, []string{"camera id"}},
		{"after the buffer", Options{ID: "front", From: ts[40].Add(time.Minute), To: ts[40].Add(2 * time.Minute), Out: mp4},
			replay.ErrOutOfRange, []string{"buffer holds", "4s"}},
		{"before the buffer", Options{ID: "front", From: ts[0].Add(-2 * time.Minute), To: ts[0].Add(-time.Minute), Out: mp4},
			replay.ErrOutOfRange, []string{"buffer holds"}},
		{"between frames", Options{ID: "front", From: ts[3].Add(time.Millisecond), To: ts[4].Add(-time.Millisecond), Out: mp4},
			replay.ErrOutOfRange, []string{"no frames"}},
		{"from after to", Options{ID: "front", From: ts[10], To: ts[5], Out: mp4}, replay.ErrInvalid, []string{"after the end"}},
	} {
		_, err := Export(ctx, js, tc.o)
		if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.is)
			continue
		}
		for _, s := range tc.says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: %q does not say %q", tc.name, err, s)
			}
		}
		t.Logf("%s: %v", tc.name, err)
	}
	_, err := Export(ctx, bare, Options{ID: "front", Out: mp4})
	if !errors.Is(err, replay.ErrNoBuffer) {
		t.Errorf("no CAMS: %v", err)
	}
	if ns := testenv.Names(t, dir); len(ns) != 1 || ns[0] != "file" {
		t.Fatalf("files left: %v", ns)
	}
}

// A cancelled export stops and leaves nothing, not even a file that was
// there before.
func TestExportCancelled(t *testing.T) {
	_, js := hubtest.StartJS(t, nil)
	ts := publishFront(t, js)
	for _, ext := range []string{".mp4", ".avi"} {
		dir := t.TempDir()
		out := filepath.Join(dir, "clip"+ext)
		ctx, cancel := context.WithCancel(testenv.Context(t, 60*time.Second))
		last := 0
		_, err := Export(ctx, js, Options{ID: "front", From: ts[0], To: ts[40], Out: out,
			Progress: func(done, total int) {
				last = done
				if done == 10 {
					cancel()
				}
			}})
		cancel()
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "cancelled") {
			t.Fatalf("%s: %v, want a cancellation", ext, err)
		}
		if last != 10 {
			t.Errorf("%s: wrote on to frame %d after the cancellation", ext, last)
		}
		if ns := testenv.Names(t, dir); len(ns) != 0 {
			t.Fatalf("%s: files left: %v", ext, ns)
		}
	}
}

// An export ends at the newest frame stored when it started, even while
// the camera keeps sending.
func TestExportWhileStreaming(t *testing.T) {
	_, js := hubtest.StartJS(t, nil)
	ctx := testenv.Context(t, 60*time.Second)
	ts := replaytest.Series(30, time.Now())
	replaytest.PublishSeries(t, js, "front", ts)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent := 30
	wg.Go(func() {
		for seq := uint64(31); ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := replaytest.TryPublish(js, replaytest.Shot{ID: "front", Seq: seq, At: ts[29].Add(time.Duration(seq-30) * 100 * time.Millisecond)}); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			sent++
			mu.Unlock()
		}
	})
	testenv.Eventually(t, 10*time.Second, "frames streaming", func() bool { mu.Lock(); defer mu.Unlock(); return sent > 40 })
	mu.Lock()
	before := sent
	mu.Unlock()
	out := filepath.Join(t.TempDir(), "clip.avi")
	res, err := Export(ctx, js, Options{ID: "front", Out: out})
	mu.Lock()
	after := sent
	mu.Unlock()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	// Another frame may be stored as the export reads the newest.
	if res.Frames < before || res.Frames > after+1 {
		t.Fatalf("exported %d frames; %d were stored before the export, %d after", res.Frames, before, after)
	}
	if v := readVideo(t, out); v.count != res.Frames || v.frames[0] != 1 || v.frames[len(v.frames)-1] != res.Frames {
		t.Fatalf("clip has %d frames %v..., want 1..%d", v.count, v.frames[:3], res.Frames)
	}
	t.Logf("exported %d frames while %d were sent", res.Frames, after-before)
}

// With file storage the buffer survives a hub restart: snapshots and
// exports read what was stored before it.
func TestAfterRestart(t *testing.T) {
	cfg := hubtest.Config()
	cfg.Storage = hub.StorageFile
	cfg.StoreDir = t.TempDir()
	h, err := hub.Start(context.Background(), cfg, testenv.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	ts := replaytest.Series(20, time.Now())
	func() {
		js := hubtest.JetStream(t, h.ClientURL())
		replaytest.PublishSeries(t, js, "front", ts)
		js.Conn().Close()
	}()
	h.Close()

	_, js := hubtest.StartJS(t, &cfg)
	ctx := testenv.Context(t, 60*time.Second)
	f, err := replay.Snapshot(ctx, js, "front")
	if err != nil || f.Seq != 20 || !f.Time.Equal(ts[19]) || replaytest.JPEGNumber(t, f.JPEG) != 20 {
		t.Fatalf("snapshot after restart: %+v, %v", f.Frame, err)
	}
	out := filepath.Join(t.TempDir(), "clip.mp4")
	res, err := Export(ctx, js, Options{ID: "front", Out: out})
	if err != nil || res.Frames != 20 {
		t.Fatalf("export after restart: %+v, %v", res, err)
	}
	if v := readVideo(t, out); v.count != 20 || v.frames[0] != 1 || v.frames[19] != 20 {
		t.Fatalf("clip after restart: %d frames: %v", v.count, v.frames)
	}
}

func TestClipFPS(t *testing.T) {
	for _, tc := range []struct {
		n    int
		span time.Duration
		want float64
	}{
		{21, 2 * time.Second, 10},
		{1, 0, oneFrameFPS},
		{0, 0, oneFrameFPS},
		{5, 0, sameTimeFPS},
		{3, 3 * time.Second, 0.667},
		{301, 20 * time.Second, 15},
		{2, 30 * time.Millisecond, 33.3},
		{1000, 10 * time.Millisecond, maxFPS},
		{2, time.Hour, minFPS},
		{4, 45777 * time.Microsecond, 65.5}, // 65.537 fps: MPEG-4 Part 2 refuses it
	} {
		if got := clipFPS(tc.n, tc.span); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("clipFPS(%d, %v) = %v, want %v", tc.n, tc.span, got, tc.want)
		}
	}
}
