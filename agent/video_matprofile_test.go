//go:build matprofile

package agent

import (
	"testing"
	"time"

	"camhub/internal/avcodec"
	"camhub/internal/testenv"
	"camhub/internal/testenv/cvtest"
)

// Every Mat and every libavcodec object of the H.264 path is freed by the
// time Run returns: the test pattern at odd sides, a file scaled down, a
// grey GStreamer source, and an H.264 small tier beside an H.264 and a
// JPEG main tier.
func TestH264NoLeaks(t *testing.T) {
	_, url := startNATS(t, nil)
	nc := dial(t, url)
	check := cvtest.MatLeaks(t)
	for _, cfg := range []Config{
		{ID: "leak1", Source: "testpattern", Width: 161, Height: 121},
		{ID: "leak2", Source: writeVideo(t, t.TempDir(), 320, 240, 20, 20), Width: 160, Height: 160},
		{ID: "leak3", Source: "videotestsrc num-buffers=40 ! video/x-raw,format=GRAY8,width=176,height=144 ! appsink"},
		{ID: "leak4", Source: "testpattern", Width: 320, Height: 240, LoCodec: CodecH264, LoWidth: 160, LoHeight: 90},
		{ID: "leak5", Source: "testpattern", Codec: CodecJPEG, Width: 320, Height: 240, LoCodec: CodecH264, LoWidth: 160, LoHeight: 90},
	} {
		if cfg.Codec == "" {
			cfg.Codec = CodecH264
		}
		cfg.Encoder, cfg.FPS = avcodec.CodecX264, 30
		r := start(t, cfg, nc)
		testenv.Eventually(t, 20*time.Second, "10 access units sent", func() bool { return r.a.Stats().Sent >= 10 })
		if err := r.stop(t); err != nil {
			t.Fatal(err)
		}
		if avcodec.Live() != 0 {
			t.Errorf("%s: libavcodec objects left: %s", cfg.ID, avcodec.LiveString())
		}
		check(cfg.ID)
	}
}
