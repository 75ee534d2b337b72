package web

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"camhub/hub"
	"camhub/hub/hubtest"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// startHub starts a real in-process hub on loopback and returns a
// connection to it; both end with the test.
func startHub(t testing.TB) (*hub.Server, *nats.Conn) {
	t.Helper()
	h := hubtest.Start(t, &hub.Config{
		Listen: "127.0.0.1:0", Replay: 30 * time.Second, ReplayBytes: 256 << 20, Storage: hub.StorageMemory,
	})
	return h, testenv.Conn(t, h.ClientURL())
}

// startWeb starts a web server on nc behind an httptest server on
// loopback. The web server closes first when the test ends, which ends its
// streams, so that the httptest server's Close does not wait for them.
func startWeb(t testing.TB, cfg Config, nc *nats.Conn) (*Server, *httptest.Server) {
	t.Helper()
	s, err := New(cfg, nc, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	t.Cleanup(s.Close)
	return s, ts
}

// camera publishes test frames and status reports as an agent does.
type camera struct {
	t    testing.TB
	nc   *nats.Conn
	id   string
	w, h int
	pics [][]byte // frames cycle through these

	mu  sync.Mutex
	seq uint64
}

// newCamera returns a camera with frames of w x h; it makes npics
// different ones.
func newCamera(t testing.TB, nc *nats.Conn, id string, w, h, npics int, noise float64) *camera {
	c := &camera{t: t, nc: nc, id: id, w: w, h: h}
	for i := range npics {
		c.pics = append(c.pics, testenv.Picture(t, i, w, h, noise))
	}
	return c
}

// frame publishes the next frame and returns its Frame-Seq.
func (c *camera) frame() uint64 {
	c.mu.Lock()
	c.seq++
	seq := c.seq
	c.mu.Unlock()
	if err := c.nc.PublishMsg(natsFrame(c, seq, time.Now())); err != nil {
		c.t.Error(err)
	}
	return seq
}

// lastSeq is the Frame-Seq of the newest frame published.
func (c *camera) lastSeq() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seq
}

// past publishes n frames captured every interval up to end (the last one
// an interval before it), as if the camera had been sending: a buffer to
// rewind into.
func (c *camera) past(n int, every time.Duration, end time.Time) {
	for i := range n {
		c.mu.Lock()
		c.seq++
		seq := c.seq
		c.mu.Unlock()
		if err := c.nc.PublishMsg(natsFrame(c, seq, end.Add(time.Duration(i-n)*every))); err != nil {
			c.t.Fatal(err)
		}
	}
}

// report publishes a status report in state.
func (c *camera) report(state string) {
	st := wire.Status{
		ID: c.id, Host: "test-host", Source: "testpattern", State: state, FPS: 10, Width: c.w, Height: c.h,
		Started: time.Now(), Time: time.Now(), IntervalMS: 1000, Version: "test",
	}
	data, err := json.Marshal(st)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.nc.Publish(wire.StatusSubject(c.id), data); err != nil {
		c.t.Error(err)
	}
	if err := c.nc.Flush(); err != nil {
		c.t.Error(err)
	}
}

// run publishes a frame every interval and a report every 500 ms until
// the test ends.
func (c *camera) run(interval time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	c.t.Cleanup(func() {
		cancel()
		<-done
	})
	c.report(wire.StateStreaming)
	go func() {
		defer close(done)
		frames := time.NewTicker(interval)
		defer frames.Stop()
		reports := time.NewTicker(500 * time.Millisecond)
		defer reports.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-frames.C:
				c.frame()
			case <-reports.C:
				c.report(wire.StateStreaming)
			}
		}
	}()
}

// getJSON gets url and decodes its JSON body into v, returning the status.
func getJSON(t testing.TB, url string, v any) int {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		body, _ := io.ReadAll(res.Body)
		t.Fatalf("GET %s: Content-Type %q, want application/json: %s", url, ct, body)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return res.StatusCode
}

// natsFrame is a frame message of camera c with Frame-Seq seq captured at
// at.
func natsFrame(c *camera, seq uint64, at time.Time) *nats.Msg {
	return testenv.FrameMsg(c.id, seq, at, c.pics[int(seq-1)%len(c.pics)], c.w, c.h)
}
