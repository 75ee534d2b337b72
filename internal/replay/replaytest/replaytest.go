// Package replaytest publishes frames to a hub's replay buffer for tests of
// the packages that read it (replay, export): pictures that show their
// Frame-Seq as a number OpenCV can read back after JPEG, MPEG-4 or H.264,
// stored with JetStream acknowledgements.
package replaytest

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"gocv.io/x/gocv"

	"camhub/internal/wire"
)

// Pictures encode a number in their content: bit i of n is column i of
// bits (of 8) in the top half, white for 1, black for 0. It survives JPEG,
// MPEG-4 and H.264 and scaling.
const bits = 8

// Picture returns a JPEG of w x h showing n, encoded by OpenCV.
func Picture(t testing.TB, n, w, h int) []byte {
	t.Helper()
	data, err := PictureJPEG(n, w, h)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func PictureJPEG(n, w, h int) ([]byte, error) {
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

// Number reads the number a picture shows, -1 if it shows none.
func Number(m gocv.Mat) int {
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

// JPEGNumber decodes a JPEG and reads its number.
func JPEGNumber(t testing.TB, data []byte) int {
	t.Helper()
	m, err := gocv.IMDecode(data, gocv.IMReadColor)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	return Number(m)
}

// Shot is one frame to publish: camera ID, Frame-Seq Seq (the number the
// picture shows), capture time At, size W x H (160x120 if zero).
type Shot struct {
	ID   string
	Seq  uint64
	At   time.Time
	W, H int
}

// Publish stores a frame in the buffer (JetStream publish, acknowledged),
// showing its Frame-Seq, and returns its stream sequence.
func Publish(t testing.TB, js jetstream.JetStream, s Shot) uint64 {
	t.Helper()
	seq, err := TryPublish(js, s)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// TryPublish is Publish for goroutines other than the test's.
func TryPublish(js jetstream.JetStream, s Shot) (uint64, error) {
	if s.W == 0 {
		s.W, s.H = 160, 120
	}
	data, err := PictureJPEG(int(s.Seq), s.W, s.H)
	if err != nil {
		return 0, err
	}
	m := &nats.Msg{
		Subject: wire.FramesSubject(s.ID),
		Data:    data,
		Header:  wire.Frame{Seq: s.Seq, Time: s.At, Width: s.W, Height: s.H}.Header(),
	}
	ack, err := js.PublishMsg(context.Background(), m)
	if err != nil {
		return 0, fmt.Errorf("publishing %s frame %d: %w", s.ID, s.Seq, err)
	}
	return ack.Sequence, nil
}

// Series returns the capture times of n frames at 10 fps, the last at end.
func Series(n int, end time.Time) []time.Time {
	ts := make([]time.Time, n)
	for i := range ts {
		ts[i] = end.Add(-time.Duration(n-1-i) * 100 * time.Millisecond)
	}
	return ts
}

// PublishSeries publishes frames 1..len(ts) of camera id at times ts.
func PublishSeries(t testing.TB, js jetstream.JetStream, id string, ts []time.Time) {
	t.Helper()
	for i, at := range ts {
		Publish(t, js, Shot{ID: id, Seq: uint64(i + 1), At: at})
	}
}

// PublishWithStray publishes 21 frames 100 ms apart, frame pos+1 of them
// dated stray, and returns the good frames' capture times.
func PublishWithStray(t *testing.T, h func(Shot) uint64, pos int, stray time.Time) []time.Time {
	t.Helper()
	ts := Series(20, time.Now())
	var good []time.Time
	for i := range 21 {
		at := stray
		switch {
		case i < pos:
			at = ts[i]
		case i > pos:
			at = ts[i-1]
		}
		if i != pos {
			good = append(good, at)
		}
		h(Shot{ID: "front", Seq: uint64(i + 1), At: at})
	}
	return good
}

// Strays are frames with a wrong clock: where among 21 frames, and when.
var Strays = map[string]struct {
	Pos int
	At  time.Time
}{
	"2099 in the middle": {10, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)},
	"1970 in the middle": {10, time.Unix(1, 0)},
	"1970 first":         {0, time.Unix(1, 0)},
	"2099 last":          {20, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)},
}
