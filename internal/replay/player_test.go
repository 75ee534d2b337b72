package replay

import (
	"camhub/hub/hubtest"
	"camhub/internal/replay/replaytest"
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// delivery is one call of a player's deliver.
type delivery struct {
	id     string
	f      Frame
	behind time.Duration
	at     time.Time
}

// player is a Player running in the background of a test.
type player struct {
	*Player
	got    chan delivery
	cancel context.CancelFunc
	done   chan error
}

// startPlayer runs a player of ids; every delivery goes to got. hold, if
// set, is called inside deliver (to make it slow).
func startPlayer(t *testing.T, js jetstream.JetStream, ids []string, start time.Time, speed float64,
	setup func(*Player), hold func(delivery)) *player {
	t.Helper()
	got := make(chan delivery, 10000)
	p, err := NewPlayer(js, ids, start, speed, func(id string, f Frame, behind time.Duration) {
		d := delivery{id: id, f: f, behind: behind, at: time.Now()}
		got <- d
		if hold != nil {
			hold(d)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pl := &player{Player: p, got: got, cancel: cancel, done: make(chan error, 1)}
	go func() { pl.done <- p.Run(ctx) }()
	t.Cleanup(func() { pl.stop(t) })
	return pl
}

// stop cancels the player and waits for Run to return.
func (pl *player) stop(t *testing.T) error {
	t.Helper()
	pl.cancel()
	select {
	case err, ok := <-pl.done:
		if ok {
			close(pl.done)
		}
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Player.Run did not return after its context was cancelled")
		return nil
	}
}

// collect waits for n deliveries.
func (pl *player) collect(t *testing.T, n int, d time.Duration) []delivery {
	t.Helper()
	var ds []delivery
	deadline := time.After(d)
	for len(ds) < n {
		select {
		case x := <-pl.got:
			ds = append(ds, x)
		case err := <-pl.done:
			t.Fatalf("Run returned %v after %d of %d frames", err, len(ds), n)
		case <-deadline:
			t.Fatalf("got %d of %d frames in %v", len(ds), n, d)
		}
	}
	return ds
}

// until collects deliveries up to and including the one for which last
// holds.
func (pl *player) until(t *testing.T, d time.Duration, last func(delivery) bool) []delivery {
	t.Helper()
	var ds []delivery
	deadline := time.After(d)
	for {
		select {
		case x := <-pl.got:
			ds = append(ds, x)
			if last(x) {
				return ds
			}
		case err := <-pl.done:
			t.Fatalf("Run returned %v after %d frames", err, len(ds))
		case <-deadline:
			t.Fatalf("timed out after %d frames", len(ds))
		}
	}
}

// checkOrder fails unless ds are in capture-time order.
func checkOrder(t *testing.T, ds []delivery) {
	t.Helper()
	for i := 1; i < len(ds); i++ {
		if ds[i].f.Time.Before(ds[i-1].f.Time) {
			t.Fatalf("delivery %d (%s %d at %v) before delivery %d (%s %d at %v) in capture time",
				i, ds[i].id, ds[i].f.Seq, ds[i].f.Time, i-1, ds[i-1].id, ds[i-1].f.Seq, ds[i-1].f.Time)
		}
	}
}

// checkContiguous fails unless camera id's frames in ds are Frame-Seq
// 1..n, each once, in increasing stream sequence: no gap, no duplicate.
func checkContiguous(t *testing.T, ds []delivery, id string, n int) {
	t.Helper()
	var seqs []uint64
	var last uint64
	for _, d := range ds {
		if d.id != id {
			continue
		}
		if d.f.StreamSeq <= last {
			t.Fatalf("%s: stream sequence %d after %d", id, d.f.StreamSeq, last)
		}
		last = d.f.StreamSeq
		seqs = append(seqs, d.f.Seq)
	}
	if len(seqs) != n {
		t.Fatalf("%s: %d frames %v, want 1..%d", id, len(seqs), seqs, n)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("%s: frames %v, want 1..%d", id, seqs, n)
		}
	}
}

// consumers lists the consumers on the buffer reading camera id.
func consumers(t *testing.T, js jetstream.JetStream, id string) []*jetstream.ConsumerInfo {
	t.Helper()
	ctx := testenv.Context(t, 10*time.Second)
	st, err := js.Stream(ctx, wire.FramesStream)
	if err != nil {
		t.Fatal(err)
	}
	var infos []*jetstream.ConsumerInfo
	l := st.ListConsumers(ctx)
	for info := range l.Info() {
		if info.Config.FilterSubject == wire.FramesSubject(id) || (len(info.Config.FilterSubjects) == 1 && info.Config.FilterSubjects[0] == wire.FramesSubject(id)) {
			infos = append(infos, info)
		}
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	return infos
}

// Two cameras replay in capture-time order, paced by capture time and
// speed, then continue into live with no frame missed or repeated.
func TestPlayerSyncAndLive(t *testing.T) {
	_, js := hubtest.StartJS(t, nil)
	// 21 frames a camera at 10 fps over 2 s; back's 50 ms after front's.
	t0 := time.Now().Add(-2 * time.Second)
	for i := range 21 {
		at := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		replaytest.Publish(t, js, replaytest.Shot{ID: "front", Seq: uint64(i + 1), At: at})
		replaytest.Publish(t, js, replaytest.Shot{ID: "back", Seq: uint64(i + 1), At: at.Add(50 * time.Millisecond)})
	}
	span := 2050 * time.Millisecond
	ids := []string{"front", "back"}

	elapsed := map[float64]time.Duration{}
	for _, speed := range []float64{1, 4} {
		pl := startPlayer(t, js, ids, t0, speed, nil, nil)
		ds := pl.collect(t, 42, 30*time.Second)
		checkOrder(t, ds)
		checkContiguous(t, ds, "front", 21)
		checkContiguous(t, ds, "back", 21)
		for i, d := range ds { // strictly alternating: front, back, front...
			if want := ids[i%2]; d.id != want {
				t.Fatalf("speed %v: delivery %d is %s, want %s", speed, i, d.id, want)
			}
		}
		if n := pl.Note(); n != "" {
			t.Errorf("speed %v: note %q, want none", speed, n)
		}
		elapsed[speed] = ds[41].at.Sub(ds[0].at)
		half := ds[21].at.Sub(ds[0].at)
		t.Logf("speed %v: %d frames of %v in %v (half way after %v)", speed, len(ds), span, elapsed[speed], half)
		if speed == 1 {
			if e := elapsed[1]; e < 1500*time.Millisecond || e > 4*time.Second {
				t.Fatalf("speed 1: %v of frames played in %v", span, e)
			}
			// Paced evenly, not all at once at one end.
			if r := half.Seconds() / elapsed[1].Seconds(); r < 0.25 || r > 0.75 {
				t.Errorf("speed 1: half the frames after %v of %v", half, elapsed[1])
			}
			if err := pl.stop(t); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if elapsed[4] > elapsed[1]/2 {
			t.Fatalf("speed 4 took %v, speed 1 %v", elapsed[4], elapsed[1])
		}

		// Caught up: live frames come as they are sent.
		testenv.Eventually(t, 10*time.Second, "the player to be live", func() bool { return pl.Stats().Live })
		for seq := uint64(22); seq <= 26; seq++ {
			for _, id := range ids {
				replaytest.Publish(t, js, replaytest.Shot{ID: id, Seq: seq, At: time.Now()})
				d := pl.collect(t, 1, 10*time.Second)[0]
				if d.id != id || d.f.Seq != seq || replaytest.JPEGNumber(t, d.f.JPEG) != int(seq) {
					t.Fatalf("live: got %s %d, want %s %d", d.id, d.f.Seq, id, seq)
				}
				if d.behind > 5*time.Second {
					t.Errorf("live frame %d %v behind", seq, d.behind)
				}
				ds = append(ds, d)
			}
		}
		checkContiguous(t, ds, "front", 26)
		checkContiguous(t, ds, "back", 26)
		if st := pl.Stats(); st.Delivered != 52 || st.Skipped != 0 {
			t.Errorf("stats %+v", st)
		}
		if err := pl.stop(t); err != nil {
			t.Fatal(err)
		}
		select {
		case d := <-pl.got:
			t.Fatalf("%s %d delivered after the end", d.id, d.f.Seq)
		default:
		}
	}
	// Run cleaned up after itself on the server.
	if cs := consumers(t, js, "front"); len(cs) != 0 {
		t.Fatalf("%d consumers left", len(cs))
	}
}

// Asked for more than the buffer holds, the player starts at its oldest
// frame and says so; a camera with no frames shows up when it sends.
func TestPlayerStartBeforeOldest(t *testing.T) {
	_, js := hubtest.StartJS(t, nil)
	ts := replaytest.Series(10, time.Now())
	replaytest.PublishSeries(t, js, "front", ts)

	pl := startPlayer(t, js, []string{"front", "ghost"}, time.Now().Add(-time.Minute), 8, nil, nil)
	ds := pl.collect(t, 10, 20*time.Second)
	if ds[0].f.Seq != 1 || !ds[0].f.Time.Equal(ts[0]) {
		t.Fatalf("first frame %d at %v, want the oldest, 1 at %v", ds[0].f.Seq, ds[0].f.Time, ts[0])
	}
	checkContiguous(t, ds, "front", 10)
	note := pl.Note()
	t.Logf("note: %s", note)
	for _, want := range []string{"asked for 1m", "buffer holds", "oldest", `"ghost"`} {
		if !strings.Contains(note, want) {
			t.Errorf("note %q does not say %q", note, want)
		}
	}
	testenv.Eventually(t, 10*time.Second, "the player to be live", func() bool { return pl.Stats().Live })
	replaytest.Publish(t, js, replaytest.Shot{ID: "ghost", Seq: 1, At: time.Now()})
	if d := pl.collect(t, 1, 10*time.Second)[0]; d.id != "ghost" || d.f.Seq != 1 {
		t.Fatalf("got %s %d, want ghost 1", d.id, d.f.Seq)
	}
}

// A slow deliver while replaying: frames are skipped, never queued, and
// the newest frame is shown in the end.
func TestPlayerSkipsWhenLate(t *testing.T) {
	_, js := hubtest.StartJS(t, nil)
	ts := replaytest.Series(21, time.Now())
	replaytest.PublishSeries(t, js, "front", ts)
	// deliver takes 300 ms, the frames are 100 ms apart.
	slow := func(delivery) { time.Sleep(300 * time.Millisecond) } // a slow consumer, not synchronisation
	pl := startPlayer(t, js, []string{"front"}, ts[0], 1, nil, slow)
	ds := pl.until(t, 30*time.Second, func(d delivery) bool { return d.f.Seq == 21 })
	checkOrder(t, ds)
	st := pl.Stats()
	t.Logf("delivered %d, skipped %d", len(ds), st.Skipped)
	if st.Skipped == 0 || len(ds)+int(st.Skipped) != 21 {
		t.Fatalf("delivered %d, skipped %d, of 21", len(ds), st.Skipped)
	}
}

// deliver stalls while live frames keep coming: the player holds a bounded
// number of frames (the rest stays in the buffer), then skips to the newest.
func TestPlayerBoundedWhenStalled(t *testing.T) {
	_, js := hubtest.StartJS(t, nil)
	release := make(chan struct{})
	first := true
	hold := func(delivery) {
		if first {
			first = false
			<-release
		}
	}
	pl := startPlayer(t, js, []string{"front"}, time.Time{}, 1, nil, hold)
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()

	testenv.Eventually(t, 10*time.Second, "the player's consumer", func() bool { return len(consumers(t, js, "front")) == 1 })
	base := time.Now()
	replaytest.Publish(t, js, replaytest.Shot{ID: "front", Seq: 1, At: base})
	if d := pl.collect(t, 1, 10*time.Second)[0]; d.f.Seq != 1 {
		t.Fatalf("first frame %d", d.f.Seq)
	}
	// deliver is now stuck in frame 1.
	const n = 61
	for seq := uint64(2); seq <= n; seq++ {
		replaytest.Publish(t, js, replaytest.Shot{ID: "front", Seq: seq, At: base.Add(time.Duration(seq-1) * 100 * time.Millisecond)})
	}
	delivered := func() (uint64, uint64) {
		cs := consumers(t, js, "front")
		if len(cs) != 1 {
			t.Fatalf("%d consumers", len(cs))
		}
		return cs[0].Delivered.Consumer, cs[0].NumPending
	}
	testenv.Eventually(t, 10*time.Second, "the player to read ahead", func() bool {
		d, _ := delivered()
		return d >= 1+laneSize+1
	})

	var maxSeen uint64
	// However long deliver is stuck, the server hands out no more.
	for range 20 {
		d, pending := delivered()
		if d > maxSeen {
			maxSeen = d
		}
		if d > 1+MaxHeldPerCamera {
			t.Fatalf("server delivered %d frames to a player stuck in frame 1 (at most %d), %d pending", d, 1+MaxHeldPerCamera, pending)
		}
		time.Sleep(10 * time.Millisecond) // sampling an invariant, not synchronisation
	}

	t.Logf("the server delivered at most %d frames while deliver was stuck", maxSeen)

	close(release)
	ds := pl.until(t, 30*time.Second, func(d delivery) bool { return d.f.Seq == n })
	st := pl.Stats()
	t.Logf("after the stall: delivered %d, skipped %d", len(ds), st.Skipped)
	var last uint64 = 1
	for _, d := range ds {
		if d.f.Seq <= last {
			t.Fatalf("frame %d after %d", d.f.Seq, last)
		}
		last = d.f.Seq
	}
	if st.Skipped == 0 || 1+len(ds)+int(st.Skipped) != n {
		t.Fatalf("delivered %d, skipped %d, of %d", 1+len(ds), st.Skipped, n)
	}
}

func TestNewPlayerErrors(t *testing.T) {
	_, js := hubtest.StartJS(t, nil)
	deliver := func(string, Frame, time.Duration) {}
	for _, tc := range []struct {
		name  string
		ids   []string
		speed float64
	}{
		{"no cameras", nil, 1},
		{"bad id", []string{"front", "a b"}, 1},
		{"twice", []string{"front", "front"}, 1},
		{"zero speed", []string{"front"}, 0},
		{"negative speed", []string{"front"}, -1},
		{"NaN speed", []string{"front"}, math.NaN()},
		{"infinite speed", []string{"front"}, math.Inf(1)},
	} {
		if _, err := NewPlayer(js, tc.ids, time.Now(), tc.speed, deliver); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tc.name, err)
		}
	}
	if _, err := NewPlayer(js, []string{"front"}, time.Now(), 1, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("no deliver: %v", err)
	}

	bare := hubtest.JetStream(t, testenv.NATS(t, nil).ClientURL())
	p, err := NewPlayer(bare, []string{"front"}, time.Now(), 1, deliver)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(testenv.Context(t, 10*time.Second)); !errors.Is(err, ErrNoBuffer) {
		t.Errorf("no CAMS: %v", err)
	}
	if err := p.Run(testenv.Context(t, 10*time.Second)); !errors.Is(err, ErrRunning) {
		t.Errorf("a second Run: %v, want ErrRunning", err)
	}
}
