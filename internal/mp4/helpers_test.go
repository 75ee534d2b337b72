package mp4

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"camhub/internal/h264"
)

// footage is real footage from Debian's opencv-doc (scripts/deps.sh test).
const footage = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

// run runs a tool (ffmpeg, ffprobe) and fails the test with its output
// if it fails; it returns standard output.
func run(t testing.TB, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-hide_banner", "-v", "error"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, stderr.Bytes())
	}
	return string(out)
}

// clip is an H.264 clip made by ffmpeg/libx264: its access units in
// decode order and ffmpeg's presentation and decode times for them.
type clip struct {
	aus      [][]byte
	pts, dts []time.Duration
}

// makeClip encodes frames frames of the footage at size and 15 fps with a
// keyframe every gop frames and at most bf B-frames in a row, into
// MPEG-TS (which carries PTS and DTS), and splits its elementary stream
// with internal/h264.AccessUnits.
func makeClip(t testing.TB, size string, frames, gop, bf int) clip {
	t.Helper()
	dir := t.TempDir()
	ts := filepath.Join(dir, "clip.ts")
	preset := "ultrafast"
	if bf > 0 {
		preset = "veryfast" // ultrafast turns B-frames off
	}
	run(t, "ffmpeg", "-i", footage, "-frames:v", strconv.Itoa(frames), "-vf", "scale="+size+",fps=15",
		"-c:v", "libx264", "-preset", preset, "-g", strconv.Itoa(gop), "-keyint_min", strconv.Itoa(gop),
		"-sc_threshold", "0", "-bf", strconv.Itoa(bf), "-crf", "30", "-an", "-f", "mpegts", ts)
	es := filepath.Join(dir, "clip.h264")
	run(t, "ffmpeg", "-i", ts, "-c:v", "copy", "-f", "h264", es)
	b, err := os.ReadFile(es)
	if err != nil {
		t.Fatal(err)
	}
	aus, err := h264.AccessUnits(b)
	if err != nil {
		t.Fatal(err)
	}
	var c clip
	for _, line := range strings.Fields(run(t, "ffprobe", "-select_streams", "v", "-show_entries", "packet=pts,dts", "-of", "csv=p=0", ts)) {
		p, d, _ := strings.Cut(strings.TrimRight(line, ","), ",")
		pi, err1 := strconv.ParseInt(p, 10, 64)
		di, err2 := strconv.ParseInt(d, 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("ffprobe packet line %q", line)
		}
		c.pts = append(c.pts, time.Duration(pi)*time.Second/90000)
		c.dts = append(c.dts, time.Duration(di)*time.Second/90000)
	}
	if len(aus) != frames || len(c.pts) != frames {
		t.Fatalf("clip: %d access units, %d packets, want %d", len(aus), len(c.pts), frames)
	}
	c.aus = aus
	return c
}

// probe is what ffprobe says of a file's video stream, having read every
// frame.
type probe struct {
	Codec    string `json:"codec_name"`
	Width    int    `json:"width"`
	Height   int    `json:"height"`
	Duration string `json:"duration"`
	Frames   string `json:"nb_read_frames"`
}

func ffprobe(t testing.TB, path string) probe {
	t.Helper()
	out := run(t, "ffprobe", "-count_frames", "-show_entries", "stream=nb_read_frames,codec_name,width,height,duration", "-of", "json", path)
	var r struct{ Streams []probe }
	if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.Streams) != 1 {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	return r.Streams[0]
}

// check asserts that the file at path holds frames frames of H.264 at
// w x h lasting dur (within tolerance), and that ffmpeg decodes all of
// it without a word on standard error.
func check(t testing.TB, path string, frames, w, h int, dur, tolerance time.Duration) {
	t.Helper()
	p := ffprobe(t, path)
	if p.Codec != "h264" || p.Width != w || p.Height != h || p.Frames != strconv.Itoa(frames) {
		t.Errorf("ffprobe: %+v, want h264 %dx%d, %d frames", p, w, h, frames)
	}
	sec, err := strconv.ParseFloat(p.Duration, 64)
	if err != nil {
		t.Fatalf("ffprobe duration %q", p.Duration)
	}
	if got := time.Duration(sec * float64(time.Second)); got < dur-tolerance || got > dur+tolerance {
		t.Errorf("ffprobe duration %v, want %v ± %v", got, dur, tolerance)
	}
	cmd := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-i", path, "-f", "null", "-")
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("ffmpeg decoding %s: %v\n%s", path, err, out)
	}
}

// framePTS returns the presentation times of the decoded frames of a
// file, in the order the decoder outputs them, in seconds.
func framePTS(t testing.TB, path string) []float64 {
	t.Helper()
	var out []float64
	for _, f := range strings.Fields(run(t, "ffprobe", "-select_streams", "v", "-show_entries", "frame=pts_time", "-of", "csv=p=0", path)) {
		v, err := strconv.ParseFloat(strings.TrimSuffix(f, ","), 64)
		if err != nil {
			t.Fatalf("ffprobe frame pts %q", f)
		}
		out = append(out, v)
	}
	return out
}
