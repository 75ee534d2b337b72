//go:build matprofile

package agent

import (
	"os"
	"testing"
	"time"

	"camhub/internal/testenv"
	"camhub/internal/testenv/cvtest"
	"camhub/internal/wire"
)

// Every Mat the agent makes is closed by the time Run returns, on every
// path: test pattern, a file to its end, scaling, the oversize ladder, and
// a source that fails. Run with go test -tags matprofile.
func TestNoMatLeaks(t *testing.T) {
	opts := testenv.NATSOptions(t)
	opts.MaxPayload = 24 << 10 // the noisy file does not fit: the ladder runs
	_, url := startNATS(t, opts)
	nc := dial(t, url)
	dir := t.TempDir()
	plain := writeVideo(t, dir, 320, 240, 20, 20)

	check := cvtest.MatLeaks(t)

	// The test pattern, encoded at full size.
	ch := subscribe(t, url, "leak1")
	r := start(t, Config{ID: "leak1", Source: "testpattern", FPS: 60, Width: 320, Height: 240}, nc)
	var got received
	collect(t, ch, &got, 10*time.Second, func(got *received) bool { return len(got.frames) >= 5 })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	for _, m := range got.frames {
		decode(t, m) // closes its Mat too
	}
	check("testpattern")

	// A file played to its end and scaled down.
	r = start(t, Config{ID: "leak2", Source: plain, FPS: 30, Width: 160, Height: 160}, nc)
	if err := r.wait(t, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if st := r.a.Stats(); st.Sent == 0 {
		t.Fatalf("stats %+v", st)
	}
	check("file")

	// Noise that does not fit the max payload: every step of the ladder.
	r = start(t, Config{
		ID:     "leak3",
		Source: "videotestsrc pattern=snow num-buffers=1000 ! video/x-raw,width=1280,height=720 ! videoconvert ! appsink",
		FPS:    30, Width: 1280, Height: 720, Quality: 90,
	}, nc)
	testenv.Eventually(t, 20*time.Second, "oversize frames", func() bool { return r.a.Stats().Oversize >= 3 })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	check("oversize")

	// A source that fails: a file gone before Run.
	gone := writeVideo(t, t.TempDir(), 64, 64, 20, 2)
	ch = subscribe(t, url, "leak4")
	a, err := New(Config{ID: "leak4", Source: gone}, nc, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	r = run(t, a)
	got = received{}
	collect(t, ch, &got, 10*time.Second, stateAfter(0, wire.StateSourceError))
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	check("source error")
}
