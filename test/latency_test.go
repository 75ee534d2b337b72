package test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"gocv.io/x/gocv"

	"camhub/agent"
	"camhub/hub/hubtest"
	"camhub/internal/wire"
)

// BenchmarkLatency measures the time from capture (Frame-Time) to a viewer
// on another connection, for 4 testpattern cameras at 30 fps, 640x480,
// quality 80, through the embedded hub over loopback TCP. "received" is
// when the frame arrives at the viewer; "decoded" adds the viewer's JPEG
// decode at half size (IMReadReducedColor2), as for a grid tile. b.N is
// the number of frames measured.
//
//	go test -run XXX -bench Latency -benchtime 1800x ./test/
func BenchmarkLatency(b *testing.B) {
	const cams, fps = 4, 30
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := hubtest.Start(b, nil)

	viewer, err := nats.Connect(h.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer viewer.Close()
	var mu sync.Mutex
	var received, decoded []time.Duration
	done := make(chan struct{})
	frames := make(chan *nats.Msg, cams*fps) // the handler never blocks on it
	sub, err := viewer.Subscribe(wire.AllFrames, func(m *nats.Msg) {
		f, err := wire.ParseFrame(m.Header)
		if err != nil {
			return
		}
		mu.Lock()
		received = append(received, time.Since(f.Time))
		mu.Unlock()
		select {
		case frames <- m:
		default:
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	go func() { // the viewer's decoder
		defer close(done)
		for m := range frames {
			f, _ := wire.ParseFrame(m.Header)
			img, err := gocv.IMDecode(m.Data, gocv.IMReadReducedColor2)
			if err != nil || img.Empty() {
				b.Error("frame does not decode")
			}
			img.Close()
			mu.Lock()
			decoded = append(decoded, time.Since(f.Time))
			n := len(decoded)
			mu.Unlock()
			if n == b.N {
				return
			}
		}
	}()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range cams {
		nc, err := nats.Connect(h.ClientURL())
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		a, err := agent.New(agent.Config{ID: fmt.Sprintf("cam%d", i), Source: "testpattern", FPS: fps, Width: 640, Height: 480, Quality: 80}, nc, log)
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.Run(ctx)
		}()
	}
	b.ResetTimer()
	<-done
	b.StopTimer()
	cancel()
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	for name, d := range map[string][]time.Duration{"received": received, "decoded": decoded} {
		slices.Sort(d)
		q := func(p float64) float64 { return float64(d[int(p*float64(len(d)-1))]) / float64(time.Millisecond) }
		b.ReportMetric(q(0.50), name+"-p50-ms")
		b.ReportMetric(q(0.99), name+"-p99-ms")
		b.ReportMetric(q(1), name+"-max-ms")
	}
}
