package test

import (
	"context"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"gocv.io/x/gocv"

	"camhub/internal/replay"
	"camhub/internal/testenv"
	"camhub/internal/testenv/cvtest"
)

// clipFrames reads a clip with OpenCV and returns its frames; the caller
// closes them.
func clipFrames(t *testing.T, path string) []gocv.Mat {
	t.Helper()
	vc := cvtest.OpenVideo(t, path)
	var frames []gocv.Mat
	for {
		m := gocv.NewMat()
		if !vc.Read(&m) || m.Empty() {
			m.Close()
			return frames
		}
		frames = append(frames, m)
	}
}

func closeAll(ms []gocv.Mat) {
	for _, m := range ms {
		m.Close()
	}
}

var framesWritten = regexp.MustCompile(`: (\d+) frames, `)

// export runs viewer export and returns the frame count its summary says.
func export(t *testing.T, args ...string) int {
	t.Helper()
	out, err := run(t, "viewer", append([]string{"export"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("viewer export: %s", out)
	m := framesWritten.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("viewer export printed %q", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// The replay buffer through the real binaries: a hub keeping it on disk
// and a test-pattern agent; viewer snapshot and export read it, and the
// frames are still there after the hub restarts.
func TestReplayBuffer(t *testing.T) {
	storeDir := t.TempDir()
	hubArgs := []string{"--monitor", "127.0.0.1:0", "--storage", "file", "--store-dir", storeDir, "--replay", "5m"}
	hub := start(t, nil, "hub", append([]string{"--listen", "127.0.0.1:0"}, hubArgs...)...)
	natsURL := hub.waitLog(`msg="NATS server ready" url=(nats://[0-9.:]+)`)
	start(t, nil, "agent", "--id", "front", "--source", "testpattern", "--nats", natsURL, "--fps", "10", "--size", "320x240")

	// wait for 4 s of frames in the buffer
	js, err := jetstream.New(testenv.Conn(t, natsURL))
	if err != nil {
		t.Fatal(err)
	}
	var first, last time.Time
	testenv.Eventually(t, 60*time.Second, "4 s of frames in the buffer", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		first, last, _ = replay.Bounds(ctx, js, "front") // no frames yet is an error
		return last.Sub(first) >= 4*time.Second
	})
	dir := t.TempDir()

	if out, err := run(t, "viewer", "snapshot", "--cam", "front", "--out", filepath.Join(dir, "front.jpg"), "--nats", natsURL); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("viewer snapshot: %s", out)
	}
	snap := gocv.IMRead(filepath.Join(dir, "front.jpg"), gocv.IMReadColor)
	if snap.Cols() != 320 || snap.Rows() != 240 {
		t.Errorf("the snapshot is %dx%d, want 320x240", snap.Cols(), snap.Rows())
	}
	snap.Close()

	// the last 3 s at 10 fps: about 30 frames
	n := export(t, "--cam", "front", "--since", "3s", "--out", filepath.Join(dir, "since.mp4"), "--nats", natsURL)
	clip := clipFrames(t, filepath.Join(dir, "since.mp4"))
	closeAll(clip)
	if n < 20 || n > 32 || len(clip) != n {
		t.Errorf("--since 3s at 10 fps: the clip has %d frames, export said %d; want about 30", len(clip), n)
	}

	// 2 s captured before the restart
	from, to := first.Add(500*time.Millisecond).Format(time.RFC3339Nano), first.Add(2500*time.Millisecond).Format(time.RFC3339Nano)
	before := export(t, "--cam", "front", "--from", from, "--to", to, "--out", filepath.Join(dir, "before.avi"), "--nats", natsURL)
	if before < 15 || before > 22 {
		t.Errorf("2 s at 10 fps: %d frames", before)
	}

	hub.stop()
	u, err := url.Parse(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	hub = start(t, nil, "hub", append([]string{"--listen", u.Host}, hubArgs...)...)
	if again := hub.waitLog(`msg="NATS server ready" url=(nats://[0-9.:]+)`); again != natsURL {
		t.Fatalf("the hub came back on %s, not %s", again, natsURL)
	}
	after := export(t, "--cam", "front", "--from", from, "--to", to, "--out", filepath.Join(dir, "after.avi"), "--nats", natsURL)
	if after != before {
		t.Fatalf("after the restart the range has %d frames, before it %d", after, before)
	}
	// the very frames from before the restart (the test pattern shows the
	// clock, so any other frames differ)
	a, b := clipFrames(t, filepath.Join(dir, "before.avi")), clipFrames(t, filepath.Join(dir, "after.avi"))
	defer closeAll(a)
	defer closeAll(b)
	if len(a) != before || len(b) != before {
		t.Fatalf("the clips have %d and %d frames, want %d", len(a), len(b), before)
	}
	for i := range a {
		if d := gocv.NormWithMats(a[i], b[i], gocv.NormInf); d > 8 {
			t.Fatalf("frame %d differs after the restart (by up to %v)", i, d)
		}
	}
	// frames of a moving pattern over 2 s: the first and the last differ
	if d := gocv.NormWithMats(a[0], a[len(a)-1], gocv.NormInf); d < 64 {
		t.Errorf("the first and last frames of the clip barely differ (%v): not the test pattern's frames?", d)
	}
}
