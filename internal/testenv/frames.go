package testenv

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"camhub/internal/wire"
)

// Picture returns a JPEG of w x h showing n: a solid colour that changes
// with every n, and a white bar whose position does, so that consecutive
// frames look different. noise > 0 sprinkles random pixels, which JPEG
// cannot compress: large frames. It needs no cgo (Go's image/jpeg).
func Picture(t testing.TB, n, w, h int, noise float64) []byte {
	t.Helper()
	data, err := PictureJPEG(n, w, h, noise)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// PictureJPEG is Picture for code without a testing.TB (a benchmark's
// helper process).
func PictureJPEG(n, w, h int, noise float64) ([]byte, error) {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	c := color.RGBA{uint8(n * 67), uint8(n*131 + 80), uint8(n*29 + 160), 255}
	bar := (n * 7) % 10
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	for y := range h {
		for x := range w {
			px := c
			if x*10/w == bar {
				px = color.RGBA{255, 255, 255, 255}
			}
			if noise > 0 && rng.Float64() < noise {
				px = color.RGBA{uint8(rng.Uint32()), uint8(rng.Uint32()), uint8(rng.Uint32()), 255}
			}
			img.SetRGBA(x, y, px)
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// FrameMsg is a frame message of camera id as an agent sends it: the JPEG
// of w x h with Frame-Seq seq, captured at at.
func FrameMsg(id string, seq uint64, at time.Time, data []byte, w, h int) *nats.Msg {
	return &nats.Msg{
		Subject: wire.FramesSubject(id),
		Header:  wire.Frame{Seq: seq, Time: at, Width: w, Height: h}.Header(),
		Data:    data,
	}
}
