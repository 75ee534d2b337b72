package main

import (
	"context"
	"fmt"
	"image"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"gocv.io/x/gocv"

	"camhub/internal/wire"
	"camhub/viewer"
)

// overload offers a viewer more frames than it can decode (8 cameras x
// 30 fps at 1280x720, decoded at full size) and measures the time from
// capture to a decoded picture over time: for the camhub grid (newest
// frame wins) and for a plain FIFO pipeline that decodes every frame in
// order.
func overload(res *results, o opts) error {
	const cams, fps = 8, 30
	secs := 2 * o.secs
	for _, kind := range []string{"camhub-grid", "fifo"} {
		srv, err := startServer(o, "memory")
		if err != nil {
			return err
		}
		nc, err := nats.Connect(srv.url)
		if err != nil {
			srv.stop()
			return err
		}
		var mu sync.Mutex
		var lat []time.Duration
		var series [][2]float64
		t0 := time.Now()
		record := func(d time.Duration) {
			mu.Lock()
			lat = append(lat, d)
			series = append(series, [2]float64{time.Since(t0).Seconds(), float64(d) / 1e6})
			mu.Unlock()
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var wg sync.WaitGroup
		var queued atomic.Int64
		switch kind {
		case "camhub-grid":
			feed, err := viewer.NewFeed(publishedIDs(cams))
			if err != nil {
				return err
			}
			if err := feed.Subscribe(nc); err != nil {
				return err
			}
			g := viewer.NewGrid(feed, image.Pt(1280, 720), quietLog())
			g.SetDecodeMode(viewer.DecodeFull)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer feed.Close()
				defer g.Close()
				seen := map[string]uint64{}
				for ctx.Err() == nil {
					now := time.Now()
					g.Update(now)
					for _, t := range g.Tiles(now) {
						if t.Frame.Seq != 0 && t.Frame.Seq != seen[t.ID] {
							seen[t.ID] = t.Frame.Seq
							record(time.Since(t.Frame.Time))
						}
					}
				}
			}()
		case "fifo":
			q := make(chan *nats.Msg, 1<<20) // "unbounded": as a FIFO pipeline queues
			sub, err := nc.Subscribe(wire.AllFrames, func(m *nats.Msg) {
				queued.Add(1)
				q <- m
			})
			if err != nil {
				return err
			}
			sub.SetPendingLimits(-1, -1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-ctx.Done():
						return
					case m := <-q:
						queued.Add(-1)
						f, err := wire.ParseFrame(m.Header)
						if err != nil {
							continue
						}
						img, err := gocv.IMDecode(m.Data, gocv.IMReadColor)
						if err == nil {
							img.Close()
						}
						record(time.Since(f.Time))
					}
				}
			}()
		}
		nc.Flush()
		pub, _, err := startChild(false, o.self, "publish", "-nats", srv.url, "-frames", filepath.Join(o.frames, "1280x720"),
			"-cams", fmt.Sprint(cams), "-fps", fmt.Sprint(fps), "-seconds", fmt.Sprint(secs.Seconds()))
		if err != nil {
			cancel()
			return err
		}
		pub.wait()
		backlog := queued.Load()
		cancel()
		wg.Wait()
		nc.Close()
		srv.stop()
		mu.Lock()
		p50, p99, mx := percentiles(lat)
		first, lastv := windowMax(series, 0, 2), windowMax(series, secs.Seconds()-2, secs.Seconds()+1)
		res.add(Result{Bench: "overload", Name: kind, Labels: map[string]string{"kind": kind},
			Values: map[string]float64{
				"p50_ms": p50, "p99_ms": p99, "max_ms": mx,
				"shown_per_s":     float64(len(lat)) / secs.Seconds(),
				"offered_per_s":   cams * fps,
				"first_2s_max_ms": first,
				"last_2s_max_ms":  lastv,
				"backlog_frames":  float64(backlog),
			},
			Series: bucket(series, 0.5)})
		mu.Unlock()
	}
	return nil
}

// windowMax is the largest latency of series between from and to seconds.
func windowMax(series [][2]float64, from, to float64) float64 {
	m := 0.0
	for _, p := range series {
		if p[0] >= from && p[0] < to {
			m = max(m, p[1])
		}
	}
	return m
}

// bucket keeps the largest latency of every step seconds.
func bucket(series [][2]float64, step float64) [][2]float64 {
	var out [][2]float64
	for _, p := range series {
		b := float64(int(p[0]/step)) * step
		if len(out) == 0 || out[len(out)-1][0] != b {
			out = append(out, [2]float64{b, p[1]})
		} else {
			out[len(out)-1][1] = max(out[len(out)-1][1], p[1])
		}
	}
	return out
}
