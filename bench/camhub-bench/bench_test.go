package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The benchmark's parts run end to end on a few frames and the report
// reads what they wrote: the harness cannot rot between benchmark runs.
// The measurements themselves are not judged here; make bench does that.
func TestHarness(t *testing.T) {
	dir := t.TempDir()
	frames := filepath.Join(dir, "frames")
	if err := framesCmd([]string{"-out", frames, "-n", "4"}); err != nil {
		t.Fatal(err)
	}
	for _, s := range sizes {
		fr, err := loadFrames(filepath.Join(frames, sizeName(s)))
		if err != nil || len(fr) != 4 {
			t.Fatalf("%s: %d frames, %v", sizeName(s), len(fr), err)
		}
		w, h, err := jpegSize(fr[0])
		if err != nil || w != s.X || h != s.Y {
			t.Fatalf("%s: a %dx%d frame, %v", sizeName(s), w, h, err)
		}
	}
	if _, err := os.Stat(filepath.Join(frames, "1280x720.avi")); err != nil {
		t.Fatal(err)
	}
	if err := footageCmd([]string{"-out", frames, "-n", "20"}); err != nil {
		t.Fatal(err)
	}
	video, err := loadVideo(filepath.Join(frames, footageH264))
	if err != nil || len(video) != 20 || !video[0].key || !video[15].key || video[1].key || video[0].codec == "" {
		t.Fatalf("footage: %d access units, want 20 with keyframes at 0 and 15; %v", len(video), err)
	}
	if n := keyInterval(video); n != 15 {
		t.Fatalf("keyframe interval %d, want 15", n)
	}

	var out bytes.Buffer
	res := &results{w: &out}
	fr, _ := loadFrames(filepath.Join(frames, "640x480"))
	for _, mode := range relayModes {
		r, err := relayOnce(mode, 2, 2, fr, 40)
		if err != nil {
			t.Fatalf("relay %s: %v", mode, err)
		}
		if r.Values["frames_per_s"] <= 0 {
			t.Fatalf("relay %s: %v", mode, r.Values)
		}
		r.Name = mode + " 1->1 640x480"
		r.Labels = map[string]string{"mode": mode, "topology": "1->1", "size": "640x480"}
		res.add(r)
	}
	if err := decodeCost(res, opts{frames: frames, quick: true}, map[string][][]byte{
		"640x480": fr, "1280x720": must(loadFrames(filepath.Join(frames, "1280x720"))),
	}); err != nil {
		t.Fatal(err)
	}

	for _, r := range parseBench(benchOutput) {
		res.add(r)
	}
	res.add(Result{Bench: "h264-rewind", Name: "16 cams", Values: map[string]float64{"h264_bytes_per_frame": 14000, "jpeg_bytes_per_frame": 120000,
		"h264_minutes_per_gib": 5.3, "jpeg_minutes_per_gib": 0.62, "ratio": 8.6}})
	for _, r := range []struct {
		storage, placement, keyframes string
		cams                          int
		p99                           float64
	}{
		{"file", pinned, "spread", 128, 1.2}, {"file", pinned, "spread", 256, 1.9}, {"file", pinned, "spread", 384, 2.5}, {"file", pinned, "spread", 512, 1.8},
		{"file", pinned, "aligned", 256, 5}, {"file", shared, "spread", 256, 1.5}, {"raw", shared, "spread", 256, 2.4},
	} {
		offered := float64(r.cams * footageFPS)
		res.add(Result{Bench: "h264-latency", Name: "case",
			Labels: map[string]string{"storage": r.storage, "cams": fmt.Sprint(r.cams), "keyframes": r.keyframes, "placement": r.placement},
			Values: map[string]float64{"p99_ms": r.p99, "frames_per_s": offered, "offered_per_s": offered}})
	}

	in := filepath.Join(dir, "results.jsonl")
	if err := os.WriteFile(in, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	md := filepath.Join(dir, "BENCHMARKS.md")
	if err := reportCmd([]string{"-in", in, "-zmq", filepath.Join(dir, "none.jsonl"), "-out", md}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Targets", "hub relay, memory buffer, 1->1 640x480", "| 1 → 1 | 640x480 |", "| 640x480 | 1/2 |",
		"| RTSP camera passed through (`--codec h264`) | 0.62 | 2.023 Mbit/s on the wire, camera 2.007 |", "8.6×", "1280x720: ≤ 1.5× | 1.30–1.40×",
		// the count is the pinned hub's with spread keyframes, not the
		// shared one's, and a pass above a miss does not count
		"p99 ≤ 2 ms: ≥ 256 | 256 (of up to 512 tried; hub 1 CPU)", "| hub | hub 1 CPU | aligned | 256 × 15 |", "| bare nats-server | shared | spread | 256 × 15 |"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the report lacks %q:\n%s", want, b)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// benchOutput is go test -bench output as the agent's benchmarks print it.
const benchOutput = `goos: linux
BenchmarkRTSPCamera/h264-2         	     300	  66704870 ns/op	         2.007 camera-Mbit/s	         0.6175 cpu-ms/frame	         2.023 wire-Mbit/s
BenchmarkAgent/testpattern-1280x720-2 	 200	 8500000 ns/op	 90840 B/frame	 8.0 cpu-ms/frame	 117.6 frames/s
BenchmarkAgent/testpattern-1280x720-2 	 200	 8500000 ns/op	 90840 B/frame	 7.0 cpu-ms/frame	 117.6 frames/s
BenchmarkAgent/testpattern-h264-1280x720-2 	 200	 8500000 ns/op	 2900 B/frame	 10.4 cpu-ms/frame	 117.6 frames/s
BenchmarkAgent/testpattern-h264-1280x720-2 	 200	 8500000 ns/op	 2900 B/frame	 9.8 cpu-ms/frame	 117.6 frames/s
PASS
`

func TestParseBench(t *testing.T) {
	rs := parseBench(benchOutput)
	if len(rs) != 5 || rs[0].Name != "BenchmarkRTSPCamera/h264" || rs[0].Values["cpu-ms/frame"] != 0.6175 ||
		rs[0].Values["wire-Mbit/s"] != 2.023 || rs[1].Name != "BenchmarkAgent/testpattern-1280x720" {
		t.Fatalf("%+v", rs)
	}
	m := qualityLine.FindStringSubmatch("    avcodec_test.go:651: x264 superfast crf 26.7: SSIM 0.9763, 8294 bytes a frame; JPEG q80: SSIM 0.9761, 52766 bytes a frame; 6.4x fewer bytes")
	if m == nil || m[1] != "superfast" || m[2] != "26.7" || m[7] != "6.4" {
		t.Fatalf("quality line: %q", m)
	}
}

func TestKeepSections(t *testing.T) {
	report := "# camhub benchmarks\n\n## 1. Relay\n\nnew\n\n## Commands\n\nmake bench\n"
	old := "# camhub benchmarks\n\n## 1. Relay\n\nold\n\n## 9. Quality tiers\n\nby hand\n\n## Commands\n\nold commands\n"
	want := "# camhub benchmarks\n\n## 1. Relay\n\nnew\n\n## 9. Quality tiers\n\nby hand\n\n## Commands\n\nmake bench\n"
	if got := keepSections(report, old); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	// in order of their numbers, the unnumbered before Commands
	report = "# camhub benchmarks\n\n## 1. Relay\n\nnew\n\n## 10. The web page\n\npage\n\n## Commands\n\nmake bench\n"
	old = "# camhub benchmarks\n\n## Notes\n\nnotes\n\n## 9. Quality tiers\n\nby hand\n\n## 10. The web page\n\nold page\n"
	want = "# camhub benchmarks\n\n## 1. Relay\n\nnew\n\n## 9. Quality tiers\n\nby hand\n\n## 10. The web page\n\npage\n\n## Notes\n\nnotes\n\n## Commands\n\nmake bench\n"
	if got := keepSections(report, old); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if got := keepSections(report, report); got != report {
		t.Fatalf("a report of its own sections changed:\n%s", got)
	}
}

// pinSelf moves every thread of the process, and restores them.
func TestPinSelf(t *testing.T) {
	cpu, rest, ok := cpuSplit()
	if !ok {
		t.Skip("one CPU: nothing to pin")
	}
	var before unix.CPUSet
	if err := unix.SchedGetaffinity(0, &before); err != nil {
		t.Fatal(err)
	}
	if n, _ := strconv.Atoi(cpu); !before.IsSet(n) || rest.IsSet(n) || rest.Count() != before.Count()-1 {
		t.Fatalf("split %s / %v of %v", cpu, rest, before)
	}
	restore, err := pinSelf(rest)
	if err != nil {
		t.Fatal(err)
	}
	tids, _ := os.ReadDir("/proc/self/task")
	for _, d := range tids {
		tid, _ := strconv.Atoi(d.Name())
		var got unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &got); err == nil && got != rest {
			t.Errorf("thread %d on %v, want %v", tid, got, rest)
		}
	}
	restore()
	var after unix.CPUSet
	if err := unix.SchedGetaffinity(0, &after); err != nil || after != before {
		t.Fatalf("restored to %v, want %v (%v)", after, before, err)
	}
}
