package export

import (
	"camhub/hub/hubtest"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"camhub/internal/replay"
	"camhub/internal/testenv"
)

// probeH264 is what ffprobe says of a file's video stream having read
// every frame.
func probeH264(t *testing.T, path string) (codec string, w, h, frames int, dur time.Duration) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_entries",
		"stream=nb_read_frames,codec_name,width,height,duration", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var r struct {
		Streams []struct {
			Codec    string `json:"codec_name"`
			Width    int    `json:"width"`
			Height   int    `json:"height"`
			Duration string `json:"duration"`
			Frames   string `json:"nb_read_frames"`
		}
	}
	if err := json.Unmarshal(out, &r); err != nil || len(r.Streams) != 1 {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	s := r.Streams[0]
	frames, _ = strconv.Atoi(s.Frames)
	sec, _ := strconv.ParseFloat(s.Duration, 64)
	return s.Codec, s.Width, s.Height, frames, time.Duration(sec * float64(time.Second))
}

// An H.264 camera exports to MP4 without re-encoding: the clip starts at
// the keyframe at or before the start, holds exactly the access units
// captured from there to the end, and lasts as long as their capture
// times span (plus the last interval).
func TestExportH264(t *testing.T) {
	_, js := hubtest.StartJS(t, nil)
	const n, gop = 40, 10
	aus := testenv.H264Clip(t, 320, 240, n, gop)
	// 15 fps with a camera's jitter: the clip keeps the capture times
	base := time.Now().Add(-10 * time.Second).Truncate(time.Millisecond)
	ts := make([]time.Time, n)
	for i := range ts {
		ts[i] = base.Add(time.Duration(i)*time.Second/15 + time.Duration(i%3)*7*time.Millisecond)
	}
	testenv.PublishVideo(t, js, "h", aus, ts, 320, 240)
	dir := t.TempDir()
	ctx := testenv.Context(t, 30*time.Second)
	tol := time.Second / 90000 * 2

	for _, tc := range []struct {
		name       string
		from, to   time.Time
		first, end int // the access units in the clip: first..end-1
	}{
		{"all", time.Time{}, time.Time{}, 0, n},
		{"from mid-GOP", ts[13].Add(time.Millisecond), ts[34], 10, 35},
		{"from a keyframe", ts[20], ts[29], 20, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, tc.name+".mp4")
			res, err := Export(ctx, js, Options{ID: "h", From: tc.from, To: tc.to, Out: out})
			if err != nil {
				t.Fatal(err)
			}
			want := tc.end - tc.first
			last := ts[tc.end-1]
			dur := last.Sub(ts[tc.first]) + last.Sub(ts[tc.end-2])
			if res.Frames != want || !res.First.Equal(ts[tc.first]) || !res.Last.Equal(last) || res.Codec != "avc1" || res.Skipped != 0 {
				t.Errorf("result %+v, want %d frames from %v to %v", res, want, ts[tc.first], last)
			}
			codec, w, h, frames, got := probeH264(t, out)
			if codec != "h264" || w != 320 || h != 240 || frames != want {
				t.Errorf("ffprobe: %s %dx%d, %d frames; want h264 320x240, %d frames", codec, w, h, frames, want)
			}
			if got < dur-tol || got > dur+tol {
				t.Errorf("ffprobe duration %v, want %v (the capture times' span and the last interval)", got, dur)
			}
		})
	}

	_, err := Export(ctx, js, Options{ID: "h", Out: filepath.Join(dir, "h.avi")})
	if !errors.Is(err, replay.ErrInvalid) {
		t.Errorf("export of an H.264 camera to .avi: %v, want ErrInvalid", err)
	}
	t.Log(err)
}
