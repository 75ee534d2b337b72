package main

import (
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"camhub/internal/proc"
	"camhub/internal/wire"
)

// latency measures capture-to-viewer time (Frame-Time to the viewer's
// handler, no decode) for cams simulated cameras at fps, publishing from
// one process through a hub (or a bare nats-server) in another, to a
// viewer in this one; and the server's CPU share of the machine.
func latency(res *results, o opts, mode string, cams int, fps float64) error {
	srv, nc, err := startServerConn(o, map[string]string{"raw": "raw", "hub": "memory"}[mode])
	if err != nil {
		return err
	}
	defer srv.stop()
	defer nc.Close()
	var mu sync.Mutex
	var lat []time.Duration
	var measuring atomic.Bool
	sub, err := nc.Subscribe(wire.AllFrames, func(m *nats.Msg) {
		f, err := wire.ParseFrame(m.Header)
		if err != nil || !measuring.Load() {
			return
		}
		d := time.Since(f.Time)
		mu.Lock()
		lat = append(lat, d)
		mu.Unlock()
	})
	if err != nil {
		return err
	}
	sub.SetPendingLimits(-1, -1)
	nc.Flush()
	warm := 2 * time.Second
	pub, _, err := startChild(false, o.self, "publish", "-nats", srv.url, "-frames", filepath.Join(o.frames, "640x480"),
		"-cams", fmt.Sprint(cams), "-fps", fmt.Sprint(fps), "-seconds", fmt.Sprint((warm + o.secs + time.Second).Seconds()))
	if err != nil {
		return err
	}
	time.Sleep(warm) // the warm-up is a duration of the measurement, not a wait for an event
	cpu0, _ := proc.CPU(srv.c.pid())
	pcpu0, _ := proc.CPU(pub.pid())
	t0 := time.Now()
	measuring.Store(true)
	time.Sleep(o.secs)
	measuring.Store(false)
	el := time.Since(t0)
	cpu1, _ := proc.CPU(srv.c.pid())
	pcpu1, _ := proc.CPU(pub.pid())
	rss := procRSS(srv.c.pid())
	pub.wait()
	mu.Lock()
	p50, p99, mx := percentiles(lat)
	n := len(lat)
	mu.Unlock()
	ncpu := float64(runtime.NumCPU())
	res.add(Result{Bench: "latency", Name: fmt.Sprintf("%s %dx%.0ffps", mode, cams, fps),
		Labels: map[string]string{"mode": mode, "cams": fmt.Sprint(cams)},
		Values: map[string]float64{
			"p50_ms": p50, "p99_ms": p99, "max_ms": mx,
			"frames_per_s":      float64(n) / el.Seconds(),
			"offered_per_s":     float64(cams) * fps,
			"server_cpu_pct":    100 * float64(cpu1-cpu0) / float64(el) / ncpu,
			"publisher_cpu_pct": 100 * float64(pcpu1-pcpu0) / float64(el) / ncpu,
			"server_rss_mib":    rss / (1 << 20),
			"machine_cpus":      ncpu,
		}})
	return nil
}
