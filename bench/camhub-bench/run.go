package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"gocv.io/x/gocv"

	"camhub/internal/wire"
	"camhub/viewer"
)

// opts are the run's settings.
type opts struct {
	frames string // frames directory (camhub-bench frames)
	bin    string // directory with hub and agent binaries
	self   string // this program
	quick  bool
	secs   time.Duration // measuring time of timed parts
}

func runCmd(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	var o opts
	fs.StringVar(&o.frames, "frames", "bench/out/frames", "frames `directory` (camhub-bench frames)")
	fs.StringVar(&o.bin, "bin", "bin", "`directory` holding the hub and agent binaries")
	out := fs.String("out", "bench/out/results.jsonl", "append results to this `file`")
	fs.BoolVar(&o.quick, "quick", false, "shorter runs (make bench-quick)")
	only := fs.String("only", "", "run only these parts (comma-separated: relay,latency,overload,agent,viewer,decode)")
	cpuprofile := fs.String("cpuprofile", "", "write this process's CPU profile to `file`")
	fs.Parse(args)
	if *cpuprofile != "" {
		pf, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	o.self = self
	o.secs = 10 * time.Second
	if o.quick {
		o.secs = 3 * time.Second
	}
	f, err := os.OpenFile(*out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	res := &results{w: f}
	want := func(part string) bool {
		return *only == "" || strings.Contains(","+*only+",", ","+part+",")
	}
	fmt.Fprintf(os.Stderr, "camhub-bench: %d CPUs, %s, quick=%v\n", runtime.NumCPU(), runtime.Version(), o.quick)

	frames := map[string][][]byte{}
	for _, s := range sizes {
		fr, err := loadFrames(filepath.Join(o.frames, sizeName(s)))
		if err != nil {
			return err
		}
		frames[sizeName(s)] = fr
		res.add(Result{Bench: "frames", Name: sizeName(s), Values: map[string]float64{"count": float64(len(fr)), "mean_bytes": float64(meanSize(fr))}})
	}

	type part struct {
		name string
		run  func() error
	}
	parts := []part{
		{"relay", func() error {
			n, reps := 3000, 3
			if o.quick {
				n, reps = 1000, 1
			}
			for _, s := range sizes {
				if err := relay(res, frames[sizeName(s)], sizeName(s), n, reps); err != nil {
					return err
				}
			}
			return nil
		}},
		{"latency", func() error {
			cases := []struct {
				mode string
				cams int
			}{{"raw", 8}, {"hub", 8}, {"raw", 32}, {"hub", 32}, {"raw", 64}, {"hub", 64}}
			if o.quick {
				cases = cases[:2]
				cases = append(cases, struct {
					mode string
					cams int
				}{"hub", 64})
			}
			for _, c := range cases {
				if err := latency(res, o, c.mode, c.cams, 30); err != nil {
					return err
				}
			}
			return nil
		}},
		{"overload", func() error { return overload(res, o) }},
		{"agent", func() error { return agentCPU(res, o) }},
		{"viewer", func() error {
			camsList := []int{4, 16}
			if o.quick {
				camsList = []int{16}
			}
			for _, cams := range camsList {
				for _, m := range []viewer.DecodeMode{viewer.DecodeScaled, viewer.DecodeOpenCV, viewer.DecodeFull} {
					var err error
					// labelled, so a -cpuprofile separates the cases (pprof -tagfocus)
					pprof.Do(context.Background(), pprof.Labels("viewer", fmt.Sprintf("%d-%d", cams, m)), func(context.Context) {
						err = viewerCPU(res, o, cams, m)
					})
					if err != nil {
						return err
					}
				}
			}
			return nil
		}},
		{"decode", func() error { return decodeCost(res, o, frames) }},
	}
	res.add(Result{Bench: "machine", Name: "load at start", Values: loadavg()})
	defer func() { res.add(Result{Bench: "machine", Name: "load at end", Values: loadavg()}) }()
	for _, p := range parts {
		if !want(p.name) {
			continue
		}
		fmt.Fprintf(os.Stderr, "camhub-bench: %s\n", p.name)
		t := time.Now()
		if err := p.run(); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		fmt.Fprintf(os.Stderr, "camhub-bench: %s done in %v\n", p.name, time.Since(t).Round(time.Second))
	}
	return nil
}

// srvProc is a hub or a bare nats-server in its own process.
type srvProc struct {
	c   *child
	url string
}

// startServer starts bin/hub (memory buffer) or camhub-bench natsd and
// waits until it takes clients (and, for the hub, has its buffer).
func startServer(o opts, mode string) (*srvProc, error) {
	port := freePort()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var c *child
	var err error
	if mode == "raw" {
		c, _, err = startChild(true, o.self, "natsd", "-listen", addr)
	} else {
		c, _, err = startChild(false, filepath.Join(o.bin, "hub"), "--listen", addr, "--monitor", "",
			"--storage", mode, "--store-dir", filepath.Join(os.TempDir(), fmt.Sprintf("camhub-bench-%d", port)), "--log-level", "warn")
	}
	if err != nil {
		return nil, err
	}
	s := &srvProc{c: c, url: "nats://" + addr}
	deadline := time.Now().Add(30 * time.Second)
	for {
		nc, err := nats.Connect(s.url)
		if err == nil {
			ok := true
			if mode != "raw" {
				js, _ := jetstream.New(nc)
				_, err = js.Stream(context.Background(), wire.FramesStream)
				ok = err == nil
			}
			nc.Close()
			if ok {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("%s did not start: %v", mode, err)
		}
		time.Sleep(50 * time.Millisecond) // polling a starting process
	}
}

func (s *srvProc) stop() {
	s.c.stop()
	if strings.Contains(strings.Join(s.c.cmd.Args, " "), "--store-dir") {
		for i, a := range s.c.cmd.Args {
			if a == "--store-dir" {
				os.RemoveAll(s.c.cmd.Args[i+1])
			}
		}
	}
}

// latency measures capture-to-viewer time (Frame-Time to the viewer's
// handler, no decode) for cams simulated cameras at fps, publishing from
// one process through a hub (or a bare nats-server) in another, to a
// viewer in this one; and the server's CPU share of the machine.
func latency(res *results, o opts, mode string, cams int, fps float64) error {
	srv, err := startServer(o, map[string]string{"raw": "raw", "hub": "memory"}[mode])
	if err != nil {
		return err
	}
	defer srv.stop()
	nc, err := nats.Connect(srv.url)
	if err != nil {
		return err
	}
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
	cpu0, _ := procCPU(srv.c.pid())
	pcpu0, _ := procCPU(pub.pid())
	t0 := time.Now()
	measuring.Store(true)
	time.Sleep(o.secs)
	measuring.Store(false)
	el := time.Since(t0)
	cpu1, _ := procCPU(srv.c.pid())
	pcpu1, _ := procCPU(pub.pid())
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
			feed, err := viewer.NewFeed(nil)
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

// agentCPU measures the agent's CPU time per frame sent, reading an MJPG
// video of the 1280x720 frames and sending them at 640x360 (the agent
// keeps the aspect ratio within --size 640x480), against a plain OpenCV
// loop doing the same read, resize and encode, and against the encode
// alone.
func agentCPU(res *results, o opts) error {
	srv, err := startServer(o, "memory")
	if err != nil {
		return err
	}
	defer srv.stop()
	nc, err := nats.Connect(srv.url)
	if err != nil {
		return err
	}
	defer nc.Close()
	var got atomic.Int64
	sub, err := nc.Subscribe(wire.FramesSubject("agentbench"), func(*nats.Msg) { got.Add(1) })
	if err != nil {
		return err
	}
	sub.SetPendingLimits(-1, -1)
	nc.Flush()
	video := filepath.Join(o.frames, "1280x720.avi")
	ag, _, err := startChild(false, filepath.Join(o.bin, "agent"), "--id", "agentbench", "--nats", srv.url,
		"--source", video, "--loop", "--size", "640x480", "--quality", "80", "--fps", "30", "--log-level", "warn")
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for got.Load() < 30 {
		if time.Now().After(deadline) {
			ag.stop()
			return errors.New("the agent sent no frames")
		}
		time.Sleep(20 * time.Millisecond) // polling a starting process
	}
	cpu0, _ := procCPU(ag.pid())
	n0 := got.Load()
	secs := 2 * o.secs
	time.Sleep(secs)
	cpu1, _ := procCPU(ag.pid())
	n1 := got.Load()
	rss := procRSS(ag.pid())
	ag.stop()
	frames := n1 - n0
	agentMs := float64(cpu1-cpu0) / 1e6 / float64(frames)

	// the same work in a plain OpenCV loop in its own process, paced the
	// same way: read, resize, encode
	bare, _, err := startChild(false, o.self, "bareloop", "-video", video, "-frames", fmt.Sprint(frames), "-fps", "30")
	if err != nil {
		return err
	}
	var b struct{ LoopMs, EncodeMs float64 }
	if err := json.Unmarshal([]byte(bare.wait()), &b); err != nil {
		return fmt.Errorf("bareloop: %w", err)
	}
	bareMs, enc := b.LoopMs, b.EncodeMs
	res.add(Result{Bench: "agent", Name: "file 1280x720 -> 640x360 q80",
		Values: map[string]float64{
			"agent_cpu_ms":       agentMs,
			"bare_loop_cpu_ms":   bareMs,
			"bare_encode_ms":     enc,
			"ratio_to_bare_loop": agentMs / bareMs,
			"frames":             float64(frames),
			"agent_rss_mib":      rss / (1 << 20),
		}})
	return nil
}

// viewerCPU measures the grid viewer's frames shown per CPU-second: cams
// simulated cameras at 30 fps (640x480) through a hub to a grid on a
// 1280x720 canvas in this process, updated and drawn as the window does.
func viewerCPU(res *results, o opts, cams int, mode viewer.DecodeMode) error {
	srv, err := startServer(o, "memory")
	if err != nil {
		return err
	}
	defer srv.stop()
	nc, err := nats.Connect(srv.url)
	if err != nil {
		return err
	}
	defer nc.Close()
	feed, err := viewer.NewFeed(nil)
	if err != nil {
		return err
	}
	defer feed.Close()
	if err := feed.Subscribe(nc); err != nil {
		return err
	}
	g := viewer.NewGrid(feed, image.Pt(1280, 720), quietLog())
	defer g.Close()
	g.SetDecodeMode(mode)
	nc.Flush()
	warm := 2 * time.Second
	if o.quick {
		warm = time.Second
	}
	pub, _, err := startChild(false, o.self, "publish", "-nats", srv.url, "-frames", filepath.Join(o.frames, "640x480"),
		"-cams", fmt.Sprint(cams), "-fps", "30", "-seconds", fmt.Sprint((warm + o.secs + time.Second).Seconds()))
	if err != nil {
		return err
	}
	defer pub.wait()
	canvas := gocv.NewMat()
	defer canvas.Close()
	decoded := func() uint64 {
		var d uint64
		for _, s := range g.Stats() {
			d += s.Decoded
		}
		return d
	}
	tick := time.NewTicker(viewer.DefaultRefresh) // the window loop's pace
	defer tick.Stop()
	start := time.Now()
	var cpu0 time.Duration
	var d0 uint64
	var scale string
	measuring := false
	var drawn time.Time
	for now := range tick.C {
		if g.Update(now) || now.Sub(drawn) >= 250*time.Millisecond {
			g.RenderChanges(&canvas, now)
			drawn = now
		}
		if !measuring && now.Sub(start) >= warm {
			measuring, cpu0, d0, start = true, selfCPU(), decoded(), now
		}
		if measuring && now.Sub(start) >= o.secs {
			break
		}
	}
	cpu := selfCPU() - cpu0
	n := decoded() - d0
	if ts := g.Tiles(time.Now()); len(ts) > 0 {
		scale = ts[0].Scale.String()
	}
	modeName := map[viewer.DecodeMode]string{viewer.DecodeScaled: "turbojpeg-scaled", viewer.DecodeOpenCV: "opencv-reduced", viewer.DecodeFull: "opencv-full"}[mode]
	res.add(Result{Bench: "viewer", Name: fmt.Sprintf("%d cams %s", cams, modeName),
		Labels: map[string]string{"mode": modeName, "cams": fmt.Sprint(cams), "scale": scale},
		Values: map[string]float64{
			"frames_per_cpu_s": float64(n) / cpu.Seconds(),
			"cpu_ms_per_frame": float64(cpu) / 1e6 / float64(n),
			"shown_per_s":      float64(n) / o.secs.Seconds(),
		}})
	return nil
}

// bareloopCmd is the agent's work without camhub: read a video with
// OpenCV, resize to fit 640x480, encode at quality 80, paced at -fps like
// the agent, for -frames frames after 30 of warm-up. It prints the CPU
// time per frame of the whole loop and of the encode alone, as JSON.
func bareloopCmd(args []string) error {
	fs := flag.NewFlagSet("bareloop", flag.ExitOnError)
	video := fs.String("video", "", "video `file`")
	n := fs.Int("frames", 300, "frames to measure")
	fps := fs.Float64("fps", 30, "pace")
	fs.Parse(args)
	runtime.LockOSThread()
	vc, err := gocv.VideoCaptureFile(*video)
	if err != nil {
		return err
	}
	defer vc.Close()
	img, small := gocv.NewMat(), gocv.NewMat()
	defer img.Close()
	defer small.Close()
	params := []int{gocv.IMWriteJpegQuality, 80}
	period := time.Duration(float64(time.Second) / *fps)
	next := time.Now()
	var c0, encode time.Duration // encode: wall time, single-threaded
	for i := -30; i < *n; i++ {
		if i == 0 {
			c0, encode = selfCPU(), 0
		}
		if d := time.Until(next); d > 0 {
			time.Sleep(d) // the pace of the frames, as the agent's
		}
		next = next.Add(period)
		if !vc.Read(&img) || img.Empty() {
			vc.Set(gocv.VideoCapturePosFrames, 0)
			i--
			continue
		}
		w, h := 640, 640*img.Rows()/img.Cols()
		gocv.Resize(img, &small, image.Pt(w, h), 0, 0, gocv.InterpolationArea)
		e0 := time.Now() // wall time: thread CPU time is counted in ticks
		buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, small, params)
		encode += time.Since(e0)
		if err != nil {
			return err
		}
		buf.Close()
	}
	loop := float64(selfCPU()-c0) / 1e6 / float64(*n)
	fmt.Printf("{\"LoopMs\":%g,\"EncodeMs\":%g}\n", loop, float64(encode)/1e6/float64(*n))
	return nil
}
