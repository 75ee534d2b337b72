package viewer

import (
	"image"
	"testing"

	"github.com/nats-io/nats.go"
	"gocv.io/x/gocv"
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
