package export

import (
	"camhub/hub/hubtest"
	"camhub/internal/replay/replaytest"
	"camhub/internal/testenv"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"camhub/internal/replay"
)

// A frame with a wrong clock (the year 2099, or 1970) among good ones: the
// export keeps every good frame, times the clip by them, and counts the
// stray one.
func TestExportSkipsFrameWithWrongClock(t *testing.T) {
	for name, c := range replaytest.Strays {
		t.Run(name, func(t *testing.T) {
			_, js := hubtest.StartJS(t, nil)
			good := replaytest.PublishWithStray(t, func(s replaytest.Shot) uint64 { return replaytest.Publish(t, js, s) }, c.Pos, c.At)
			out := filepath.Join(t.TempDir(), "clip.avi")
			res, err := Export(testenv.Context(t, 30*time.Second), js, Options{ID: "front", Out: out})
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
	_, js := hubtest.StartJS(t, nil)
	replaytest.PublishSeries(t, js, "front", replaytest.Series(5, time.Now().Add(-time.Second)))
	dir := t.TempDir()
	for _, out := range []string{dir, filepath.Join(dir, "sub.mp4")} {
		if out != dir {
			if err := os.Mkdir(out, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		_, err := Export(testenv.Context(t, 10*time.Second), js, Options{ID: "front", Out: out})
		if !errors.Is(err, replay.ErrInvalid) || !strings.Contains(err.Error(), "is a directory") {
			t.Errorf("--out %s: %v, want it named a directory", out, err)
		}
	}
	// --since 1ns: from now on, after the newest frame.
	_, err := Export(testenv.Context(t, 10*time.Second), js, Options{ID: "front", From: time.Now().Add(-time.Nanosecond), Out: filepath.Join(dir, "c.mp4")})
	if !errors.Is(err, replay.ErrOutOfRange) || !strings.Contains(err.Error(), "newest frame was captured at") || strings.Contains(err.Error(), "(-") {
		t.Errorf("since 1ns: %v", err)
	}
	t.Log(err)
}
