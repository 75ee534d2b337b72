package rtsp

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"camhub/internal/h264"
)

// serverScript is a GStreamer RTSP server (gst-rtsp-server through
// Python's GObject bindings) serving the launch line argv[2] at
// rtsp://127.0.0.1:<port>/cam, one media per client (each client gets
// the clip from its start). Port argv[1] "0" picks a free one; it prints
// the port it listens on. An argv[3] "user:password" makes it ask for
// them (HTTP Basic).
const serverScript = `
import sys, gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer, GLib
Gst.init(None)
s = GstRtspServer.RTSPServer()
s.set_address("127.0.0.1")
s.set_service(sys.argv[1])
f = GstRtspServer.RTSPMediaFactory()
f.set_launch(sys.argv[2])
f.set_shared(False)
if len(sys.argv) > 3:
    user, pw = sys.argv[3].split(":", 1)
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", "cam")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, pw), token)
    s.set_auth(auth)
    perms = GstRtspServer.RTSPPermissions()
    perms.add_permission_for_role("cam", "media.factory.access", True)
    perms.add_permission_for_role("cam", "media.factory.construct", True)
    f.set_permissions(perms)
s.get_mount_points().add_factory("/cam", f)
s.attach(None)
print("rtsp server ready on", s.get_bound_port(), flush=True)
GLib.MainLoop().run()
`

// server is a running RTSP server process.
type server struct {
	cmd  *exec.Cmd
	port string
	done chan struct{}
}

// startServer starts the GStreamer RTSP server with a launch line (and
// credentials, "user:password", if any) and waits until it listens; it is
// killed when the test ends.
func startServer(t testing.TB, launch string, credentials ...string) *server {
	t.Helper()
	script := filepath.Join(t.TempDir(), "rtsp.py")
	if err := os.WriteFile(script, []byte(serverScript), 0o644); err != nil {
		t.Fatal(err)
	}
	// Debian's python3, which has the GObject bindings (python3-gi,
	// python3-gst-1.0, gir1.2-gst-rtsp-server-1.0: scripts/deps.sh test)
	cmd := exec.Command("/usr/bin/python3", append([]string{script, "0", launch}, credentials...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, done: make(chan struct{})}
	ports := make(chan string, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(out)
		rx := regexp.MustCompile(`rtsp server ready on (\d+)`)
		for sc.Scan() {
			if m := rx.FindStringSubmatch(sc.Text()); m != nil {
				ports <- m[1]
			}
		}
		cmd.Wait()
	}()
	t.Cleanup(func() {
		s.kill()
	})
	select {
	case s.port = <-ports:
	case <-s.done:
		t.Fatalf("RTSP server exited: %s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("RTSP server did not start within 30 s")
	}
	return s
}

// kill stops the server at once (SIGKILL, as a camera losing power) and
// waits for it.
func (s *server) kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

func (s *server) url() string { return "rtsp://127.0.0.1:" + s.port + "/cam" }

// ffmpeg runs ffmpeg with args and fails the test on an error.
func ffmpeg(t testing.TB, args ...string) {
	t.Helper()
	cmd := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
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
