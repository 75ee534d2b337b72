package viewer

import (
	"fmt"
	"image"
	"runtime"
	"syscall"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"camhub/hub/hubtest"
	"camhub/internal/testenv"
)

// threadCPU is the CPU time the calling OS thread has used.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	const rusageThread = 1 // RUSAGE_THREAD (Linux)
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processCPU is the CPU time the whole process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkGridH264 measures what a grid of 16 H.264 cameras at 1280x720
// and 15 fps (real footage, libx264 ultrafast, a keyframe a second) costs:
// each iteration is one second of the cameras, published in real time to a
// real hub, the grid updating and drawing a 1920x1080 canvas every 20 ms
// as the window does. "grid-cores" is the CPU time of the grid's thread
// (decoding, scaling, drawing) per second; "process-cores" adds the hub,
// NATS and the publishers, which run in the same process here.
//
//	go test -run '^$' -bench GridH264 -benchtime 10x ./viewer/
func BenchmarkGridH264(b *testing.B) {
	const cams, fps, w, h = 16, 15, 1280, 720
	aus := testenv.H264Clip(b, w, h, 2*fps, fps)
	hb := hubtest.Start(b, nil)
	pub := testenv.Conn(b, hb.ClientURL())
	ids := make([]string, cams)
	for i := range ids {
		ids[i] = fmt.Sprintf("cam%02d", i)
	}
	_, g := newBenchGrid(b, hb.ClientURL(), image.Pt(1920, 1080), ids...)
	canvas := gocv.NewMat()
	defer canvas.Close()

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// the cameras, in real time, from their own goroutine
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second / fps)
		defer tick.Stop()
		for frame := 0; ; frame++ {
			now := time.Now()
			for _, id := range ids {
				if err := pub.PublishMsg(testenv.VideoMsg(b, id, uint64(frame+1), now, aus[frame%len(aus)], w, h)); err != nil {
					b.Error(err)
					return
				}
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { close(stop); <-done }()
	loop := func(d time.Duration) {
		next := time.Now()
		for end := time.Now().Add(d); time.Now().Before(end); {
			g.Update(time.Now())
			g.RenderChanges(&canvas, time.Now())
			next = next.Add(DefaultRefresh)
			if d := time.Until(next); d > 0 {
				time.Sleep(d) // the window's refresh
			}
		}
	}
	loop(time.Second) // warm up: every tile decoding
	b.ResetTimer()
	t0, p0, w0 := threadCPU(), processCPU(), time.Now()
	var decoded0, received0 uint64
	for _, s := range g.Stats() {
		decoded0 += s.Decoded
		received0 += s.Received
	}
	loop(time.Duration(b.N) * time.Second)
	wall := time.Since(w0)
	gridCPU, procCPU := threadCPU()-t0, processCPU()-p0
	b.StopTimer()
	var decoded, received, skipped, bad uint64
	for _, s := range g.Stats() {
		decoded += s.Decoded
		received += s.Received
		skipped += s.Skipped
		bad += s.Bad
	}
	decoded -= decoded0
	received -= received0
	b.ReportMetric(gridCPU.Seconds()/wall.Seconds(), "grid-cores")
	b.ReportMetric(procCPU.Seconds()/wall.Seconds(), "process-cores")
	b.ReportMetric(float64(decoded)/wall.Seconds(), "pictures/s")
	b.ReportMetric(float64(received)/wall.Seconds(), "received/s")
	b.ReportMetric(float64(gridCPU.Microseconds())/1000/float64(max(decoded, 1)), "grid-ms/picture")
	b.ReportMetric(float64(skipped), "skipped")
	b.ReportMetric(float64(bad), "bad")
}

// newBenchGrid is newGrid for a benchmark.
func newBenchGrid(b *testing.B, url string, size image.Point, cams ...string) (*Feed, *Grid) {
	b.Helper()
	feed, err := NewFeed(cams)
	if err != nil {
		b.Fatal(err)
	}
	nc := testenv.Conn(b, url)
	if err := feed.Subscribe(nc); err != nil {
		b.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(feed.Close)
	g := NewGrid(feed, size, testenv.Quiet())
	b.Cleanup(g.Close)
	return feed, g
}
