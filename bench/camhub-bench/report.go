package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// zmqRun is the part of a ZeroMQ baseline result (bench/zmq/run.py) the
// report reads.
type zmqRun struct {
	Cams     int     `json:"cams"`
	FPS      float64 `json:"fps_per_cam"`
	Sent     float64 `json:"sent_total"`
	Receiver struct {
		Frames    float64 `json:"frames"`
		FPS       float64 `json:"fps"`
		MBps      float64 `json:"jpeg_MBps"`
		Decode    bool    `json:"decode"`
		LatencyMs struct {
			P50 float64 `json:"p50"`
			P99 float64 `json:"p99"`
			Max float64 `json:"max"`
		} `json:"latency_ms"`
		First struct {
			Max float64 `json:"max"`
		} `json:"latency_first_1s_ms"`
		Last struct {
			Max float64 `json:"max"`
		} `json:"latency_last_1s_ms"`
		Backlog float64 `json:"backlog_frames_at_window_end"`
		Gaps    float64 `json:"seq_gaps"`
	} `json:"receiver"`
}

type zmqResult struct {
	Scenario string   `json:"scenario"`
	Runs     []zmqRun `json:"runs"`
}

// reportCmd writes docs/BENCHMARKS.md from a run's JSON lines.
func reportCmd(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	in := fs.String("in", "bench/out/results.jsonl", "camhub-bench run results")
	zin := fs.String("zmq", "bench/out/zmq.jsonl", "ZeroMQ baseline results (bench/zmq/run.py)")
	out := fs.String("out", "docs/BENCHMARKS.md", "the report")
	chart := fs.String("chart", "benchmarks.png", "the chart's file name, relative to the report")
	command := fs.String("command", "make bench", "the command that made the results")
	page := fs.String("page", "bench/out/page.md", "the web page's tables (web/pagebench_test.go), if any")
	fs.Parse(args)

	rs, err := readResults(*in)
	if err != nil {
		return err
	}
	var zs []zmqResult
	if f, err := os.Open(*zin); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			var z zmqResult
			if json.Unmarshal(sc.Bytes(), &z) == nil {
				zs = append(zs, z)
			}
		}
		f.Close()
	}
	get := func(bench, name string) (Result, bool) {
		for _, r := range rs {
			if r.Bench == bench && r.Name == name {
				return r, true
			}
		}
		return Result{}, false
	}
	zget := func(scenario string) []zmqRun {
		for _, z := range zs {
			if z.Scenario == scenario {
				return z.Runs
			}
		}
		return nil
	}

	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	when := time.Now().UTC()
	if len(rs) > 0 {
		when = rs[0].Time
	}
	p("# camhub benchmarks\n\n")
	p("Made by `%s` on %s. Every number below comes from that one run; ratios compare numbers of the same run.\n", *command, when.Format("2006-01-02 15:04 MST"))
	p("Re-run it with `make bench` (about 15 minutes; `make bench-quick` takes under two and writes to bench/out/ only).\n\n")
	p("**Machine:** %s", machine())
	if r, ok := get("machine", "load at start"); ok {
		p("; load average at the start %.2f", r.Values["load1"])
		if e, ok := get("machine", "load at end"); ok {
			p(", at the end %.2f", e.Values["load1"])
		}
	}
	p("\n\n")
	p("**Frames:** ")
	for _, s := range sizes {
		if r, ok := get("frames", sizeName(s)); ok {
			p("%.0f distinct JPEGs at %s (mean %.1f KiB), ", r.Values["count"], sizeName(s), r.Values["mean_bytes"]/1024)
		}
	}
	p("quality 80, encoded by OpenCV from a moving Mandelbrot zoom rendered by ffmpeg (`camhub-bench frames`): rich detail that changes every frame, so sizes are those of a busy camera picture.\n\n")
	p("![latency and throughput](%s)\n\n", *chart)

	// targets first: what the reader wants to know
	p("## Targets\n\n| target | measured | met |\n|---|---|---|\n")
	target := func(what, measured string, ok bool) {
		m := "yes"
		if !ok {
			m = "**no**"
		}
		p("| %s | %s | %s |\n", what, measured, m)
	}
	for _, s := range sizes {
		for _, topo := range relayTopologies {
			t := fmt.Sprintf("%d->%d %s", topo.pubs, topo.subs, sizeName(s))
			raw, ok1 := get("relay", "raw "+t)
			mem, ok2 := get("relay", "memory "+t)
			if ok1 && ok2 {
				r := mem.Values["frames_per_s"] / raw.Values["frames_per_s"]
				target(fmt.Sprintf("hub relay, memory buffer, %s ≥ 0.8× raw NATS", t),
					fmt.Sprintf("%.0f vs %.0f frames/s: %.2f×", mem.Values["frames_per_s"], raw.Values["frames_per_s"], r), r >= 0.8)
			}
		}
	}
	if r, ok := get("latency", "hub 64x30fps"); ok {
		target("64 cameras × 30 fps 640x480 through one hub: p99 ≤ 2 ms (no decode)",
			fmt.Sprintf("p99 %.2f ms (p50 %.2f, max %.1f), %.0f of %.0f frames/s", r.Values["p99_ms"], r.Values["p50_ms"], r.Values["max_ms"], r.Values["frames_per_s"], r.Values["offered_per_s"]), r.Values["p99_ms"] <= 2)
		target("… with the hub using ≤ 30 % of the machine", fmt.Sprintf("%.1f %% of %d cores", r.Values["server_cpu_pct"], int(r.Values["machine_cpus"])), r.Values["server_cpu_pct"] <= 30)
	}
	if h, ok := get("latency", "hub 8x30fps"); ok {
		if raw, ok := get("latency", "raw 8x30fps"); ok {
			d := h.Values["p99_ms"] - raw.Values["p99_ms"]
			target("latency added beyond raw NATS ≤ 1 ms p99 at 8 × 30 fps", fmt.Sprintf("%+.2f ms (hub %.2f, raw %.2f)", d, h.Values["p99_ms"], raw.Values["p99_ms"]), d <= 1)
		}
	}
	for _, r := range rs {
		if r.Bench == "agent" {
			target("agent CPU per frame ≤ 1.10× the bare OpenCV loop", fmt.Sprintf("%.2f vs %.2f ms: %.2f×", r.Values["agent_cpu_ms"], r.Values["bare_loop_cpu_ms"], r.Values["ratio_to_bare_loop"]), r.Values["ratio_to_bare_loop"] <= 1.10)
		}
	}
	for _, cams := range []int{4, 16} {
		s, ok1 := get("viewer", fmt.Sprintf("%d cams turbojpeg-scaled", cams))
		f, ok2 := get("viewer", fmt.Sprintf("%d cams opencv-full", cams))
		if ok1 && ok2 {
			r := s.Values["frames_per_cpu_s"] / f.Values["frames_per_cpu_s"]
			target(fmt.Sprintf("grid viewer, %d cameras: ≥ 3× the frames per CPU-second of full-size decoding", cams),
				fmt.Sprintf("%.0f vs %.0f: %.2f×", s.Values["frames_per_cpu_s"], f.Values["frames_per_cpu_s"], r), r >= 3)
		}
	}
	for _, r := range rs {
		if r.Bench == "decode" && r.Values["tjbench_ms"] > 0 && r.Labels["scale"] != "1/1" {
			target(fmt.Sprintf("viewer decode within 1.5× of tjbench, %s", r.Name),
				fmt.Sprintf("%.3f vs %.3f ms: %.2f×", r.Values["turbojpeg_ms"], r.Values["tjbench_ms"], r.Values["ratio_to_tjbench"]), r.Values["ratio_to_tjbench"] <= 1.5)
		}
	}
	g, ok1 := get("overload", "camhub-grid")
	fifo, ok2 := get("overload", "fifo")
	if ok1 && ok2 {
		zo := zget("overload")
		zs := ""
		if len(zo) > 0 {
			zs = fmt.Sprintf("; ZeroMQ baseline %.0f → %.0f ms", zo[0].Receiver.First.Max, zo[0].Receiver.Last.Max)
		}
		target("bounded latency under overload, where a FIFO's grows",
			fmt.Sprintf("grid max %.0f ms first 2 s, %.0f ms last 2 s; FIFO %.0f → %.0f ms%s", g.Values["first_2s_max_ms"], g.Values["last_2s_max_ms"], fifo.Values["first_2s_max_ms"], fifo.Values["last_2s_max_ms"], zs),
			g.Values["last_2s_max_ms"] < 2*g.Values["first_2s_max_ms"]+50)
	}

	h264Report(rs, p, target, false)

	p("\n## 1. Relay throughput\n\n")
	p("Publishers send pre-encoded frames as fast as a window of 32 frames in flight per subscriber lets them, all in one process with the server, over loopback TCP; frames/s is what all subscribers received. **raw**: a bare nats-server, `Publish` without headers, a counting subscriber — no camhub code, the ceiling. **off / memory / file**: the camhub hub (`hub.Start`) with the `CAMS` buffer deleted, in memory, or on file; frames carry camhub's headers and the subscriber parses them and keeps the newest per camera, as a viewer's feed does. Median of the runs, modes taking turns.\n\n")
	p("| topology | size | raw frames/s (MB/s) | off | memory | file | memory / raw |\n|---|---|---|---|---|---|---|\n")
	for _, s := range sizes {
		for _, topo := range relayTopologies {
			t := fmt.Sprintf("%d->%d", topo.pubs, topo.subs)
			row := fmt.Sprintf("| %d → %d | %s ", topo.pubs, topo.subs, sizeName(s))
			var raw, mem float64
			for _, m := range relayModes {
				r, ok := get("relay", fmt.Sprintf("%s %s %s", m, t, sizeName(s)))
				if !ok {
					row += "| – "
					continue
				}
				row += fmt.Sprintf("| %.0f (%.0f) ", r.Values["frames_per_s"], r.Values["mb_per_s"])
				switch m {
				case "raw":
					raw = r.Values["frames_per_s"]
				case "memory":
					mem = r.Values["frames_per_s"]
				}
			}
			if raw > 0 {
				row += fmt.Sprintf("| %.2f× |", mem/raw)
			}
			p("%s\n", row)
		}
	}
	p("\nWith the buffer **off** the hub relays within about 10 %% of a bare nats-server: on the path of a live frame camhub adds only its headers (about 200 bytes) and the subscriber parsing them. With the buffer **on**, nats-server's JetStream copies each frame into the stream's inbound queue, then into its store, allocating for both, on one more goroutine — on two cores shared by publishers, server and subscribers that is the whole difference, and it grows with the frame size. camhub cannot remove it short of not buffering; what it controls is that the buffer is bounded (MaxAge and MaxBytes, discard old), and fan-out (1 → 8) hides it, because a frame is stored once and delivered eight times.\n")
	if zr := zget("relay"); len(zr) > 0 {
		p("\nZeroMQ baseline, same 640x480 frames, unpaced senders, receiver not decoding: ")
		for _, z := range zr {
			p("%d → 1: %.0f frames/s (%.0f MB/s), latency p99 %.0f ms, %.0f frames queued at the end; ", z.Cams, z.Receiver.FPS, z.Receiver.MBps, z.Receiver.LatencyMs.P99, z.Receiver.Backlog)
		}
		p("\n")
	}

	p("\n## 2. Latency, capture to viewer\n\n")
	p("Simulated cameras (`camhub-bench publish`: one connection each, camhub headers, Frame-Time taken at publishing) in one process, the server in another (`bin/hub`, memory buffer; or a bare nats-server), the viewer in a third; latency is the viewer's handler time minus Frame-Time, no decode. Server CPU is its process's share of the whole machine over the measuring window.\n\n")
	p("| server | cameras × fps | frames/s received | p50 ms | p99 ms | max ms | server CPU (%% of machine) | server RSS MiB |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		if r.Bench == "latency" {
			p("| %s | %s × 30 | %.0f | %.2f | %.2f | %.1f | %.1f | %.0f |\n", r.Labels["mode"], r.Labels["cams"], r.Values["frames_per_s"], r.Values["p50_ms"], r.Values["p99_ms"], r.Values["max_ms"], r.Values["server_cpu_pct"], r.Values["server_rss_mib"])
		}
	}
	if zl := zget("latency"); len(zl) > 0 {
		z := zl[0]
		p("| ZeroMQ baseline (decoding) | %d × %.0f | %.0f | %.2f | %.2f | %.1f | – | – |\n", z.Cams, z.FPS, z.Receiver.FPS, z.Receiver.LatencyMs.P50, z.Receiver.LatencyMs.P99, z.Receiver.LatencyMs.Max)
	}

	p("\n## 3. Overload\n\n")
	p("8 cameras × 30 fps at 1280x720 (240 frames/s offered) to a viewer that decodes at full size with OpenCV, which manages fewer. **camhub-grid**: the real `viewer.Grid` (newest frame wins per tile). **fifo**: a subscription feeding an unbounded queue decoded in order, as a plain pipeline does. **ZeroMQ baseline**: the same frames and rate, Python receiver decoding in order.\n\n")
	p("| viewer | shown/s | p50 ms | p99 ms | max ms | max latency, first 2 s → last 2 s | backlog at the end |\n|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		if r.Bench == "overload" {
			p("| %s | %.0f | %.0f | %.0f | %.0f | %.0f → %.0f ms | %.0f frames |\n", r.Name, r.Values["shown_per_s"], r.Values["p50_ms"], r.Values["p99_ms"], r.Values["max_ms"], r.Values["first_2s_max_ms"], r.Values["last_2s_max_ms"], r.Values["backlog_frames"])
		}
	}
	if zo := zget("overload"); len(zo) > 0 {
		z := zo[0]
		p("| ZeroMQ baseline | %.0f | %.0f | %.0f | %.0f | %.0f → %.0f ms (first/last 1 s) | %.0f frames |\n", z.Receiver.FPS, z.Receiver.LatencyMs.P50, z.Receiver.LatencyMs.P99, z.Receiver.LatencyMs.Max, z.Receiver.First.Max, z.Receiver.Last.Max, z.Receiver.Backlog)
	}

	p("\n## 4. Agent CPU per frame\n\n")
	p("`bin/agent --source 1280x720.avi --loop --size 640x480 --quality 80 --fps 30` (an MJPG file of the frames; the agent reads, scales to 640x360, encodes and publishes to a hub), CPU time of its process per frame sent, against `camhub-bench bareloop`: the same read, resize and encode in a plain OpenCV loop in its own process, paced alike, no NATS. Reading the file (FFmpeg's MJPEG decode) is most of both.\n\n")
	p("| agent ms/frame | bare loop ms/frame | ratio | OpenCV encode alone ms | agent RSS MiB |\n|---|---|---|---|---|\n")
	for _, r := range rs {
		if r.Bench == "agent" {
			p("| %.2f | %.2f | %.2f× | %.2f | %.0f |\n", r.Values["agent_cpu_ms"], r.Values["bare_loop_cpu_ms"], r.Values["ratio_to_bare_loop"], r.Values["bare_encode_ms"], r.Values["agent_rss_mib"])
		}
	}

	p("\n## 5. Grid viewer\n\n")
	p("Cameras × 30 fps at 640x480 through a hub to the real `viewer.Grid` on a 1280x720 canvas, updated and drawn every 20 ms as the window does (no window: drawing to the canvas is measured, showing it is not). Frames shown per CPU-second of the viewer's process, by decode mode: **turbojpeg-scaled** (the default: TurboJPEG at 1/1, 1/2, 1/4 or 1/8, the smallest that covers the tile), **opencv-reduced** (OpenCV's imdecode with IMREAD_REDUCED_*), **opencv-full** (full size, then shrink).\n\n")
	p("| cameras | mode | decoded at | frames shown/s | frames per CPU-second | CPU ms/frame |\n|---|---|---|---|---|---|\n")
	for _, r := range rs {
		if r.Bench == "viewer" {
			p("| %s | %s | %s | %.0f | %.0f | %.2f |\n", r.Labels["cams"], r.Labels["mode"], r.Labels["scale"], r.Values["shown_per_s"], r.Values["frames_per_cpu_s"], r.Values["cpu_ms_per_frame"])
		}
	}

	p("\n## 6. Decode cost\n\n")
	p("Wall time per frame on ten of the frames, one thread: camhub's TurboJPEG decoder (fast DCT and upsampling, as the grid uses it), OpenCV's imdecode, and libjpeg-turbo's own `tjbench -scale M/N -fastdct -fastupsample` on the same files (Debian's libjpeg-turbo-progs), the reference.\n\n")
	p("| frame | scale | camhub (TurboJPEG) ms | tjbench ms | ratio | OpenCV imdecode ms |\n|---|---|---|---|---|---|\n")
	for _, r := range rs {
		if r.Bench == "decode" {
			cv := "–"
			if v, ok := r.Values["opencv_ms"]; ok {
				cv = fmt.Sprintf("%.3f", v)
			}
			p("| %s | %s | %.3f | %.3f | %.2f× | %s |\n", r.Labels["size"], r.Labels["scale"], r.Values["turbojpeg_ms"], r.Values["tjbench_ms"], r.Values["ratio_to_tjbench"], cv)
		}
	}

	p("\n## 7. The ZeroMQ baseline\n\n")
	p("bench/zmq/: cameras send base64 JPEGs on ZeroMQ PUB sockets, a Python receiver SUBscribes, decodes base64 and (unless stated) the JPEG with OpenCV, in order (Debian's python3-zmq, python3-opencv). Its numbers are in the tables above beside camhub's; see bench/zmq/README.md for what was added only to measure it.\n\n")

	h264Report(rs, p, target, true)

	if b, err := os.ReadFile(*page); err == nil {
		p("## 10. The web page\n\nMeasured by `go test` (web/pagebench_test.go, real headless Chromium) in this run.\n\n%s", b)
	}

	p("## Commands\n\n```\nmake bench            # bench/run.sh: all of the above, this file and its chart\nmake bench-quick      # the same, shorter, into bench/out/\n")
	p("bin/camhub-bench run -only relay -frames bench/out/frames -bin bin   # one part\n")
	p("go test -run '^$' -bench . ./internal/turbojpeg/ ./agent/ ./web/    # Go benchmarks of the hot paths (benchstat-comparable)\n")
	p("go test -run '^$' -bench . -benchtime 300x ./internal/avcodec/          # H.264 encode/decode vs TurboJPEG (BENCHMARKS-H264.md)\n")
	p("go test -run '^$' -bench LoTier -benchtime 300x ./agent/                # the small tier's cost per frame, JPEG and H.264 (section 9)\n")
	p("go test -run TestPageTierBytes -v ./web/                                # bytes/s to the page, 16 cameras, tiers on vs off\n")
	p("go test -run TestPageH264TierBytes -v ./web/                            # the same, 16 H.264 cameras with an H.264 small tier\n")
	p("CAMHUB_PAGE_BENCH=2m go test -run '^(TestPageAge|TestPageCPU)$' -v ./web/   # the web page (section 10): age by player, Chromium CPU per frame\n")
	p("CAMHUB_PAGE_BENCH=10m CAMHUB_PAGE_BENCH_OUT=page.md go test -run '^TestPageAge$' -timeout 30m ./web/   # the page's age over 10 minutes (section 10)\n")
	p("bin/camhub-bench run -only h264hub,h264agent -frames bench/out/frames -bin bin   # section 8 alone\n")
	p("bin/camhub-bench forward                   # the floor under a passed-through frame: Go forwarding 15 bursts/s between TCP connections\n```\n")

	report := b.String()
	if old, err := os.ReadFile(*out); err == nil {
		report = keepSections(report, string(old))
	}
	if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", *out)
	return nil
}

