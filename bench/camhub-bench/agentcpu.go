package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"gocv.io/x/gocv"

	"camhub/internal/proc"
	"camhub/internal/wire"
)

// agentCPU measures the agent's CPU time per frame sent, reading an MJPG
// video of the 1280x720 frames and sending them at 640x360 (the agent
// keeps the aspect ratio within --size 640x480), against a plain OpenCV
// loop doing the same read, resize and encode, and against the encode
// alone.
func agentCPU(res *results, o opts) error {
	srv, nc, err := startServerConn(o, "memory")
	if err != nil {
		return err
	}
	defer srv.stop()
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
	cpu0, _ := proc.CPU(ag.pid())
	n0 := got.Load()
	secs := 2 * o.secs
	time.Sleep(secs)
	cpu1, _ := proc.CPU(ag.pid())
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
