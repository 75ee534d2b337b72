package viewer

import (
	"context"
	"errors"
	"image"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"gocv.io/x/gocv"

	"camhub/hub/hubtest"
	"camhub/internal/replay"
	"camhub/internal/testenv"
	"camhub/internal/testenv/cvtest"
	"camhub/internal/wire"
)

// store publishes a frame captured at at through JetStream, so the hub has
// it in the replay buffer when this returns.
func store(t testing.TB, js jetstream.JetStream, id string, seq uint64, at time.Time, data []byte, w, h int) {
	t.Helper()
	m := &nats.Msg{Subject: wire.FramesSubject(id), Header: wire.Frame{Seq: seq, Time: at, Width: w, Height: h}.Header(), Data: data}
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

func isAmber(b [3]uint8) bool { return b[2] > 200 && b[1] > 140 && b[1] < 230 && b[0] < 90 }

// labelBand is the top of a tile, where its label is.
func labelBand(r image.Rectangle) image.Rectangle {
	return image.Rect(r.Min.X, r.Min.Y, r.Max.X, r.Min.Y+30)
}

// seen is a frame a tile was seen showing, and when the feed received it
// (from the player): a grid polled late on a loaded machine sees frames
// late, but not received late.
type seen struct {
	id string
	f  wire.Frame
	at time.Time
}

// A rewound feed plays the buffer into the grid's tiles in capture-time
// order, at the pace the frames were captured, each tile saying how far
// behind live it is; once the player has caught up, live frames follow
// and the tiles say so.
func TestGridRewind(t *testing.T) {
	h := hubtest.Start(t, nil)
	nc := testenv.Conn(t, h.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// 2 s of frames at 10 fps, captured 3 s to 1 s ago; back's 50 ms
	// after front's.
	redJPEG, blueJPEG := cvtest.JPEG(t, cvtest.Red, 320, 240), cvtest.JPEG(t, cvtest.Blue, 320, 240)
	const n = 21
	end := time.Now().Add(-time.Second)
	for i := range n {
		at := end.Add(-time.Duration(n-1-i) * 100 * time.Millisecond)
		store(t, js, "front", uint64(i+1), at, redJPEG, 320, 240)
		store(t, js, "back", uint64(i+1), at.Add(50*time.Millisecond), blueJPEG, 320, 240)
	}

	feed, err := NewFeed([]string{"front", "back"})
	if err != nil {
		t.Fatal(err)
	}
	// 10 s ago: more than the buffer holds
	player, err := feed.Rewind(js, time.Now().Add(-10*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := feed.Rewind(js, time.Now(), 1); !errors.Is(err, ErrRewind) {
		t.Errorf("a second Rewind: %v", err)
	}
	if err := feed.Subscribe(nc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(feed.Close)
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	g := NewGrid(feed, image.Pt(1280, 720), testenv.Quiet())
	t.Cleanup(g.Close)
	canvas := gocv.NewMat()
	t.Cleanup(func() { canvas.Close() })

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- player.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Player.Run: %v", err)
		}
	})

	// watch polls the grid until every tile shows frame last, and
	// returns the frames the tiles were seen showing, in the order seen.
	// check is called with each tile showing a new frame.
	watch := func(last uint64, check func(Tile, time.Time)) []seen {
		t.Helper()
		var all []seen
		shown := map[string]uint64{}
		deadline := time.Now().Add(20 * time.Second)
		for shown["front"] != last || shown["back"] != last {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for frame %d on both tiles; seen %v", last, shown)
			}
			time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
			now := time.Now()
			g.Update(now)
			var fresh []seen
			for _, tl := range g.Tiles(now) {
				if tl.Picture.Empty() || tl.Frame.Seq == shown[tl.ID] {
					continue
				}
				shown[tl.ID] = tl.Frame.Seq
				fresh = append(fresh, seen{tl.ID, tl.Frame, g.byID[tl.ID].good})
				check(tl, now)
			}
			// Two tiles may change between polls in either order.
			slices.SortFunc(fresh, func(a, b seen) int { return a.f.Time.Compare(b.f.Time) })
			all = append(all, fresh...)
		}
		return all
	}

	amberChecked := false
	replayed := watch(n, func(tl Tile, now time.Time) {
		if tl.Frame.Seq == n {
			return // the last frame may come as the player catches up
		}
		if !tl.Replay || tl.Behind < 2500*time.Millisecond || tl.Behind > 20*time.Second || !strings.Contains(tl.Info, "REPLAY -") {
			t.Errorf("%s frame %d: replay %v, %v behind, label %q; want REPLAY about 3 s behind",
				tl.ID, tl.Frame.Seq, tl.Replay, tl.Behind, tl.Info)
		}
		if !amberChecked {
			amberChecked = true
			g.Render(&canvas, now)
			if a := countColour(canvas, labelBand(tl.Rect), isAmber); a < 20 {
				t.Errorf("%s: %d amber pixels in the label of a replayed frame", tl.ID, a)
			}
		}
	})
	for i := 1; i < len(replayed); i++ {
		if replayed[i].f.Time.Before(replayed[i-1].f.Time) {
			t.Fatalf("%s frame %d shown after %s frame %d, captured later", replayed[i].id, replayed[i].f.Seq, replayed[i-1].id, replayed[i-1].f.Seq)
		}
	}
	// Paced as captured, not all at once: the frames seen were received
	// as far apart as they were captured (a grid polled late on a loaded
	// machine sees fewer of them, newest first, but not received later).
	first, last := replayed[0], replayed[len(replayed)-1]
	captured, played := last.f.Time.Sub(first.f.Time), last.at.Sub(first.at)
	if captured < time.Second || played < captured*3/4 {
		t.Errorf("frames captured %v apart were received %v apart; want them paced as captured, over at least 1 s", captured, played)
	}
	// Every stored frame was delivered, or skipped (and counted) by a
	// player that fell behind, which drops no more than it shows.
	var received uint64
	for _, s := range g.Stats() {
		received += s.Received
	}
	if skipped := player.Stats().Skipped; received+skipped != 2*n || received < skipped {
		t.Errorf("%d frames delivered and %d skipped of %d stored", received, skipped, 2*n)
	}
	t.Logf("%d frames seen replayed over %v; %d delivered, %d skipped", len(replayed), played, received, player.Stats().Skipped)
	if note := player.Note(); !strings.Contains(note, "oldest frame") {
		t.Errorf("note %q, want it to say playback starts at the oldest frame", note)
	}

	// caught up: live frames follow, as an agent sends them
	testenv.Eventually(t, 10*time.Second, "the player to be live", func() bool { return player.Stats().Live })
	pub := testenv.Conn(t, h.ClientURL())
	publish(t, pub, testenv.FrameMsg("front", n+1, time.Now(), redJPEG, 320, 240))
	publish(t, pub, testenv.FrameMsg("back", n+1, time.Now(), blueJPEG, 320, 240))
	watch(n+1, func(tl Tile, now time.Time) {
		if tl.Frame.Seq <= n {
			return // the last replayed frame, still shown: seen above
		}
		if tl.Replay || tl.Behind != 0 || !strings.Contains(tl.Info, "age ") || strings.Contains(tl.Info, "REPLAY") || tl.Frame.Time.Before(end) {
			t.Errorf("%s live frame %d: replay %v, %v behind, label %q", tl.ID, tl.Frame.Seq, tl.Replay, tl.Behind, tl.Info)
		}
	})
	now := time.Now()
	g.Render(&canvas, now)
	for _, tl := range g.Tiles(now) {
		if !tl.Live {
			t.Errorf("%s is not live", tl.ID)
		}
		if a := countColour(canvas, labelBand(tl.Rect), isAmber); a != 0 {
			t.Errorf("%s: %d amber pixels in the label of a live frame", tl.ID, a)
		}
		checkPicture(t, canvas, tl, map[string]gocv.Scalar{"front": cvtest.Red, "back": cvtest.Blue}[tl.ID])
	}
	// the rewound feed has no live subscription to the frames: each came
	// once, from the player
	for _, s := range g.Stats() {
		if s.Received > n+1 {
			t.Errorf("%s: %d frames received of %d sent", s.ID, s.Received, n+1)
		}
	}
}

func TestRewindNeedsCameraList(t *testing.T) {
	h := hubtest.Start(t, nil)
	js, err := jetstream.New(testenv.Conn(t, h.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	all, err := NewFeed(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := all.Rewind(js, time.Now(), 1); !errors.Is(err, ErrRewind) {
		t.Errorf("rewinding every camera: %v", err)
	}
	feed, err := NewFeed([]string{"front"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := feed.Rewind(js, time.Now(), 0); !errors.Is(err, replay.ErrInvalid) {
		t.Errorf("speed 0: %v", err)
	}
}
