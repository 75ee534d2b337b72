package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"camhub/viewer"
)

// opts are the run's settings.
type opts struct {
	frames string // frames directory (camhub-bench frames)
	bin    string // directory with hub and agent binaries, and the test binaries bin/<package>.test
	src    string // the repository, where the test binaries run
	self   string // this program
	quick  bool
	secs   time.Duration // measuring time of timed parts
	cams   []int         // camera counts of the h264hub scan; nil: its own
}

func runCmd(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	var o opts
	fs.StringVar(&o.frames, "frames", "bench/out/frames", "frames `directory` (camhub-bench frames)")
	fs.StringVar(&o.bin, "bin", "bin", "`directory` holding the hub and agent binaries and the test binaries agent.test and avcodec.test")
	fs.StringVar(&o.src, "src", ".", "the repository's `directory`: the test binaries run in their package's")
	out := fs.String("out", "bench/out/results.jsonl", "append results to this `file`")
	fs.BoolVar(&o.quick, "quick", false, "shorter runs (make bench-quick)")
	only := fs.String("only", "", "run only these parts (comma-separated: relay,latency,overload,agent,viewer,decode,h264hub,h264agent)")
	cams := fs.String("h264-cams", "", "camera counts of the h264hub part, comma-separated (default: 16 up to 512, quick 16)")
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
	for _, c := range strings.FieldsFunc(*cams, func(r rune) bool { return r == ',' }) {
		n, err := strconv.Atoi(c)
		if err != nil || n < 1 {
			return fmt.Errorf("-h264-cams: %q is not a camera count", c)
		}
		o.cams = append(o.cams, n)
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
		{"h264hub", func() error { return h264Hub(res, o) }},
		{"h264agent", func() error { return h264Agent(res, o) }},
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
