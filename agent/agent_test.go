package agent

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"camhub/internal/testenv"
	"camhub/internal/version"
	"camhub/internal/wire"
)

func TestTestPattern(t *testing.T) {
	_, url := startNATS(t, nil)
	ch := subscribe(t, url, "front")
	cfg := Config{ID: "front", Source: "testpattern", FPS: 30, Width: 320, Height: 240, ReportInterval: 100 * time.Millisecond}
	r := start(t, cfg, dial(t, url))

	var got received
	collect(t, ch, &got, 15*time.Second, func(got *received) bool {
		return len(got.frames) >= 20 && stateAfter(0, wire.StateStreaming)(got)
	})
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	collect(t, ch, &got, 5*time.Second, stateAfter(0, wire.StateStopped))

	// Frame-Seq runs 1, 2, 3 ...; on a busy machine a frame may be
	// replaced in the mailbox before it is sent (newest wins), and each
	// such drop is a gap: the gaps add up to the agent's drop count.
	var prev, gaps uint64
	for _, m := range got.frames {
		f := decode(t, m)
		if f.Width != 320 || f.Height != 240 {
			t.Fatalf("frame %d is %dx%d, want 320x240", f.Seq, f.Width, f.Height)
		}
		if f.Seq <= prev {
			t.Errorf("seq %d after %d", f.Seq, prev)
		}
		gaps += f.Seq - prev - 1
		prev = f.Seq
		// Received at most a little after it was captured; the
		// frames were read after the agent stopped, hence the margin.
		if age := time.Since(f.Time); age < 0 || age > 10*time.Second {
			t.Errorf("frame %d captured %v ago", f.Seq, age)
		}
		if m.Header.Get(wire.HeaderContentType) != wire.ContentTypeJPEG {
			t.Errorf("Content-Type %q", m.Header.Get("Content-Type"))
		}
	}

	if st := r.a.Stats(); gaps+(st.Frames-prev) != st.Dropped {
		t.Errorf("Frame-Seq gaps %d (and %d after the last frame received) but %d frames dropped",
			gaps, st.Frames-prev, st.Dropped)
	}

	host, _ := os.Hostname()
	first := got.statuses[0]
	if first.State != wire.StateStarting {
		t.Errorf("first report is %q, want starting", first.State)
	}
	sawFPS := false
	for _, s := range got.statuses {
		if s.ID != "front" || s.Host != host || s.Source != "testpattern" || s.Version != version.String() ||
			s.IntervalMS != 100 || !s.Started.Equal(first.Started) || s.Started.IsZero() || s.Time.Before(s.Started) {
			t.Errorf("bad report %+v", s)
		}
		if s.State == wire.StateStreaming && s.FPS > 0 {
			sawFPS = true
			if s.FPS > 45 {
				t.Errorf("fps %v at a 30 fps cap", s.FPS)
			}
		}
	}
	if !sawFPS {
		t.Errorf("no streaming report with fps > 0: %v", &got)
	}
	if last := got.lastStatus(); last.Width != 320 || last.Height != 240 {
		t.Errorf("last report says %dx%d", last.Width, last.Height)
	}
	checkCounts(t, r.a, &got)

	if err := r.a.Run(t.Context()); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run: %v, want ErrRunning", err)
	}
}

