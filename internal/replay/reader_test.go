package replay

import (
	"testing"
	"time"

	"camhub/hub/hubtest"
	"camhub/internal/replay/replaytest"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// A consumer that goes quiet in the middle of a read (here paused on the
// server: it keeps the pull requests, sends nothing, and the stream says
// frames are waiting, as one on a cluster peer that stopped answering does)
// is replaced: the cursor reads on from the frame after the last one, none
// twice and none missed, rather than waiting for ever.
func TestCursorConsumerGoesQuiet(t *testing.T) {
	_, js := hubtest.StartJS(t, nil)
	ctx := testenv.Context(t, 60*time.Second)
	replaytest.PublishSeries(t, js, "front", replaytest.Series(20, time.Now()))
	c, err := OpenCursor(ctx, js, "front", CursorOptions{Pull: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got []uint64
	for range 5 {
		f, ok, err := c.Next(ctx)
		if err != nil || !ok {
			t.Fatalf("frame %d: %v, %v", len(got)+1, ok, err)
		}
		got = append(got, f.Seq)
	}
	quiet := c.r.cons.CachedInfo().Name
	if _, err := js.PauseConsumer(ctx, wire.FramesStream, quiet, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for {
		f, ok, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("after frame %d: %v", got[len(got)-1], err)
		}
		if !ok {
			break
		}
		got = append(got, f.Seq)
	}
	for i, seq := range got {
		if seq != uint64(i+1) {
			t.Fatalf("read frames %v, want 1 to 20 once each", got)
		}
	}
	if len(got) != 20 {
		t.Fatalf("read frames %v, want 1 to 20", got)
	}
	if c.r.renewed != 1 {
		t.Errorf("the consumer was renewed %d times, want once", c.r.renewed)
	}
	// the quiet consumer is gone from the server
	if _, err := js.Consumer(ctx, wire.FramesStream, quiet); err == nil {
		t.Errorf("the quiet consumer %s is still on the server", quiet)
	}
}
