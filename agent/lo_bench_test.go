package agent

import (
	"fmt"
	"image"
	"testing"

	"gocv.io/x/gocv"

	"camhub/internal/testenv"
)

// footageFrame is a frame of real footage scaled to w x h; the caller
// closes it.
func footageFrame(b *testing.B, w, h int) gocv.Mat {
	vc, err := gocv.VideoCaptureFile(testenv.Footage)
	if err != nil {
		b.Fatal(err)
	}
	defer vc.Close()
	src := gocv.NewMat()
	defer src.Close()
	for range 30 { // into the scene
		if !vc.Read(&src) || src.Empty() {
			b.Fatalf("cannot read %s", testenv.Footage)
		}
	}
	out := gocv.NewMat()
	gocv.Resize(src, &out, image.Pt(w, h), 0, 0, gocv.InterpolationLinear)
	return out
}

// BenchmarkLoTier measures what the small tier costs the capture goroutine
// per frame: scaling the main tier's frame down to fit the small size and
// JPEG-encoding it (loTier.deliver's work), next to the main tier's own
// JPEG encode of the same frame for scale. Real footage. CPU time per frame
// (the process's, one thread encodes), which a loaded machine inflates
// less than wall time.
//
//	go test -run XXX -bench LoTier -benchtime 300x ./agent/
func BenchmarkLoTier(b *testing.B) {
	for _, tc := range []struct{ mainW, mainH, loW, loH int }{
		{640, 480, 320, 180}, {1280, 720, 320, 180}, {1280, 720, 640, 360}, {1920, 1080, 320, 180},
	} {
		img := footageFrame(b, tc.mainW, tc.mainH)
		st := &counters{}
		limit := func() int { return 8 << 20 }
		b.Run(fmt.Sprintf("main-%dx%d", tc.mainW, tc.mainH), func(b *testing.B) {
			enc := newEncoder(tc.mainW, tc.mainH, DefaultQuality, limit, st, testenv.Quiet())
			defer enc.close()
			benchEncode(b, enc, img, nil)
		})
		b.Run(fmt.Sprintf("lo-%dx%d-from-%dx%d", tc.loW, tc.loH, tc.mainW, tc.mainH), func(b *testing.B) {
			l := &loTier{w: tc.loW, h: tc.loH}
			l.enc = newEncoder(tc.loW, tc.loH, DefaultLoQuality, limit, st, testenv.Quiet())
			defer l.close()
			benchEncode(b, l.enc, img, l.shrink)
		})
		img.Close()
	}
}

func benchEncode(b *testing.B, enc *encoder, img gocv.Mat, pre func(gocv.Mat) gocv.Mat) {
	f := &frame{}
	var bytes int
	b.ResetTimer()
	cpu := cpuTime(b)
	for range b.N {
		in := img
		if pre != nil {
			in = pre(img)
		}
		if !enc.encode(in, f) {
			b.Fatal("encode failed")
		}
		bytes += len(f.data)
	}
	reportCPU(b, cpuTime(b)-cpu, uint64(b.N))
	b.ReportMetric(float64(bytes)/float64(b.N), "bytes/frame")
	b.ReportMetric(float64(f.width*f.height), "pixels")
}
