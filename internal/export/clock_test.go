package export

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"camhub/internal/replay"
)

// publishWithStray publishes 21 frames 100 ms apart, frame at+1 of them
// dated stray, and returns the good frames' capture times.
func publishWithStray(t *testing.T, h func(shot) uint64, pos int, stray time.Time) []time.Time {
	t.Helper()
	ts := series(20, time.Now())
	var good []time.Time
	for i := range 21 {
		at := stray
		switch {
		case i < pos:
			at = ts[i]
		case i > pos:
			at = ts[i-1]
		}
		if i != pos {
			good = append(good, at)
		}
		h(shot{id: "front", seq: uint64(i + 1), at: at})
	}
	return good
}

// strays are frames with a wrong clock: where among 21 frames, and when.
var strays = map[string]struct {
	pos int
	at  time.Time
}{
	"2099 in the middle": {10, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)},
	"1970 in the middle": {10, time.Unix(1, 0)},
	"1970 first":         {0, time.Unix(1, 0)},
	"2099 last":          {20, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)},
}

// A frame with a wrong clock (the year 2099, or 1970) among good ones: the
// export keeps every good frame, times the clip by them, and counts the
// stray one.
func TestExportSkipsFrameWithWrongClock(t *testing.T) {
	for name, c := range strays {
		t.Run(name, func(t *testing.T) {
			_, js := startHub(t, hubConfig())
			good := publishWithStray(t, func(s shot) uint64 { return publish(t, js, s) }, c.pos, c.at)
			out := filepath.Join(t.TempDir(), "clip.avi")
			res, err := Export(ctxFor(t, 30*time.Second), js, Options{ID: "front", Out: out})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", res)
			if res.Frames != 20 || res.OutOfOrder != 1 {
				t.Fatalf("%d frames, %d out of order; want 20 and 1", res.Frames, res.OutOfOrder)
			}
			if !res.First.Equal(good[0]) || !res.Last.Equal(good[19]) {
				t.Fatalf("clip from %v to %v, want %v to %v", res.First, res.Last, good[0], good[19])
			}
			if res.FPS < 9 || res.FPS > 11 {
				t.Fatalf("clip at %v fps, want the frames' 10", res.FPS)
			}
		})
	}
}

// Mistakes in an export's request get messages that say what is wrong.
func TestExportClearMessages(t *testing.T) {
	_, js := startHub(t, hubConfig())
	publishSeries(t, js, "front", series(5, time.Now().Add(-time.Second)))
	dir := t.TempDir()
	for _, out := range []string{dir, filepath.Join(dir, "sub.mp4")} {
		if out != dir {
			if err := os.Mkdir(out, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		_, err := Export(ctxFor(t, 10*time.Second), js, Options{ID: "front", Out: out})
		if !errors.Is(err, replay.ErrInvalid) || !strings.Contains(err.Error(), "is a directory") {
			t.Errorf("--out %s: %v, want it named a directory", out, err)
		}
	}
	// --since 1ns: from now on, after the newest frame.
	_, err := Export(ctxFor(t, 10*time.Second), js, Options{ID: "front", From: time.Now().Add(-time.Nanosecond), Out: filepath.Join(dir, "c.mp4")})
	if !errors.Is(err, replay.ErrOutOfRange) || !strings.Contains(err.Error(), "newest frame was captured at") || strings.Contains(err.Error(), "(-") {
		t.Errorf("since 1ns: %v", err)
	}
	t.Log(err)
}
