package testenv

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Footage is real footage from Debian's opencv-doc (640x480, 10 fps).
const Footage = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

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

// RTSPServer is a running RTSP server process.
type RTSPServer struct {
	cmd  *exec.Cmd
	Port string // the port it listens on, 127.0.0.1
	done chan struct{}
}

// StartRTSPServer starts the GStreamer RTSP server with a launch line (and
// credentials, "user:password", if any) and waits until it listens; it is
// killed when the test ends.
func StartRTSPServer(t testing.TB, launch string, credentials ...string) *RTSPServer {
	t.Helper()
	return StartRTSPServerOn(t, "0", launch, credentials...)
}

// StartRTSPServerOn is StartRTSPServer on a given port ("0": any free one):
// a camera that comes back on its address after losing power.
func StartRTSPServerOn(t testing.TB, port, launch string, credentials ...string) *RTSPServer {
	t.Helper()
	script := filepath.Join(t.TempDir(), "rtsp.py")
	if err := os.WriteFile(script, []byte(serverScript), 0o644); err != nil {
		t.Fatal(err)
	}
	// Debian's python3, which has the GObject bindings (python3-gi,
	// python3-gst-1.0, gir1.2-gst-rtsp-server-1.0: scripts/deps.sh test)
	cmd := exec.Command("/usr/bin/python3", append([]string{script, port, launch}, credentials...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &RTSPServer{cmd: cmd, done: make(chan struct{})}
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
		s.Kill()
	})
	select {
	case s.Port = <-ports:
	case <-s.done:
		t.Fatalf("RTSP server exited: %s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("RTSP server did not start within 30 s")
	}
	return s
}

// Kill stops the server at once (SIGKILL, as a camera losing power) and
// waits for it.
func (s *RTSPServer) Kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// URL is the server's camera, rtsp://127.0.0.1:<port>/cam.
func (s *RTSPServer) URL() string { return "rtsp://127.0.0.1:" + s.Port + "/cam" }

// FFmpeg runs ffmpeg with args and fails the test on an error.
func FFmpeg(t testing.TB, args ...string) {
	t.Helper()
	cmd := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Signal sends sig to the server: SIGSTOP makes a camera that stops
// sending but keeps its connection, SIGCONT resumes it.
func (s *RTSPServer) Signal(sig os.Signal) error { return s.cmd.Process.Signal(sig) }
