package agent

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"gocv.io/x/gocv"

	"camhub/internal/natsconn"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// testLog logs to the test's output at Debug, so that a failing test shows
// what the agent said.
func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// startNATS starts a nats-server (opts nil: testenv's defaults) and returns
// its URL.
func startNATS(t testing.TB, opts *server.Options) (*server.Server, string) {
	s := testenv.NATS(t, opts)
	return s, s.ClientURL()
}

// dial connects as the agent command does: natsconn.Dial's policy, with no
// reconnect buffer.
func dial(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := natsconn.Dial(url, natsconn.DialOptions{Name: "test agent", Retry: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// subscribe receives everything camera id sends, frames and status, in
// the order it was sent, on its own connection.
func subscribe(t testing.TB, url, id string) <-chan *nats.Msg {
	t.Helper()
	nc := testenv.Conn(t, url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	ch := make(chan *nats.Msg, 8192)
	_, err := nc.ChanSubscribe(wire.SubjectPrefix+"."+id+".*", ch)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return ch
}

// running is an agent running in the background.
type running struct {
	a      *Agent
	cancel context.CancelFunc
	done   chan error
}

// start runs an agent until the test ends or stop is called.
func start(t testing.TB, cfg Config, nc *nats.Conn) *running {
	t.Helper()
	a, err := New(cfg, nc, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	return run(t, a)
}

// run runs a until the test ends or stop is called.
func run(t testing.TB, a *Agent) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{a: a, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(20 * time.Second):
			t.Error("Run did not return 20 s after its context was cancelled")
		}
	})
	return r
}

// stop cancels Run and returns its error.
func (r *running) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	return r.wait(t, 20*time.Second)
}

// wait waits for Run to return.
func (r *running) wait(t testing.TB, d time.Duration) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(d):
		t.Fatalf("Run did not return within %v", d)
		return nil
	}
}

// received is what a test received from a camera.
type received struct {
	frames   []*nats.Msg
	statuses []*wire.Status
}

func (r *received) lastStatus() *wire.Status {
	if len(r.statuses) == 0 {
		return nil
	}
	return r.statuses[len(r.statuses)-1]
}

func (r *received) String() string {
	states := make([]string, len(r.statuses))
	for i, s := range r.statuses {
		states[i] = s.State
		if s.Error != "" {
			states[i] += "(" + s.Error + ")"
		}
	}
	return fmt.Sprintf("%d frames, statuses %v", len(r.frames), states)
}

// collect adds the messages on ch to r until done(r) is true. It fails the
// test if that takes longer than d.
func collect(t testing.TB, ch <-chan *nats.Msg, r *received, d time.Duration, done func(*received) bool) {
	t.Helper()
	deadline := time.After(d)
	for !done(r) {
		select {
		case m := <-ch:
			if _, kind, _ := wire.ParseSubject(m.Subject); kind == wire.KindFrames {
				r.frames = append(r.frames, m)
				continue
			}
			s, err := wire.ParseStatus(m.Subject, m.Data)
			if err != nil {
				t.Fatalf("status report: %v: %s", err, m.Data)
			}
			r.statuses = append(r.statuses, s)
		case <-deadline:
			t.Fatalf("after %v: %v", d, r)
		}
	}
}

// stateAfter is a collect condition: a status report in state arrived
// after the first n reports.
func stateAfter(n int, state string) func(*received) bool {
	return func(r *received) bool {
		for _, s := range r.statuses[min(n, len(r.statuses)):] {
			if s.State == state {
				return true
			}
		}
		return false
	}
}

// decoded is a received frame, checked and decoded.
type decoded struct {
	wire.Frame
	size       int     // JPEG bytes
	brightness float64 // mean of the first channel
}

// decode checks a frame's headers and decodes its JPEG, which must have
// the size the headers say.
func decode(t testing.TB, m *nats.Msg) decoded {
	t.Helper()
	f, err := wire.ParseFrame(m.Header)
	if err != nil {
		t.Fatal(err)
	}
	img, err := gocv.IMDecode(m.Data, gocv.IMReadColor)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if img.Empty() {
		t.Fatalf("frame %d: %d bytes that are not a JPEG", f.Seq, len(m.Data))
	}
	if img.Cols() != f.Width || img.Rows() != f.Height {
		t.Fatalf("frame %d: headers say %dx%d, the JPEG is %dx%d", f.Seq, f.Width, f.Height, img.Cols(), img.Rows())
	}
	return decoded{Frame: f, size: len(m.Data), brightness: img.Mean().Val1}
}

// Test videos encode each frame's index i in its brightness.
func videoLevel(i int) float64 { return float64(10 + 12*i) }

// videoIndex reads a frame index back from a brightness.
func videoIndex(t testing.TB, brightness float64) int {
	t.Helper()
	i := int(math.Round((brightness - 10) / 12))
	if math.Abs(brightness-videoLevel(i)) > 4 {
		t.Fatalf("brightness %.1f is no frame's", brightness)
	}
	return i
}

// writeVideo writes an MJPG .avi of n (at most 20) frames whose brightness
// encodes their index, and returns its path.
func writeVideo(t testing.TB, dir string, w, h int, fps float64, n int) string {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("video-%dx%d.avi", w, h))
	vw, err := gocv.VideoWriterFile(path, "MJPG", fps, w, h, true)
	if err != nil {
		t.Fatal(err)
	}
	if !vw.IsOpened() {
		t.Fatal("cannot write an MJPG video")
	}
	for i := range n {
		v := videoLevel(i % 20)
		img := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(v, v, v, 0), h, w, gocv.MatTypeCV8UC3)
		if err := vw.Write(img); err != nil {
			t.Fatal(err)
		}
		img.Close()
	}
	if err := vw.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("video not written: %v", err)
	}
	return path
}

// checkCounts checks, once Run has returned, that every frame given a
// Frame-Seq was sent or dropped, and that the final report says so.
func checkCounts(t testing.TB, a *Agent, r *received) {
	t.Helper()
	st := a.Stats()
	if st.Frames != st.Sent+st.Dropped {
		t.Errorf("stats %+v: frames != sent + dropped", st)
	}
	last := r.lastStatus()
	if last == nil || last.State != wire.StateStopped {
		t.Fatalf("last report is not stopped: %v", r)
	}
	if last.FramesSent != st.Sent || last.FramesDropped != st.Dropped {
		t.Errorf("stopped report says %d sent, %d dropped; stats %+v", last.FramesSent, last.FramesDropped, st)
	}
	var bytes uint64
	for _, f := range r.frames {
		bytes += uint64(len(f.Data))
	}
	if last.BytesSent != st.Bytes || bytes != st.Bytes {
		t.Errorf("stopped report says %d bytes sent, stats %d, received %d", last.BytesSent, st.Bytes, bytes)
	}
	if uint64(len(r.frames)) != st.Sent {
		t.Errorf("received %d frames, the agent sent %d", len(r.frames), st.Sent)
	}
}
