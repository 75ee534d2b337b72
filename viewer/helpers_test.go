package viewer

import (
	"image"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"gocv.io/x/gocv"

	"camhub/internal/wire"
)

// Colours in OpenCV's BGR order.
var (
	red   = gocv.NewScalar(0, 0, 255, 0)
	blue  = gocv.NewScalar(255, 0, 0, 0)
	green = gocv.NewScalar(0, 255, 0, 0)
)

// encodeJPEG encodes a w×h picture of colour c with a white square in its
// top left corner (so that a picture drawn upside down or shifted shows).
func encodeJPEG(t testing.TB, c gocv.Scalar, w, h int) []byte {
	t.Helper()
	m := gocv.NewMatWithSizeFromScalar(c, h, w, gocv.MatTypeCV8UC3)
	defer m.Close()
	sq := m.Region(image.Rect(0, 0, w/8, h/8))
	sq.SetTo(gocv.NewScalar(255, 255, 255, 0))
	sq.Close()
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, m, []int{gocv.IMWriteJpegQuality, 85})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...) // valid only until Close
}

// frameMsg builds a frame message as an agent sends it.
func frameMsg(id string, seq uint64, data []byte, w, h int) *nats.Msg {
	return &nats.Msg{
		Subject: wire.FramesSubject(id),
		Header:  wire.Frame{Seq: seq, Time: time.Now(), Width: w, Height: h}.Header(),
		Data:    data,
	}
}

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
