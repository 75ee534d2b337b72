package agent

import (
	"context"
	"fmt"
	"image"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"camhub/internal/avcodec"
	"camhub/internal/h264"
	"camhub/internal/ratelog"
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
// encoding it as JPEG or as H.264 (libx264 with the agent's defaults,
// a keyframe a second at 15 fps; loTier.deliver's work), next to the main
// tier's own JPEG encode of the same frame for scale. Real footage: one
// frame for JPEG, the clip playing for H.264 (whose deltas cost what the
// picture changes), which also reports its keyframes' cost alone
// (ms/keyframe). CPU time per frame
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
		b.Run(fmt.Sprintf("lo-h264-%dx%d-from-%dx%d", tc.loW, tc.loH, tc.mainW, tc.mainH), func(b *testing.B) {
			benchLoH264(b, image.Pt(tc.mainW, tc.mainH), tc.loW, tc.loH)
		})
		img.Close()
	}
}

// benchLoH264 runs loTier.deliver's H.264 work for b.N frames of real
// footage played at 15 fps, scaled to main x main first (not measured:
// CPU time is taken around the small tier's work alone), and takes the
// access units off the queue as the publisher would.
func benchLoH264(b *testing.B, main image.Point, w, h int) {
	const fps = 15
	vc, err := gocv.VideoCaptureFile(testenv.Footage)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { vc.Close() }()
	src, img := gocv.NewMat(), gocv.NewMat()
	defer src.Close()
	defer img.Close()
	a := &Agent{cfg: Config{Encoder: avcodec.CodecX264, LoFPS: fps}, log: testenv.Quiet(), started: time.Now()}
	a.warn = ratelog.New(a.log, time.Minute)
	l := &loTier{a: a, w: w, h: h, vq: h264.NewQueue(videoQueue)}
	l.venc = l.newVideoEncoder()
	defer l.close()
	var bytes, keys int
	var cpu, keyCPU time.Duration
	b.ResetTimer()
	for i := range b.N {
		if !vc.Read(&src) || src.Empty() { // the clip ended: again
			vc.Close()
			if vc, err = gocv.VideoCaptureFile(testenv.Footage); err != nil || !vc.Read(&src) {
				b.Fatalf("cannot read %s: %v", testenv.Footage, err)
			}
		}
		gocv.Resize(src, &img, main, 0, 0, gocv.InterpolationLinear)
		start := cpuTime(b)
		l.venc.encode(l.shrink(img), a.started.Add(time.Duration(i)*time.Second/fps))
		d := cpuTime(b) - start
		cpu += d
		for l.vq.Len() > 0 {
			au, _ := l.vq.Pop(context.Background())
			bytes += len(au.Data)
			if au.Key {
				keys++
				keyCPU += d
			}
		}
	}
	reportCPU(b, cpu, uint64(b.N))
	if st := l.stats(); st.Dropped != 0 || st.Frames != uint64(b.N) {
		b.Fatalf("%d frames encoded of %d: stats %+v", st.Frames, b.N, st)
	}
	b.ReportMetric(float64(bytes)/float64(b.N), "bytes/frame")
	if keys > 0 {
		b.ReportMetric(float64(keyCPU.Microseconds())/1000/float64(keys), "ms/keyframe")
	}
	b.ReportMetric(float64(l.venc.enc.Config().Width*l.venc.enc.Config().Height), "pixels")
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
