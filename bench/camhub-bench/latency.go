package main

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/proc"
	"camhub/internal/wire"
)

// latency measures capture-to-viewer time (Frame-Time to the viewer's
// handler, no decode) for cams simulated cameras at fps, publishing
// 640x480 JPEGs from one process through a hub (or a bare nats-server) in
// another, to a viewer in this one; and the server's CPU share of the
// machine.
func latency(res *results, o opts, mode string, cams int, fps float64) error {
	v, err := measureLatency(o, latencyCase{server: map[string]string{"raw": "raw", "hub": "memory"}[mode], cams: cams, fps: fps,
		frames: filepath.Join(o.frames, "640x480")})
	if err != nil {
		return err
	}
	res.add(Result{Bench: "latency", Name: fmt.Sprintf("%s %dx%.0ffps", mode, cams, fps),
		Labels: map[string]string{"mode": mode, "cams": fmt.Sprint(cams)}, Values: v})
	return nil
}

// latencyCase is one latency measurement.
type latencyCase struct {
	server string  // raw (a bare nats-server), or the hub's storage: memory or file (+motion: with its detector)
	cams   int     // simulated cameras
	fps    float64 // per camera
	frames string  // directory of the JPEGs published (and whose size the headers give)
	video  string  // when set, the H.264 stream published instead of JPEGs
	// aligned puts every camera's keyframes in the same frame interval
	// (publish -gop-phase aligned) instead of spreading them
	aligned bool
	// pin runs the server on one CPU and this process and the cameras
	// on the others (see pinned); without two CPUs it is not done
	pin bool
}

// measureLatency runs a latencyCase. For a hub it also reports what its
// CAMS stream holds at the end: stored bytes per message, JetStream's
// overhead included. Its value pinned is 1 when the processes were
// pinned, 0 when not.
func measureLatency(o opts, c latencyCase) (map[string]float64, error) {
	hubCPU := ""
	if c.pin {
		cpu, rest, ok := cpuSplit()
		if ok {
			restore, err := pinSelf(rest)
			if err != nil {
				return nil, err
			}
			defer restore()
			hubCPU = cpu
		}
	}
	srv, nc, err := startServerConnOn(o, c.server, hubCPU)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	defer nc.Close()
	var mu sync.Mutex
	var lat []time.Duration
	var measuring atomic.Bool
	subject, parse := wire.AllFrames, wire.ParseFrame
	if c.video != "" {
		subject = wire.AllVideo
		parse = func(h nats.Header) (wire.Frame, error) {
			v, err := wire.ParseVideo(h)
			return v.Frame, err
		}
	}
	var bad atomic.Uint64
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		f, err := parse(m.Header)
		if err != nil {
			bad.Add(1)
			return
		}
		if !measuring.Load() {
			return
		}
		d := time.Since(f.Time)
		mu.Lock()
		lat = append(lat, d)
		mu.Unlock()
	})
	if err != nil {
		return nil, err
	}
	sub.SetPendingLimits(-1, -1)
	nc.Flush()
	warm := 2 * time.Second
	args := []string{"publish", "-nats", srv.url, "-frames", c.frames,
		"-cams", fmt.Sprint(c.cams), "-fps", fmt.Sprint(c.fps), "-seconds", fmt.Sprint((warm + o.secs + time.Second).Seconds())}
	if c.video != "" {
		args = append(args, "-video", c.video)
	}
	if c.aligned {
		args = append(args, "-gop-phase", "aligned")
	}
	pub, _, err := startChild(false, o.self, args...)
	if err != nil {
		return nil, err
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
	if b := bad.Load(); b > 0 {
		return nil, fmt.Errorf("%d messages with bad headers", b)
	}
	ncpu := float64(runtime.NumCPU())
	v := map[string]float64{
		"p50_ms": p50, "p99_ms": p99, "max_ms": mx,
		"frames_per_s":      float64(n) / el.Seconds(),
		"offered_per_s":     float64(c.cams) * c.fps,
		"server_cpu_pct":    100 * float64(cpu1-cpu0) / float64(el) / ncpu,
		"publisher_cpu_pct": 100 * float64(pcpu1-pcpu0) / float64(el) / ncpu,
		"server_rss_mib":    rss / (1 << 20),
		"machine_cpus":      ncpu,
	}
	if hubCPU != "" {
		v["pinned"] = 1
	}
	if c.server != "raw" { // what the buffer holds
		js, err := jetstream.New(nc)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, wire.FramesStream)
		if err != nil {
			return nil, err
		}
		st := s.CachedInfo().State
		if st.Msgs > 0 {
			v["stored_bytes_per_msg"] = float64(st.Bytes) / float64(st.Msgs)
		}
	}
	return v, nil
}
