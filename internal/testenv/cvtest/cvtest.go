// Package cvtest holds the test helpers that need OpenCV (cgo), so that
// package testenv stays cgo-free for the tests of the hub and the web
// viewer.
package cvtest

import (
	"image"
	"testing"

	"gocv.io/x/gocv"
)

// Colours in OpenCV's BGR order.
var (
	Red   = gocv.NewScalar(0, 0, 255, 0)
	Green = gocv.NewScalar(0, 255, 0, 0)
	Blue  = gocv.NewScalar(255, 0, 0, 0)
)

// JPEG encodes a w×h picture of colour c with a white square in its top
// left corner, an eighth of each side (so that a picture drawn upside down
// or shifted shows).
func JPEG(t testing.TB, c gocv.Scalar, w, h int) []byte {
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

// OpenVideo opens a video file with OpenCV, failing the test if it cannot;
// the capture is closed when the test ends.
func OpenVideo(t testing.TB, path string) *gocv.VideoCapture {
	t.Helper()
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil {
		t.Fatalf("opening %s: %v", path, err)
	}
	t.Cleanup(func() { vc.Close() })
	if !vc.IsOpened() {
		t.Fatalf("OpenCV cannot open %s", path)
	}
	return vc
}
