package viewer

import (
	"encoding/json"
	"image"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"gocv.io/x/gocv"

	"camhub/internal/testenv"
	"camhub/internal/wire"
)

func publish(t testing.TB, nc *nats.Conn, m *nats.Msg) {
	t.Helper()
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// pixel returns the BGR colour at p.
func pixel(m gocv.Mat, p image.Point) [3]uint8 {
	v := m.GetVecbAt(p.Y, p.X)
	return [3]uint8{v[0], v[1], v[2]}
}

// near reports whether two BGR colours differ by at most 40 in each channel
// (JPEG is lossy).
func near(a [3]uint8, c gocv.Scalar) bool {
	want := [3]float64{c.Val1, c.Val2, c.Val3}
	for i := range a {
		if d := float64(a[i]) - want[i]; d > 40 || d < -40 {
			return false
		}
	}
	return true
}

// announce publishes a status report of each camera on pub, as an agent
// does before its first frame, and waits until feed (without a camera
// list) has added them and the server has its subscriptions to their
// frames, so that frames published next reach it.
func announce(t testing.TB, pub *nats.Conn, feed *Feed, ids ...string) {
	t.Helper()
	now := time.Now()
	for _, id := range ids {
		st, err := json.Marshal(wire.Status{ID: id, Host: "h", Source: "testpattern", State: wire.StateStreaming,
			Codec: wire.CodecJPEG, Started: now, Time: now, IntervalMS: 2000})
		if err != nil {
			t.Fatal(err)
		}
		publish(t, pub, &nats.Msg{Subject: wire.StatusSubject(id), Data: st})
	}
	testenv.Eventually(t, 10*time.Second, "the cameras added", func() bool {
		got := feed.IDs()
		for _, id := range ids {
			if !slices.Contains(got, id) {
				return false
			}
		}
		return true
	})
	feed.mu.Lock()
	nc := feed.nc
	feed.mu.Unlock()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}
