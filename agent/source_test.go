package agent

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseSource(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Source
		str  string // want.String(), if given
	}{
		{"testpattern", Source{Kind: TestPattern}, "testpattern"},
		{" TestPattern ", Source{Kind: TestPattern}, ""},
		{"0", Source{Kind: Device, Device: 0}, "camera /dev/video0"},
		{"12", Source{Kind: Device, Device: 12}, ""},
		{"/dev/video2", Source{Kind: Device, Device: 2}, "camera /dev/video2"},
		{"/dev/v4l/by-id/usb-cam-video-index0", Source{Kind: Device, Device: -1, Path: "/dev/v4l/by-id/usb-cam-video-index0"}, ""},
		{"/dev/videox", Source{Kind: Device, Device: -1, Path: "/dev/videox"}, ""},
		{"rtsp://10.0.0.5/stream", Source{Kind: URL, Path: "rtsp://10.0.0.5/stream"}, "stream rtsp://10.0.0.5/stream"},
		{"rtsp://user:pass@10.0.0.5:554/stream", Source{Kind: URL, Path: "rtsp://user:pass@10.0.0.5:554/stream"},
			"stream rtsp://REDACTED@10.0.0.5:554/stream"},
		{"RTSPS://cam/x", Source{Kind: URL, Path: "RTSPS://cam/x"}, ""},
		{"http://cam/video.mjpg", Source{Kind: URL, Path: "http://cam/video.mjpg"}, ""},
		{"https://cam/live.m3u8", Source{Kind: URL, Path: "https://cam/live.m3u8"}, ""},
		{"videotestsrc ! videoconvert ! appsink", Source{Kind: Pipeline, Path: "videotestsrc ! videoconvert ! appsink"}, ""},
		{"rtspsrc location=rtsp://u:p@cam/x ! decodebin ! videoconvert ! appsink",
			Source{Kind: Pipeline, Path: "rtspsrc location=rtsp://u:p@cam/x ! decodebin ! videoconvert ! appsink"},
			"GStreamer pipeline rtspsrc location=rtsp://REDACTED@cam/x ! decodebin ! videoconvert ! appsink"},
		{"/videos/door.mp4", Source{Kind: File, Path: "/videos/door.mp4"}, "video file /videos/door.mp4"},
		{"clip.avi", Source{Kind: File, Path: "clip.avi"}, ""},
		{"0.mp4", Source{Kind: File, Path: "0.mp4"}, ""},
		{"my!clip.mp4", Source{Kind: File, Path: "my!clip.mp4"}, ""},
	} {
		got, err := ParseSource(tc.in)
		if err != nil {
			t.Errorf("ParseSource(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseSource(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		if tc.str != "" && got.String() != tc.str {
			t.Errorf("ParseSource(%q).String() = %q, want %q", tc.in, got.String(), tc.str)
		}
	}

	for _, tc := range []struct{ in, want string }{
		{"", "empty"},
		{"   ", "empty"},
		{"99999", "camera index"},
		{"99999999999999999999999", "camera index"},
		{"ftp://cam/x", `unsupported URL scheme "ftp"`},
		{"rtmp://user:secret@cam/x", "REDACTED"},
		{"rtsp:///stream", "host"},
	} {
		_, err := ParseSource(tc.in)
		if err == nil {
			t.Errorf("ParseSource(%q) did not fail", tc.in)
			continue
		}
		if !errors.Is(err, ErrBadSource) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseSource(%q): %v, want an ErrBadSource saying %q", tc.in, err, tc.want)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("ParseSource(%q): %v shows the password", tc.in, err)
		}
	}
}

func FuzzParseSource(f *testing.F) {
	for _, s := range []string{"testpattern", "0", "/dev/video1", "rtsp://u:p@h/x", "a ! b", "x.mp4", "ftp://x", "9://"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		src, err := ParseSource(s)
		if err != nil {
			return
		}
		if src.Kind < TestPattern || src.Kind > Pipeline {
			t.Fatalf("ParseSource(%q) = %+v", s, src)
		}
		_ = src.String()
	})
}

func TestFitSize(t *testing.T) {
	for _, tc := range []struct{ w, h, maxW, maxH, wantW, wantH int }{
		{640, 480, 640, 480, 640, 480},
		{320, 240, 640, 480, 320, 240}, // never enlarged
		{1280, 720, 640, 480, 640, 360},
		{1920, 1080, 1280, 720, 1280, 720},
		{640, 480, 1280, 360, 480, 360}, // the height limits
		{480, 640, 640, 480, 360, 480},  // portrait
		{4000, 10, 100, 100, 100, 1},    // never 0
		{641, 480, 640, 480, 640, 479},
	} {
		w, h := fitSize(tc.w, tc.h, tc.maxW, tc.maxH)
		if w != tc.wantW || h != tc.wantH {
			t.Errorf("fitSize(%dx%d in %dx%d) = %dx%d, want %dx%d", tc.w, tc.h, tc.maxW, tc.maxH, w, h, tc.wantW, tc.wantH)
		}
	}
}

// dueCount feeds a pacer with frames every interval for total and counts
// the due ones.
func dueCount(fps float64, interval, jitter, total time.Duration) int {
	p := pacer{period: time.Duration(float64(time.Second) / fps)}
	n, i := 0, 0
	for t := time.Duration(0); t < total; t += interval {
		j := jitter
		if i%2 == 1 {
			j = -jitter
		}
		i++
		if p.due(t + j) {
			n++
		}
	}
	return n
}

func TestPacer(t *testing.T) {
	const s = time.Second
	for _, tc := range []struct {
		fps              float64
		interval, jitter time.Duration
		min, max         int // due frames in 10 s
	}{
		{15, s / 30, 0, 149, 151},
		{15, s / 30, 3 * time.Millisecond, 149, 151},
		{15, s / 25, 0, 149, 151},
		{15, s / 16, 0, 149, 151},
		{15, s / 15, 2 * time.Millisecond, 150, 150}, // as fast as the cap: every frame
		{15, s / 10, 0, 100, 100},                    // slower than the cap: every frame
		{10, s / 20, 0, 100, 100},                    // half of them, exactly
		{1, s / 30, 0, 10, 11},                       // a quarter period early is due
	} {
		if n := dueCount(tc.fps, tc.interval, tc.jitter, 10*s-time.Millisecond); n < tc.min || n > tc.max {
			t.Errorf("cap %v fps, a frame every %v±%v: %d due in 10 s, want %d-%d",
				tc.fps, tc.interval, tc.jitter, n, tc.min, tc.max)
		}
	}

	// After a stall, no burst: the next frame is due, the one after a
	// period later.
	p := pacer{period: 100 * time.Millisecond}
	p.due(0)
	if !p.due(5 * s) {
		t.Error("first frame after a stall not due")
	}
	if p.due(5*s + 10*time.Millisecond) {
		t.Error("burst after a stall")
	}
}

func TestLadder(t *testing.T) {
	for _, q := range []int{1, 20, 50, 80, 100} {
		s := ladder(q)
		if s[0] != (step{q, 1}) {
			t.Errorf("ladder(%d) starts at %v", q, s[0])
		}
		for i := 1; i < len(s); i++ {
			if s[i].quality > s[i-1].quality || s[i].div < s[i-1].div || s[i] == s[i-1] {
				t.Errorf("ladder(%d) = %v does not go down", q, s)
			}
		}
		if last := s[len(s)-1]; last.div != 8 {
			t.Errorf("ladder(%d) ends at %v", q, last)
		}
	}
}