func TestVideoFile(t *testing.T) {
	_, url := startNATS(t, nil)
	ch := subscribe(t, url, "file")
	path := writeVideo(t, t.TempDir(), 320, 240, 20, 20)
	// --fps above the file's rate: every frame is due, so frame i gets
	// seq i+1, and the file plays at its own 20 fps.
	cfg := Config{ID: "file", Source: path, FPS: 30, Width: 640, Height: 480, ReportInterval: 200 * time.Millisecond}
	r := start(t, cfg, dial(t, url))

	if err := r.wait(t, 20*time.Second); err != nil {
		t.Fatalf("Run: %v", err)
	}
	var got received
	collect(t, ch, &got, 5*time.Second, stateAfter(0, wire.StateStopped))

	st := r.a.Stats()
	if st.Captured != 20 || st.Frames != 20 || st.Skipped != 0 {
		t.Errorf("stats %+v, want 20 frames captured and due", st)
	}
	if len(got.frames) < 10 {
		t.Fatalf("only %d of 20 frames received", len(got.frames))
	}
	var firstT time.Time
	var firstSeq, prev uint64
	for i, m := range got.frames {
		f := decode(t, m)
		if f.Width != 320 || f.Height != 240 {
			t.Errorf("frame %d is %dx%d: a smaller frame must not be enlarged", f.Seq, f.Width, f.Height)
		}
		if idx := videoIndex(t, f.brightness); uint64(idx) != f.Seq-1 {
			t.Errorf("frame seq %d shows file frame %d", f.Seq, idx)
		}
		if f.Seq <= prev {
			t.Errorf("seq %d after %d", f.Seq, prev)
		}
		prev = f.Seq
		if i == 0 {
			firstT, firstSeq = f.Time, f.Seq
			continue
		}
		// Played at the file's 20 fps, not faster.
		if span, want := f.Time.Sub(firstT), time.Duration(f.Seq-firstSeq)*50*time.Millisecond; span < want-20*time.Millisecond {
			t.Errorf("frame %d came %v after frame %d, want >= %v", f.Seq, span, firstSeq, want)
		}
	}
	checkCounts(t, r.a, &got)
}

func TestVideoFileFPSCap(t *testing.T) {
	_, url := startNATS(t, nil)
	ch := subscribe(t, url, "slow")
	path := writeVideo(t, t.TempDir(), 320, 240, 20, 20)
	cfg := Config{ID: "slow", Source: path, FPS: 10, Width: 320, Height: 240}
	r := start(t, cfg, dial(t, url))
	if err := r.wait(t, 20*time.Second); err != nil {
		t.Fatalf("Run: %v", err)
	}
	var got received
	collect(t, ch, &got, 5*time.Second, stateAfter(0, wire.StateStopped))

	// The file's frames are due on its own clock: every other one at 10 fps.
	st := r.a.Stats()
	if st.Captured != 20 || st.Frames != 10 || st.Skipped != 10 {
		t.Errorf("stats %+v, want 20 captured, 10 due, 10 skipped", st)
	}
	for _, m := range got.frames {
		f := decode(t, m)
		if idx := videoIndex(t, f.brightness); uint64(idx) != 2*(f.Seq-1) {
			t.Errorf("frame seq %d shows file frame %d, want %d", f.Seq, idx, 2*(f.Seq-1))
		}
	}
	checkCounts(t, r.a, &got)
}

