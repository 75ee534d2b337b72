package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"camhub/internal/avcodec"
	"camhub/internal/testenv"
)

// viewer snapshot and viewer export of an H.264 camera beside a JPEG one:
// the snapshot is a JPEG of its newest picture, the export its access
// units in an MP4, untouched; .avi is refused with a clear error.
func TestH264SnapshotExport(t *testing.T) {
	t.Cleanup(func() {
		if avcodec.Live() != 0 {
			t.Errorf("leak: %s", avcodec.LiveString())
		}
	})
	url, js := hubJS(t)
	const n = 20
	aus := testenv.H264Clip(t, 320, 240, n, 10)
	ts := make([]time.Time, n)
	for i := range ts {
		ts[i] = time.Now().Add(time.Duration(i-n) * 100 * time.Millisecond)
	}
	testenv.PublishVideo(t, js, "cam", aus, ts, 320, 240)
	store(t, js, "front", 1, time.Now(), testenv.Picture(t, 1, 160, 120, 0), 160, 120)
	dir := t.TempDir()

	code, stdout, stderr := viewerRun("snapshot", "--cams", "cam,front", "--out-dir", dir, "--nats", url)
	if code != 0 {
		t.Fatalf("snapshot: exit %d\n%s%s", code, stdout, stderr)
	}
	for id, size := range map[string][2]int{"cam": {320, 240}, "front": {160, 120}} {
		m := gocv.IMRead(filepath.Join(dir, id+".jpg"), gocv.IMReadColor)
		if m.Empty() || m.Cols() != size[0] || m.Rows() != size[1] {
			t.Errorf("snapshot of %s: %dx%d, want %dx%d\n%s", id, m.Cols(), m.Rows(), size[0], size[1], stdout)
		}
		m.Close()
	}

	out := filepath.Join(dir, "cam.mp4")
	code, stdout, stderr = viewerRun("export", "--cam", "cam", "--out", out, "--nats", url)
	if code != 0 {
		t.Fatalf("export: exit %d\n%s%s", code, stdout, stderr)
	}
	if got := frameCount(t, out); got != n {
		t.Errorf("export: %d frames, want %d\n%s", got, n, stdout)
	}
	if !strings.Contains(stdout, "20 frames") || !strings.Contains(stdout, "H.264") {
		t.Errorf("export said %q", stdout)
	}
	avi := filepath.Join(dir, "cam.avi")
	code, _, stderr = viewerRun("export", "--cam", "cam", "--out", avi, "--nats", url)
	if code == 0 || !strings.Contains(stderr, ".mp4") {
		t.Errorf("export of an H.264 camera to .avi: exit %d, %q; want a failure saying .mp4", code, stderr)
	}
	if _, err := os.Stat(avi); err == nil {
		t.Error("a failed export left a file")
	}
}
