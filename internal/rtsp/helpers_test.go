package rtsp

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"camhub/internal/h264"
	"camhub/internal/testenv"
)

// startServer starts the GStreamer RTSP server: testenv.StartRTSPServer.
func startServer(t testing.TB, launch string, credentials ...string) *testenv.RTSPServer {
	t.Helper()
	return testenv.StartRTSPServer(t, launch, credentials...)
}

// ffmpeg runs ffmpeg with args and fails the test on an error.
func ffmpeg(t testing.TB, args ...string) {
	t.Helper()
	testenv.FFmpeg(t, args...)
}

// footage is real footage from Debian's opencv-doc.
const footage = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

// clip encodes seconds of footage with libx264 at the given size, rate
// and bitrate, one keyframe a second, no B-frames, into MPEG-TS, and
// returns the path of the TS and its access units: its H.264 bitstream
// taken out again in Annex B form, with the access unit delimiters the
// TS muxer added (what a server that sends the TS's stream sends).
func clip(t testing.TB, size string, fps, seconds int, bitrate string) (string, [][]byte) {
	t.Helper()
	dir := t.TempDir()
	es := filepath.Join(dir, "clip.h264")
	ts := filepath.Join(dir, "clip.ts")
	rate := strconv.Itoa(fps)
	args := []string{"-stream_loop", "-1", "-i", footage, "-t", strconv.Itoa(seconds), "-vf", "scale=" + size + ",fps=" + rate,
		"-c:v", "libx264", "-preset", "veryfast", "-g", rate, "-bf", "0", "-an"}
	if bitrate != "" {
		args = append(args, "-b:v", bitrate, "-maxrate", bitrate, "-bufsize", bitrate)
	}
	ffmpeg(t, append(args, "-f", "h264", es)...)
	ffmpeg(t, "-i", es, "-c", "copy", "-f", "mpegts", ts)
	back := filepath.Join(dir, "back.h264")
	ffmpeg(t, "-i", ts, "-c", "copy", "-f", "h264", back)
	b, err := os.ReadFile(back)
	if err != nil {
		t.Fatal(err)
	}
	aus, err := h264.AccessUnits(b)
	if err != nil {
		t.Fatal(err)
	}
	return ts, aus
}

// nalus returns the NAL units of an access unit; without access unit
// delimiters if noAUD.
func nalus(t testing.TB, au []byte, noAUD bool) [][]byte {
	t.Helper()
	ns, err := h264.Split(au)
	if err != nil {
		t.Fatal(err)
	}
	out := ns[:0:0]
	for _, n := range ns {
		if !noAUD || h264.Type(n) != h264.TypeAUD {
			out = append(out, n)
		}
	}
	return out
}

// sameNALUs reports whether two access units hold the same NAL units
// (whatever their start codes).
func sameNALUs(t testing.TB, a, b []byte) bool {
	x, y := nalus(t, a, false), nalus(t, b, false)
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if !bytes.Equal(x[i], y[i]) {
			return false
		}
	}
	return true
}
