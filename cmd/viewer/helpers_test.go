package main

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"gocv.io/x/gocv"

	"camhub/internal/wire"
)

// Colours in OpenCV's BGR order.
var (
	red  = gocv.NewScalar(0, 0, 255, 0)
	blue = gocv.NewScalar(255, 0, 0, 0)
)

// encodeJPEG encodes a w×h picture of colour c.
func encodeJPEG(t testing.TB, c gocv.Scalar, w, h int) []byte {
	t.Helper()
	m := gocv.NewMatWithSizeFromScalar(c, h, w, gocv.MatTypeCV8UC3)
	defer m.Close()
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, m, []int{gocv.IMWriteJpegQuality, 85})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...)
}

// frameMsg builds a frame message as an agent sends it.
func frameMsg(id string, seq uint64, data []byte, w, h int) *nats.Msg {
	return &nats.Msg{
		Subject: wire.FramesSubject(id),
		Header:  wire.Frame{Seq: seq, Time: time.Now(), Width: w, Height: h}.Header(),
		Data:    data,
	}
}
