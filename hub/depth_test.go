package hub_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// One busy camera beside small ones in a buffer whose byte bound binds:
// JetStream drops the oldest frames first, whichever camera sent them, so
// every camera keeps the same span (the busy one never evicts the others'
// recent frames while its own older ones stay), and the hub says the
// buffer holds less than --replay, naming the busiest camera.
func TestBusyCameraShortensEveryCameraAlike(t *testing.T) {
	var logs testenv.Buffer
	cfg := config()
	cfg.Replay, cfg.ReplayBytes = time.Hour, 4<<20
	h := start(t, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	nc := testenv.Conn(t, h.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	// Two reports a camera, 2 s apart: yard sends 16 Mbit/s, the others 0.8.
	started := time.Now().Add(-time.Minute)
	rate := map[string]uint64{"yard": 2_000_000, "front": 100_000, "back": 100_000} // bytes a second
	for i := range 2 {
		for id, r := range rate {
			at := started.Add(time.Duration(10+2*i) * time.Second)
			publishStatus(t, nc, wire.Status{ID: id, State: wire.StateStreaming, Started: started, Time: at,
				BytesSent: uint64(10+2*i) * r, IntervalMS: 60000})
		}
	}
	testenv.Eventually(t, 10*time.Second, "three cameras online", func() bool { return len(h.Online()) == 3 })

	// Rounds of one frame a camera: 64 KiB from yard, 4 KiB from the
	// others; 4 MiB holds about 56 rounds of the 150.
	size := map[string]int{"yard": 64 << 10, "front": 4 << 10, "back": 4 << 10}
	const rounds = 150
	t0 := time.Now().Add(-rounds * time.Second)
	for i := 1; i <= rounds; i++ {
		for _, id := range []string{"yard", "front", "back"} {
			m := &nats.Msg{Subject: wire.FramesSubject(id), Data: make([]byte, size[id]),
				Header: wire.Frame{Seq: uint64(i), Time: t0.Add(time.Duration(i) * time.Second), Width: 8, Height: 8}.Header()}
			if _, err := js.PublishMsg(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		}
	}

	st, err := js.Stream(context.Background(), wire.FramesStream)
	if err != nil {
		t.Fatal(err)
	}
	first := st.CachedInfo().State.FirstSeq
	oldest := map[string]uint64{}
	for _, id := range []string{"yard", "front", "back"} {
		m, err := st.GetMsg(context.Background(), first, jetstream.WithGetMsgSubject(wire.FramesSubject(id)))
		if err != nil {
			t.Fatal(err)
		}
		f, err := wire.ParseFrame(nats.Header(m.Header))
		if err != nil {
			t.Fatal(err)
		}
		oldest[id] = f.Seq
		last, err := st.GetLastMsgForSubject(context.Background(), wire.FramesSubject(id))
		if err != nil {
			t.Fatal(err)
		}
		if lf, _ := wire.ParseFrame(nats.Header(last.Header)); lf.Seq != rounds {
			t.Errorf("%s: newest frame %d, want %d", id, lf.Seq, rounds)
		}
	}
	t.Logf("oldest frame kept: %v of %d rounds", oldest, rounds)
	if oldest["yard"] < rounds/2 || oldest["front"] > oldest["yard"]+1 || oldest["back"] > oldest["yard"]+1 ||
		oldest["front"]+1 < oldest["yard"] || oldest["back"]+1 < oldest["yard"] {
		t.Errorf("oldest frames %v: want the byte bound to bind and every camera to keep the same rounds (±1)", oldest)
	}

	d, err := h.BufferDepth(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !d.Full {
		t.Errorf("buffer %+v, want full (the byte bound binds)", d)
	}
	h.CheckDepth(time.Now())
	log := logs.String()
	for _, want := range []string{"replay buffer full", "busiest=\"yard 16.0 Mbit/s", "replay_bytes_needed="} {
		if !strings.Contains(log, want) {
			t.Errorf("log does not say %q:\n%s", want, log)
		}
	}
	// Said once, not at every check.
	h.CheckDepth(time.Now())
	if n := strings.Count(logs.String(), "replay buffer full"); n != 1 {
		t.Errorf("warned %d times, want once", n)
	}
}
