package export

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"gocv.io/x/gocv"

	"camhub/hub"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func hubConfig() hub.Config {
	return hub.Config{Listen: "127.0.0.1:0", Replay: 30 * time.Second, ReplayBytes: 1 << 30, Storage: hub.StorageMemory}
}

// startHub starts a real in-process hub and returns a JetStream context on
// a connection to it; both end with the test.
func startHub(t *testing.T, cfg hub.Config) (*hub.Server, jetstream.JetStream) {
	t.Helper()
	h, err := hub.Start(context.Background(), cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h, connect(t, h.ClientURL())
}

func connect(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(testenv.Conn(t, url))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// ctxFor is a context that ends with the test, or after d.
func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Pictures encode a number in their content: bit i of n is column i of
// bits (of 8) in the top half, white for 1, black for 0. It survives JPEG,
// MPEG-4 and H.264 and scaling.
const bits = 8

// pictureJPEG returns a JPEG of w x h showing n, encoded by OpenCV.
func pictureJPEG(n, w, h int) ([]byte, error) {
	m := gocv.NewMatWithSize(h, w, gocv.MatTypeCV8UC3)
	defer m.Close()
	m.SetTo(gocv.NewScalar(0, 0, 0, 0))
	// The bottom half is grey, to tell a picture from a black frame.
	gocv.Rectangle(&m, image.Rect(0, h/2, w, h), color.RGBA{128, 128, 128, 0}, -1)
	for i := range bits {
		if n&(1<<i) != 0 {
			gocv.Rectangle(&m, image.Rect(i*w/bits, 0, (i+1)*w/bits, h/2), color.RGBA{255, 255, 255, 0}, -1)
		}
	}
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, m, []int{gocv.IMWriteJpegQuality, 90})
	if err != nil {
		return nil, err
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...), nil
}

// number reads the number a picture shows, -1 if it shows none.
func number(m gocv.Mat) int {
	if m.Empty() || m.Channels() != 3 {
		return -1
	}
	w, h := m.Cols(), m.Rows()
	if g := m.GetVecbAt(h*3/4, w/2); g[0] < 80 || g[0] > 180 {
		return -1 // not our grey
	}
	n := 0
	for i := range bits {
		v := m.GetVecbAt(h/4, i*w/bits+w/(2*bits))
		if int(v[0])+int(v[1])+int(v[2]) > 3*128 {
			n |= 1 << i
		}
	}
	return n
}

// jpegNumber decodes a JPEG and reads its number.
func jpegNumber(t testing.TB, data []byte) int {
	t.Helper()
	m, err := gocv.IMDecode(data, gocv.IMReadColor)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	return number(m)
}

// shot is one frame to publish.
type shot struct {
	id   string
	seq  uint64
	at   time.Time
	w, h int
}

// publish stores a frame in the buffer (JetStream publish, acknowledged),
// showing its Frame-Seq, and returns its stream sequence.
func publish(t testing.TB, js jetstream.JetStream, s shot) uint64 {
	t.Helper()
	seq, err := tryPublish(js, s)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// tryPublish is publish for goroutines other than the test's.
func tryPublish(js jetstream.JetStream, s shot) (uint64, error) {
	if s.w == 0 {
		s.w, s.h = 160, 120
	}
	data, err := pictureJPEG(int(s.seq), s.w, s.h)
	if err != nil {
		return 0, err
	}
	m := &nats.Msg{
		Subject: wire.FramesSubject(s.id),
		Data:    data,
		Header:  wire.Frame{Seq: s.seq, Time: s.at, Width: s.w, Height: s.h}.Header(),
	}
	ack, err := js.PublishMsg(context.Background(), m)
	if err != nil {
		return 0, fmt.Errorf("publishing %s frame %d: %w", s.id, s.seq, err)
	}
	return ack.Sequence, nil
}

// series returns the capture times of n frames at 10 fps, the last at end.
func series(n int, end time.Time) []time.Time {
	ts := make([]time.Time, n)
	for i := range ts {
		ts[i] = end.Add(-time.Duration(n-1-i) * 100 * time.Millisecond)
	}
	return ts
}

// publishSeries publishes frames 1..len(ts) of camera id at times ts.
func publishSeries(t testing.TB, js jetstream.JetStream, id string, ts []time.Time) {
	t.Helper()
	for i, at := range ts {
		publish(t, js, shot{id: id, seq: uint64(i + 1), at: at})
	}
}

// names lists the files in dir.
func names(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ns []string
	for _, e := range es {
		ns = append(ns, e.Name())
	}
	return ns
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
}
