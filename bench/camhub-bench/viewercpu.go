package main

import (
	"fmt"
	"image"
	"path/filepath"
	"time"

	"gocv.io/x/gocv"

	"camhub/viewer"
)

// viewerCPU measures the grid viewer's frames shown per CPU-second: cams
// simulated cameras at 30 fps (640x480) through a hub to a grid on a
// 1280x720 canvas in this process, updated and drawn as the window does.
func viewerCPU(res *results, o opts, cams int, mode viewer.DecodeMode) error {
	srv, nc, err := startServerConn(o, "memory")
	if err != nil {
		return err
	}
	defer srv.stop()
	defer nc.Close()
	feed, err := viewer.NewFeed(publishedIDs(cams))
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
