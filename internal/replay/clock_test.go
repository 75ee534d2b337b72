package replay

import (
	"camhub/hub/hubtest"
	"camhub/internal/replay/replaytest"
	"camhub/internal/testenv"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/wire"
)

// The same frames rewound: every good frame plays, in time, and the stray
// one is counted.
func TestPlayerSkipsFrameWithWrongClock(t *testing.T) {
	for name, c := range replaytest.Strays {
		t.Run(name, func(t *testing.T) {
			_, js := hubtest.StartJS(t, nil)
			good := replaytest.PublishWithStray(t, func(s replaytest.Shot) uint64 { return replaytest.Publish(t, js, s) }, c.Pos, c.At)
			// Never late-skipped: on a loaded machine a frame delivered
			// late would be skipped for a newer one, which is not what
			// this test is about.
			pl := startPlayer(t, js, []string{"front"}, good[0], 16, func(p *Player) { p.MaxLate = -1 }, nil)
			ds := pl.collect(t, 20, 20*time.Second)
			for i, d := range ds {
				if !d.f.Time.Equal(good[i]) {
					t.Fatalf("frame %d: Frame-Seq %d at %v, want %v", i, d.f.Seq, d.f.Time, good[i])
				}
			}
			if n := pl.Stats().OutOfOrder; n != 1 {
				t.Fatalf("out of order: %d, want 1", n)
			}
		})
	}
}

// A speed that would overflow a time.Duration (or play nothing for ages) is
// refused, and a schedule never overflows.
func TestPlayerSpeedBounds(t *testing.T) {
	for _, speed := range []float64{1e-12, 1e-10, 0.01, 1e6} {
		if _, err := NewPlayer(nopJS{}, []string{"front"}, time.Time{}, speed, func(string, Frame, time.Duration) {}); !errors.Is(err, ErrInvalid) {
			t.Errorf("speed %v: error %v, want ErrInvalid", speed, err)
		}
	}
	now := time.Now()
	k := schedule{set: true, wall: now, media: time.Unix(0, 0), speed: MinSpeed}
	if due := k.due(Frame{Frame: wire.Frame{Time: time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)}}); !due.After(now) {
		t.Fatalf("a frame far ahead is due %v, before now", due)
	}
}

// nopJS is a JetStream context NewPlayer only checks is there.
type nopJS struct{ jetstream.JetStream }

// A snapshot to a directory gets a message that says so.
func TestSnapshotToDirectory(t *testing.T) {
	_, js := hubtest.StartJS(t, nil)
	replaytest.PublishSeries(t, js, "front", replaytest.Series(5, time.Now().Add(-time.Second)))
	dir := t.TempDir()
	_, err := WriteSnapshot(testenv.Context(t, 10*time.Second), js, "front", dir, nil)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("snapshot to %s: %v, want it named a directory", dir, err)
	}
}
