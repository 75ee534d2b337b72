package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/hub"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func config() hub.Config {
	return hub.Config{Listen: "127.0.0.1:0", Replay: 30 * time.Second, ReplayBytes: 1 << 30}
}

func start(t *testing.T, cfg hub.Config, log *slog.Logger) *hub.Server {
	t.Helper()
	h, err := hub.Start(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func streamConfig(t *testing.T, url, name string) jetstream.StreamConfig {
	t.Helper()
	js, err := jetstream.New(testenv.Conn(t, url))
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	return st.CachedInfo().Config
}

func TestEmbeddedProvisionsStreams(t *testing.T) {
	h := start(t, config(), quiet())
	c := streamConfig(t, h.ClientURL(), wire.FramesStream)
	if c.MaxAge != 30*time.Second || c.MaxBytes != 1<<30 || c.Discard != jetstream.DiscardOld ||
		c.Storage != jetstream.MemoryStorage || !slices.Equal(c.Subjects, []string{wire.AllFrames, wire.AllVideo}) || !c.AllowDirect {
		t.Fatalf("CAMS config = %+v", c)
	}
	if c.MaxMsgSize != hub.DefaultMaxPayload {
		t.Errorf("CAMS max message size = %d, want %d", c.MaxMsgSize, hub.DefaultMaxPayload)
	}
	s := streamConfig(t, h.ClientURL(), wire.StatusStream)
	if s.MaxMsgsPerSubject != 1 || len(s.Subjects) != 1 || s.Subjects[0] != wire.AllStatus {
		t.Fatalf("CAMS_STATUS config = %+v", s)
	}
	nc := testenv.Conn(t, h.ClientURL())
	if nc.MaxPayload() != hub.DefaultMaxPayload {
		t.Fatalf("max payload %d, want %d", nc.MaxPayload(), hub.DefaultMaxPayload)
	}
	if h.MonitorAddr() != nil {
		t.Fatal("monitoring is on without Monitor")
	}
}

func TestMonitoringEndpoint(t *testing.T) {
	cfg := config()
	cfg.Monitor = "127.0.0.1:0"
	h := start(t, cfg, quiet())
	if h.MonitorAddr() == nil {
		t.Fatal("no monitoring endpoint")
	}
}

// The buffer holds at most ReplayBytes, dropping the oldest frames.
func TestBufferBoundedByBytes(t *testing.T) {
	cfg := config()
	cfg.ReplayBytes = 1 << 20
	h := start(t, cfg, quiet())
	nc := testenv.Conn(t, h.ClientURL())
	js, _ := jetstream.New(nc)
	frame := bytes.Repeat([]byte{0xff}, 64<<10)
	ctx := context.Background()
	for i := 1; i <= 64; i++ { // 4 MiB in all
		m := &nats.Msg{Subject: wire.FramesSubject("front"), Data: frame,
			Header: wire.Frame{Seq: uint64(i), Time: time.Now(), Width: 8, Height: 8}.Header()}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := js.Stream(ctx, wire.FramesStream)
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Bytes > 1<<20 {
		t.Fatalf("buffer holds %d bytes, limit %d", info.State.Bytes, 1<<20)
	}
	if info.State.LastSeq != 64 || info.State.FirstSeq == 1 || info.State.Msgs == 0 {
		t.Fatalf("state %+v: want the newest frames kept and the oldest dropped", info.State)
	}
}

// The buffer drops frames older than Replay.
func TestBufferBoundedByAge(t *testing.T) {
	cfg := config()
	cfg.Replay = 200 * time.Millisecond
	h := start(t, cfg, quiet())
	nc := testenv.Conn(t, h.ClientURL())
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	m := &nats.Msg{Subject: wire.FramesSubject("front"), Data: []byte{1},
		Header: wire.Frame{Seq: 1, Time: time.Now(), Width: 8, Height: 8}.Header()}
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	st, _ := js.Stream(ctx, wire.FramesStream)
	testenv.Eventually(t, 10*time.Second, fmt.Sprintf("the frame older than %v dropped from the buffer", cfg.Replay), func() bool {
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs == 0
	})
}

// With file storage, frames survive a hub restart, and a changed limit is
// applied to the existing stream.
func TestFileStorageSurvivesRestart(t *testing.T) {
	cfg := config()
	cfg.Storage = hub.StorageFile
	cfg.StoreDir = t.TempDir()
	h, err := hub.Start(context.Background(), cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(h.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	for i := 1; i <= 5; i++ {
		m := &nats.Msg{Subject: wire.FramesSubject("front"), Data: []byte{byte(i)},
			Header: wire.Frame{Seq: uint64(i), Time: time.Now(), Width: 8, Height: 8}.Header()}
		if _, err := js.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	nc.Close()
	h.Close()

	cfg.Replay = time.Hour
	h2 := start(t, cfg, quiet())
	c := streamConfig(t, h2.ClientURL(), wire.FramesStream)
	if c.Storage != jetstream.FileStorage || c.MaxAge != time.Hour {
		t.Fatalf("after restart: storage %v, max age %v", c.Storage, c.MaxAge)
	}
	js2, _ := jetstream.New(testenv.Conn(t, h2.ClientURL()))
	st, _ := js2.Stream(context.Background(), wire.FramesStream)
	msg, err := st.GetMsg(context.Background(), 3)
	if err != nil || len(msg.Data) != 1 || msg.Data[0] != 3 || msg.Header.Get(wire.HeaderSeq) != "3" {
		t.Fatalf("frame 3 after restart: %v %v", msg, err)
	}
}

// hub --nats provisions an existing server and starts none of its own.
func TestExternalNATS(t *testing.T) {
	ns := testenv.NATS(t, nil)
	cfg := config()
	cfg.NATS = ns.ClientURL()
	cfg.Listen = "" // unused
	h := start(t, cfg, quiet())
	if h.ClientURL() != ns.ClientURL() {
		t.Fatalf("ClientURL %q, want the external server %q", h.ClientURL(), ns.ClientURL())
	}
	c := streamConfig(t, ns.ClientURL(), wire.FramesStream)
	if c.MaxBytes != 1<<30 || c.MaxAge != 30*time.Second {
		t.Fatalf("CAMS on the external server: %+v", c)
	}
}

func TestExternalNATSWithoutJetStream(t *testing.T) {
	opts := testenv.NATSOptions(t)
	opts.JetStream = false
	ns := testenv.NATS(t, opts)
	cfg := config()
	cfg.NATS = ns.ClientURL()
	_, err := hub.Start(context.Background(), cfg, quiet())
	if err == nil || !strings.Contains(err.Error(), "JetStream") {
		t.Fatalf("error %v, want one about JetStream", err)
	}
}

func TestPortInUse(t *testing.T) {
	h := start(t, config(), quiet())
	cfg := config()
	cfg.Listen = strings.TrimPrefix(h.ClientURL(), "nats://")
	if _, err := hub.Start(context.Background(), cfg, quiet()); err == nil {
		t.Fatal("a second hub on the same port started")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*hub.Config)
		want string
	}{
		{"storage", func(c *hub.Config) { c.Storage = "disk" }, "storage"},
		{"replay", func(c *hub.Config) { c.Replay = 0 }, "replay"},
		{"bytes", func(c *hub.Config) { c.ReplayBytes = 10 }, "replay-bytes"},
		{"listen", func(c *hub.Config) { c.Listen = "nowhere" }, "listen"},
		{"monitor", func(c *hub.Config) { c.Monitor = "x:y" }, "monitor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config()
			tc.mod(&c)
			if err := c.Validate(); !errors.Is(err, hub.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an ErrConfig naming %q", err, tc.want)
			}
		})
	}
}

func publishStatus(t *testing.T, nc *nats.Conn, st wire.Status) {
	t.Helper()
	data, _ := json.Marshal(st)
	if err := nc.Publish(wire.StatusSubject(st.ID), data); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// The hub logs cameras joining, leaving on a stop report, and leaving when
// their reports stop.
func TestCameraJoinLeaveLog(t *testing.T) {
	var logs testenv.Buffer
	h := start(t, config(), slog.New(slog.NewTextHandler(&logs, nil)))
	nc := testenv.Conn(t, h.ClientURL())

	front := wire.Status{ID: "front", Host: "pi1", State: wire.StateStreaming, Width: 640, Height: 480, IntervalMS: 60000}
	back := wire.Status{ID: "back", Host: "pi2", State: wire.StateStreaming, Width: 640, Height: 480, IntervalMS: 60000}
	publishStatus(t, nc, front)
	publishStatus(t, nc, back)
	testenv.Eventually(t, 10*time.Second, "both cameras online", func() bool { return len(h.Online()) == 2 })
	if !strings.Contains(logs.String(), `msg="camera joined" camera=front host=pi1`) {
		t.Fatalf("no join logged:\n%s", logs.String())
	}
	// garbage on a status subject is ignored
	if err := nc.Publish(wire.StatusSubject("junk"), []byte("{not json")); err != nil {
		t.Fatal(err)
	}

	back.State = wire.StateStopped
	publishStatus(t, nc, back)
	testenv.Eventually(t, 10*time.Second, "back to leave", func() bool {
		return strings.Contains(logs.String(), `msg="camera left" camera=back reason="agent stopped"`)
	})

	// front now says it reports every 100 ms; silent for 300 ms it counts as gone.
	front.IntervalMS = 100
	publishStatus(t, nc, front)
	testenv.Eventually(t, 10*time.Second, "front to leave", func() bool {
		return strings.Contains(logs.String(), `msg="camera left" camera=front reason="no status report"`)
	})

	if got := h.Online(); len(got) != 0 {
		t.Fatalf("online after both left: %v", got)
	}
	front.IntervalMS = 60000
	// and joins again when it reports
	publishStatus(t, nc, front)
	testenv.Eventually(t, 10*time.Second, "front to rejoin", func() bool { return len(h.Online()) == 1 })
}