func TestVideoFileLoop(t *testing.T) {
	_, url := startNATS(t, nil)
	ch := subscribe(t, url, "loop")
	path := writeVideo(t, t.TempDir(), 160, 120, 20, 20)
	cfg := Config{ID: "loop", Source: path, FPS: 30, Width: 320, Height: 240, Loop: true}
	r := start(t, cfg, dial(t, url))

	var got received
	collect(t, ch, &got, 20*time.Second, func(got *received) bool { return len(got.frames) >= 45 })
	select {
	case err := <-r.done:
		t.Fatalf("Run returned %v while looping", err)
	default:
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	collect(t, ch, &got, 5*time.Second, stateAfter(0, wire.StateStopped))

	wrapped := 0
	prevIdx := -1
	for _, m := range got.frames {
		f := decode(t, m)
		idx := videoIndex(t, f.brightness)
		if uint64(idx) != (f.Seq-1)%20 {
			t.Errorf("frame seq %d shows file frame %d, want %d", f.Seq, idx, (f.Seq-1)%20)
		}
		if idx < prevIdx {
			wrapped++
		}
		prevIdx = idx
	}
	if wrapped < 2 {
		t.Errorf("the file wrapped around %d times in %d frames", wrapped, len(got.frames))
	}
	checkCounts(t, r.a, &got)
}

// A video file that disappears while it plays in a loop: at its end the
// agent cannot reopen it, reports source-error, and streams again once the
// file is back.
func TestSourceComesBack(t *testing.T) {
	_, url := startNATS(t, nil)
	ch := subscribe(t, url, "flaky")
	dir := t.TempDir()
	path := writeVideo(t, dir, 160, 120, 20, 20)
	away := filepath.Join(dir, "away.avi")
	cfg := Config{ID: "flaky", Source: path, FPS: 30, Width: 160, Height: 120, Loop: true, ReportInterval: 100 * time.Millisecond}
	r := start(t, cfg, dial(t, url))

	var got received
	collect(t, ch, &got, 10*time.Second, func(got *received) bool {
		return len(got.frames) > 0 && stateAfter(0, wire.StateStreaming)(got)
	})
	if err := os.Rename(path, away); err != nil {
		t.Fatal(err)
	}
	collect(t, ch, &got, 10*time.Second, stateAfter(0, wire.StateSourceError))
	var report *wire.Status
	for _, s := range got.statuses {
		if s.State == wire.StateSourceError {
			report = s
		}
	}
	if !strings.Contains(report.Error, path) || !strings.Contains(report.Error, "does not exist") {
		t.Errorf("source-error report says %q", report.Error)
	}
	if n := r.a.Stats().SourceErrors; n == 0 {
		t.Error("no source error counted")
	}

	if err := os.Rename(away, path); err != nil {
		t.Fatal(err)
	}
	errorAt, framesAt := len(got.statuses), len(got.frames)
	collect(t, ch, &got, 20*time.Second, func(got *received) bool {
		return len(got.frames) > framesAt+5 && stateAfter(errorAt, wire.StateStreaming)(got)
	})
	for _, s := range got.statuses[errorAt:] {
		if s.State == wire.StateStreaming && s.Error != "" {
			t.Errorf("streaming again, but the report still has error %q", s.Error)
		}
	}
	var prev uint64
	for _, m := range got.frames {
		f := decode(t, m)
		if idx := videoIndex(t, f.brightness); f.Seq <= prev || idx < 0 || idx > 19 {
			t.Errorf("frame seq %d (file frame %d) after seq %d", f.Seq, idx, prev)
		}
		prev = f.Seq
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// Noise at 1280x720 makes JPEGs of about 550 KB at quality 80; the server
// takes 24 KiB. The agent keeps streaming, at a lower quality and size.
func TestOversize(t *testing.T) {
	opts := testenv.NATSOptions(t)
	opts.MaxPayload = 24 << 10
	_, url := startNATS(t, opts)
	ch := subscribe(t, url, "noisy")
	cfg := Config{
		ID:      "noisy",
		Source:  "videotestsrc pattern=snow is-live=true ! video/x-raw,width=1280,height=720,framerate=15/1 ! videoconvert ! appsink",
		FPS:     15,
		Width:   1280,
		Height:  720,
		Quality: 80,
	}
	r := start(t, cfg, dial(t, url))

	var got received
	collect(t, ch, &got, 20*time.Second, func(got *received) bool {
		return len(got.frames) >= 10 && r.a.Stats().Oversize >= 10
	})
	select {
	case err := <-r.done:
		t.Fatalf("Run returned %v", err)
	default:
	}
	for _, m := range got.frames {
		f := decode(t, m)
		if f.size > 24<<10-headerRoom {
			t.Errorf("frame %d has %d bytes", f.Seq, f.size)
		}
		if f.Width > 1280 || f.Height > 720 || f.Width*720 != f.Height*1280 {
			t.Errorf("frame %d is %dx%d", f.Seq, f.Width, f.Height)
		}
	}
	st := r.a.Stats()
	if st.Reencodes == 0 || st.TooLarge != 0 || st.PublishFailed != 0 {
		t.Errorf("stats %+v", st)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	collect(t, ch, &got, 5*time.Second, stateAfter(0, wire.StateStopped))
	checkCounts(t, r.a, &got)
}

// While NATS is down, frames are dropped and counted and capture goes on;
// when it is back, frames flow again.
func TestNATSDown(t *testing.T) {
	s, url := startNATS(t, nil)
	port := s.Addr().(*net.TCPAddr).Port
	ch := subscribe(t, url, "away")
	cfg := Config{ID: "away", Source: "testpattern", FPS: 30, Width: 160, Height: 120, ReportInterval: 100 * time.Millisecond}
	r := start(t, cfg, dial(t, url))

	var got received
	collect(t, ch, &got, 10*time.Second, func(got *received) bool { return len(got.frames) >= 5 })

	s.Shutdown()
	s.WaitForShutdown()
	before := r.a.Stats()
	testenv.Eventually(t, 10*time.Second, "frames dropped while NATS is down", func() bool {
		st := r.a.Stats()
		return st.PublishFailed >= before.PublishFailed+10 && st.Captured >= before.Captured+10
	})

	opts := testenv.NATSOptions(t)
	opts.Port = port
	startNATS(t, opts)
	mark := r.a.Stats().Frames
	collect(t, ch, &got, 20*time.Second, func(got *received) bool {
		n := len(got.frames)
		return n > 0 && decode(t, got.frames[n-1]).Seq > mark
	})
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	collect(t, ch, &got, 5*time.Second, stateAfter(0, wire.StateStopped))
	st := r.a.Stats()
	if st.Frames != st.Sent+st.Dropped || st.Dropped < st.PublishFailed || st.PublishFailed < 10 {
		t.Errorf("stats %+v", st)
	}
	if last := got.lastStatus(); last.FramesDropped != st.Dropped || last.FramesSent != st.Sent {
		t.Errorf("stopped report %+v, stats %+v", last, st)
	}
}

func TestNewErrors(t *testing.T) {
	_, url := startNATS(t, nil)
	nc := testenv.Conn(t, url)
	missing := filepath.Join(t.TempDir(), "missing.mp4")
	ok := Config{ID: "cam", Source: "testpattern"}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want []string
	}{
		{"empty id", func(c *Config) { c.ID = "" }, []string{"id", wire.IDRule}},
		{"id with a dot", func(c *Config) { c.ID = "a.b" }, []string{"id", wire.IDRule}},
		{"long id", func(c *Config) { c.ID = strings.Repeat("x", 65) }, []string{"id", wire.IDRule}},
		{"no source", func(c *Config) { c.Source = " " }, []string{"source", "empty"}},
		{"ftp source", func(c *Config) { c.Source = "ftp://x/y" }, []string{"source", `"ftp"`}},
		{"missing file", func(c *Config) { c.Source = missing }, []string{"source", missing, "does not exist"}},
		{"directory", func(c *Config) { c.Source = t.TempDir() }, []string{"source", "directory"}},
		{"negative fps", func(c *Config) { c.FPS = -1 }, []string{"fps"}},
		{"NaN fps", func(c *Config) { c.FPS = math.NaN() }, []string{"fps"}},
		{"huge fps", func(c *Config) { c.FPS = 1000 }, []string{"fps"}},
		{"negative width", func(c *Config) { c.Width, c.Height = -640, 480 }, []string{"size"}},
		{"height only", func(c *Config) { c.Height = 480 }, []string{"size"}},
		{"huge size", func(c *Config) { c.Width, c.Height = 100000, 480 }, []string{"size"}},
		{"quality 0 is the default, -1 is not", func(c *Config) { c.Quality = -1 }, []string{"quality"}},
		{"quality 101", func(c *Config) { c.Quality = 101 }, []string{"quality"}},
		{"quality 500", func(c *Config) { c.Quality = 500 }, []string{"quality", "500"}},
		{"report interval too long", func(c *Config) { c.ReportInterval = 10 * time.Second }, []string{"report interval"}},
		{"negative report interval", func(c *Config) { c.ReportInterval = -time.Second }, []string{"report interval"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.edit(&cfg)
			a, err := New(cfg, nc, nil)
			if err == nil {
				t.Fatalf("New(%+v) = %v, want an error", cfg, a)
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("%v does not wrap ErrConfig", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if verr := cfg.Validate(); verr == nil || verr.Error() != err.Error() {
				t.Errorf("Validate: %v, New: %v", verr, err)
			}
		})
	}
	if _, err := New(Config{ID: "a b", Source: "testpattern"}, nc, nil); !errors.Is(err, wire.ErrInvalidID) {
		t.Errorf("bad id: %v does not wrap wire.ErrInvalidID", err)
	}
	if _, err := New(ok, nil, nil); err == nil || !strings.Contains(err.Error(), "NATS") {
		t.Errorf("no connection: %v", err)
	}
	a, err := New(ok, nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.cfg.FPS != DefaultFPS || a.cfg.Width != DefaultWidth || a.cfg.Height != DefaultHeight ||
		a.cfg.Quality != DefaultQuality || a.cfg.ReportInterval != wire.DefaultReportInterval {
		t.Errorf("defaults: %+v", a.cfg)
	}
}

// logCounter counts log records by level and message.
type logCounter struct {
	slog.Handler
	mu     *sync.Mutex
	counts map[string]int // "LEVEL message"
}

func newLogCounter(t testing.TB) logCounter {
	return logCounter{Handler: testLog(t).Handler(), mu: new(sync.Mutex), counts: map[string]int{}}
}

func (h logCounter) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	h.counts[r.Level.String()+" "+r.Message]++
	h.mu.Unlock()
	return h.Handler.Handle(ctx, r)
}

func (h logCounter) WithAttrs(as []slog.Attr) slog.Handler {
	h.Handler = h.Handler.WithAttrs(as)
	return h
}

func (h logCounter) WithGroup(name string) slog.Handler {
	h.Handler = h.Handler.WithGroup(name)
	return h
}

func (h logCounter) count(level slog.Level, msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[level.String()+" "+msg]
}

// A pipeline that ends after three frames: the agent reports source-error
// and reopens it each time, but warns once, not at every failure.
func TestFlappingSource(t *testing.T) {
	_, url := startNATS(t, nil)
	ch := subscribe(t, url, "flap")
	logs := newLogCounter(t)
	a, err := New(Config{
		ID:             "flap",
		Source:         "videotestsrc num-buffers=3 ! video/x-raw,width=160,height=120 ! videoconvert ! appsink",
		FPS:            30,
		ReportInterval: 100 * time.Millisecond,
	}, dial(t, url), slog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	a.backoffMin, a.backoffMax = 10*time.Millisecond, 10*time.Millisecond
	r := run(t, a)

	var got received
	collect(t, ch, &got, 30*time.Second, func(got *received) bool {
		return a.Stats().SourceErrors >= 4 && len(got.frames) >= 9
	})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	collect(t, ch, &got, 5*time.Second, stateAfter(0, wire.StateStopped))

	if n := logs.count(slog.LevelWarn, "camera source failed; reopening it with backoff"); n != 1 {
		t.Errorf("%d warnings for %d source errors, want 1", n, a.Stats().SourceErrors)
	}
	if n := logs.count(slog.LevelInfo, "camera recovered"); n > 1 {
		t.Errorf("%d Info logs of recoveries, want at most 1", n)
	}
	sawError := false
	for _, s := range got.statuses {
		if s.State == wire.StateSourceError {
			sawError = true
			if !strings.Contains(s.Error, "gives no frames") || !strings.Contains(s.Error, "GStreamer pipeline videotestsrc") {
				t.Errorf("source-error report says %q", s.Error)
			}
		}
	}
	if !sawError {
		t.Errorf("no source-error report: %v", &got)
	}
	for _, m := range got.frames {
		if f := decode(t, m); f.Width != 160 || f.Height != 120 {
			t.Errorf("frame %d is %dx%d", f.Seq, f.Width, f.Height)
		}
	}
	checkCounts(t, a, &got)
}
