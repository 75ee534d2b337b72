// Package motiontest makes the motion detector's test fixtures with ffmpeg
// from real footage: OpenCV's vtest clip of people walking (see
// testenv.Vtest), at 10 frames a second. It needs no cgo.
package motiontest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"camhub/internal/h264"
	"camhub/internal/testenv"
)

// FPS is the fixtures' frame rate; Interval the time between frames.
const (
	FPS      = 10
	Interval = time.Second / FPS
)

// Walk's timing: still until MotionStart, people walking until MotionEnd,
// still (the last walking frame) until WalkLength.
const (
	MotionStart = 10 * time.Second
	MotionEnd   = 20 * time.Second
	WalkLength  = 30 * time.Second
)

// ClockMask masks the band at the bottom of Clock's frames, where the
// clock runs.
const ClockMask = "0,0.85 1,0.85 1,1 0,1"

func ffmpeg(t testing.TB, args ...string) {
	t.Helper()
	cmd := exec.Command("ffmpeg", append([]string{"-hide_banner", "-v", "error", "-y"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
	}
}

func read(t testing.TB, pattern string) [][]byte {
	t.Helper()
	names, err := filepath.Glob(pattern)
	if err != nil || len(names) == 0 {
		t.Fatalf("no files %s: %v", pattern, err)
	}
	out := make([][]byte, len(names))
	for i, n := range names { // Glob sorts: %04d names sort by number
		if out[i], err = os.ReadFile(n); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func size(w, h int) string { return strconv.Itoa(w) + ":" + strconv.Itoa(h) }

// walking returns the first 100 frames of vtest at w x h, as JPEGs.
func walking(t testing.TB, dir string, w, h int) [][]byte {
	t.Helper()
	if _, err := os.Stat(testenv.Vtest); err != nil {
		t.Fatalf("%v: install opencv-doc (scripts/deps.sh test)", err)
	}
	n := int((MotionEnd - MotionStart) / Interval)
	ffmpeg(t, "-i", testenv.Vtest, "-frames:v", strconv.Itoa(n), "-vf", "scale="+size(w, h), "-q:v", "4", filepath.Join(dir, "walk%04d.jpg"))
	return read(t, filepath.Join(dir, "walk*.jpg"))
}

// Walk is 10 s of vtest's first frame, 10 s of its people walking, then
// 10 s of the last of those frames: 300 JPEGs at w x h.
func Walk(t testing.TB, w, h int) [][]byte {
	t.Helper()
	walk := walking(t, t.TempDir(), w, h)
	var out [][]byte
	for range int(MotionStart / Interval) {
		out = append(out, walk[0])
	}
	out = append(out, walk...)
	for len(out) < int(WalkLength/Interval) {
		out = append(out, walk[len(walk)-1])
	}
	return out
}

// Noise is 20 s of vtest's first frame with sensor noise that changes
// every frame (ffmpeg's noise filter, strength 12).
func Noise(t testing.TB, w, h int) [][]byte {
	t.Helper()
	dir := t.TempDir()
	walk := walking(t, dir, w, h)
	first := filepath.Join(dir, "first.jpg")
	if err := os.WriteFile(first, walk[0], 0o644); err != nil {
		t.Fatal(err)
	}
	ffmpeg(t, "-loop", "1", "-framerate", strconv.Itoa(FPS), "-i", first, "-vf", "noise=alls=12:allf=t", "-frames:v", "200",
		"-q:v", "4", filepath.Join(dir, "noise%04d.jpg"))
	return read(t, filepath.Join(dir, "noise*.jpg"))
}

// Brightness is 10 s of vtest's first frame, then 10 s of it much brighter
// (luma +60 at once: a light switched on).
func Brightness(t testing.TB, w, h int) [][]byte {
	t.Helper()
	dir := t.TempDir()
	walk := walking(t, dir, w, h)
	first := filepath.Join(dir, "first.jpg")
	if err := os.WriteFile(first, walk[0], 0o644); err != nil {
		t.Fatal(err)
	}
	ffmpeg(t, "-i", first, "-vf", "lutyuv=y=val+60", "-q:v", "4", filepath.Join(dir, "bright.jpg"))
	bright := read(t, filepath.Join(dir, "bright.jpg"))[0]
	var out [][]byte
	for i := range 200 {
		if i < 100 {
			out = append(out, walk[0])
		} else {
			out = append(out, bright)
		}
	}
	return out
}

// Clock is 20 s of vtest's first frame with a clock (HH:MM:SS.mmm, a new
// value every frame) running in a black band at the bottom (ClockMask).
func Clock(t testing.TB, w, h int) [][]byte {
	t.Helper()
	dir := t.TempDir()
	walk := walking(t, dir, w, h)
	first := filepath.Join(dir, "first.jpg")
	if err := os.WriteFile(first, walk[0], 0o644); err != nil {
		t.Fatal(err)
	}
	vf := "drawbox=x=0:y=ih*0.87:w=iw:h=ih*0.13:color=black:t=fill," +
		"drawtext=fontfile=/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf:text='%{pts\\:hms}':fontsize=h*0.08:fontcolor=white:x=w*0.05:y=h*0.89"
	ffmpeg(t, "-loop", "1", "-framerate", strconv.Itoa(FPS), "-i", first, "-vf", vf, "-frames:v", "200",
		"-q:v", "4", filepath.Join(dir, "clock%04d.jpg"))
	return read(t, filepath.Join(dir, "clock*.jpg"))
}

// H264 encodes JPEG frames (at FPS) with libx264, no B-frames, a keyframe
// every gop frames, SPS and PPS in each, and returns the access units.
func H264(t testing.TB, jpegs [][]byte, gop int) [][]byte {
	t.Helper()
	dir := t.TempDir()
	for i, j := range jpegs {
		if err := os.WriteFile(filepath.Join(dir, "in"+strconv.Itoa(10000+i)+".jpg"), j, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	es := filepath.Join(dir, "out.h264")
	ffmpeg(t, "-framerate", strconv.Itoa(FPS), "-start_number", "10000", "-i", filepath.Join(dir, "in%05d.jpg"),
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
		"-g", strconv.Itoa(gop), "-keyint_min", strconv.Itoa(gop), "-sc_threshold", "0", "-bf", "0",
		"-x264-params", "repeat-headers=1", "-an", "-f", "h264", es)
	b, err := os.ReadFile(es)
	if err != nil {
		t.Fatal(err)
	}
	aus, err := h264.AccessUnits(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(aus) != len(jpegs) {
		t.Fatalf("H.264: %d access units of %d frames", len(aus), len(jpegs))
	}
	return aus
}

// Times are the capture times of n frames at FPS from t0.
func Times(t0 time.Time, n int) []time.Time {
	ts := make([]time.Time, n)
	for i := range ts {
		ts[i] = t0.Add(time.Duration(i) * Interval)
	}
	return ts
}
