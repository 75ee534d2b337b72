package test

import (
	"path/filepath"
	"testing"

	"camhub/internal/testenv"
)

// An H.264 IP camera (GStreamer's RTSP server sending real footage) passed
// through by its agent, beside a JPEG camera, in the grid viewer's real
// window: both tiles show moving pictures.
func TestH264CameraInWindow(t *testing.T) {
	ts := filepath.Join(t.TempDir(), "cam.ts")
	// 60 s of people walking at 640x360, 15 fps, a keyframe a second, no
	// B-frames: what an IP camera sends.
	testenv.FFmpeg(t, "-stream_loop", "-1", "-i", testenv.Footage, "-t", "60",
		"-vf", "scale=640:360,fps=15", "-c:v", "libx264", "-preset", "veryfast", "-g", "15", "-bf", "0", "-an",
		"-f", "mpegts", ts)
	srv := testenv.StartRTSPServer(t, "( filesrc location="+ts+" ! tsdemux ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 )")

	hub := start(t, nil, "hub", "--listen", "127.0.0.1:0", "--monitor", "127.0.0.1:0")
	url := hub.waitLog(`msg="NATS server ready" url=(nats://[0-9.:]+)`)
	ipcam := start(t, nil, "agent", "--id", "ipcam", "--source", srv.URL(), "--codec", "h264", "--nats", url)
	pattern := start(t, nil, "agent", "--id", "pattern", "--source", "testpattern", "--nats", url, "--fps", "10", "--size", "320x240")
	ipcam.waitLog(`passing the camera's H\.264 through`)
	waitStates(t, url, map[string]string{"ipcam": "live", "pattern": "live"})

	display := testenv.Xvfb(t)
	viewer := start(t, []string{"DISPLAY=" + display}, "viewer", "--cams", "ipcam,pattern", "--nats", url, "--window-size", "960x360")
	win := fittedWindow(t, display)
	waitTilesChange(t, display, win, "h264-window.png")

	viewer.stop()
	ipcam.stop()
	pattern.stop()
	hub.stop()
}
