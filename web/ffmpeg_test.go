package web

import (
	"bytes"
	"context"
	"fmt"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// ffmpeg, as Home Assistant and VLC do, opens stream.mjpg by its content
// type alone and reads the camera's frames out of it, byte for byte.
func TestFFmpegReadsMJPEG(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatalf("no ffmpeg (scripts/deps.sh test, or apt-get install ffmpeg): %v", err)
	}
	_, nc := startHub(t)
	s, ts := startWeb(t, Config{}, nc)
	cam := newCamera(t, nc, "front", 320, 240, 10, 0)
	cam.report(wire.StateStreaming)
	cam.frame()
	testenv.Eventually(t, 10*time.Second, "the first frame", func() bool { return s.known("front") })
	cam.run(50 * time.Millisecond)

	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error",
		"-i", ts.URL+"/cams/front/stream.mjpg",
		"-frames:v", "5", "-c:v", "copy", "-f", "image2", filepath.Join(dir, "out%d.jpg"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	for i := 1; i <= 5; i++ {
		data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("out%d.jpg", i)))
		if err != nil {
			t.Fatal(err)
		}
		img, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("frame %d from ffmpeg: %v", i, err)
		}
		if b := img.Bounds(); b.Dx() != 320 || b.Dy() != 240 {
			t.Errorf("frame %d from ffmpeg is %v", i, b)
		}
		sent := false
		for _, p := range cam.pics {
			sent = sent || bytes.Equal(p, data)
		}
		if !sent {
			t.Errorf("frame %d from ffmpeg is not one of the camera's frames", i)
		}
	}
	testenv.Eventually(t, 10*time.Second, "ffmpeg's stream to end", func() bool { return s.Stats().Clients == 0 })
}