func readResults(path string) ([]Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rs []Result
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var r Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		rs = append(rs, r)
	}
	return rs, sc.Err()
}

// machine describes this machine in one line.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				model = strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
				break
			}
		}
	}
	var mem string
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %f kB", &kb)
		mem = fmt.Sprintf("%.0f GiB", kb/(1<<20))
	}
	cmd := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).Output()
		if err != nil {
			return "?"
		}
		return strings.TrimSpace(string(out))
	}
	return fmt.Sprintf("%s, %d cores, %s RAM; Linux %s; %s; OpenCV %s; libjpeg-turbo %s", model, runtime.NumCPU(), mem,
		cmd("uname", "-r"), runtime.Version(), cmd("pkg-config", "--modversion", "opencv4"), cmd("pkg-config", "--modversion", "libturbojpeg"))
}

// keepSections puts the "## " sections of old that report does not write
// (written by hand from other benchmarks) into report: a numbered one
// ("## 9. …") before the first numbered section of report with a greater
// number, the others (and any with none greater) before its Commands
// section, in their order.
func keepSections(report, old string) string {
	sections := func(doc string) []string {
		var out []string
		for i, part := range strings.Split("\n"+doc, "\n## ") {
			if i > 0 {
				out = append(out, "## "+part)
			}
		}
		return out
	}
	heading := func(sec string) string { h, _, _ := strings.Cut(sec, "\n"); return h }
	number := func(sec string) int {
		n, _, _ := strings.Cut(strings.TrimPrefix(heading(sec), "## "), ".")
		v, err := strconv.Atoi(n)
		if err != nil {
			return -1
		}
		return v
	}
	written := sections(report)
	isWritten := map[string]bool{}
	for _, sec := range written {
		isWritten[heading(sec)] = true
	}
	before := map[string][]string{} // heading of a written section -> kept sections to put before it
	for _, sec := range sections(old) {
		if isWritten[heading(sec)] {
			continue
		}
		at := "## Commands"
		if n := number(sec); n >= 0 {
			for _, w := range written {
				if number(w) > n {
					at = heading(w)
					break
				}
			}
		}
		before[at] = append(before[at], strings.TrimRight(sec, "\n")+"\n\n")
	}
	if len(before) == 0 || !isWritten["## Commands"] {
		return report
	}
	var b strings.Builder
	b.WriteString(report[:strings.Index(report, "## ")])
	for i, sec := range written {
		for _, k := range before[heading(sec)] {
			b.WriteString(k)
		}
		b.WriteString(sec)
		if i < len(written)-1 {
			b.WriteString("\n") // the one sections() split off
		}
	}
	return b.String()
}
