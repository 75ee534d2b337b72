package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// h264Agent runs the agent's and the codec package's H.264 benchmarks
// (compiled by bench/run.sh with go test -c into the bin directory) and
// records their metrics: CPU per frame of an RTSP H.264 camera passed
// through against decoded and re-encoded to JPEG, the bitrate on the wire
// against the camera's, H.264 encode against JPEG encode of the same
// frames, and bytes at equal SSIM on real footage.
func h264Agent(res *results, o opts) error {
	type run struct{ pkg, bench, n, count string }
	runs := []run{
		{"agent", "^BenchmarkRTSPCamera$", "300x", "1"},
		{"agent", "^BenchmarkAgent$/^testpattern(-h264)?-(640x480|1280x720)$", "200x", "3"},
	}
	if o.quick { // the RTSP camera's clip alone takes a minute to make
		runs = []run{{"agent", "^BenchmarkAgent$/^testpattern(-h264)?-1280x720$", "30x", "1"}}
	}
	for _, r := range runs {
		out, err := goTest(o, r.pkg, "-test.run", "^$", "-test.bench", r.bench, "-test.benchtime", r.n, "-test.count", r.count)
		if err != nil {
			return err
		}
		for _, b := range parseBench(out) {
			b.Labels = map[string]string{"package": r.pkg}
			res.add(b)
		}
	}
	if o.quick {
		return nil
	}
	out, err := goTest(o, "avcodec", "-test.run", "^TestQualityAgainstJPEG$", "-test.v")
	if err != nil {
		return err
	}
	m := qualityLine.FindStringSubmatch(out)
	if m == nil {
		return fmt.Errorf("TestQualityAgainstJPEG printed no result:\n%s", out)
	}
	f := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
	res.add(Result{Bench: "h264-quality", Name: "vtest 640x480", Labels: map[string]string{"preset": m[1]},
		Values: map[string]float64{"crf": f(m[2]), "h264_ssim": f(m[3]), "h264_bytes": f(m[4]), "jpeg_ssim": f(m[5]), "jpeg_bytes": f(m[6]), "ratio": f(m[7])}})
	return nil
}

// qualityLine is TestQualityAgainstJPEG's log line.
var qualityLine = regexp.MustCompile(`x264 (\w+) crf ([\d.]+): SSIM ([\d.]+), (\d+) bytes a frame; JPEG q80: SSIM ([\d.]+), (\d+) bytes a frame; ([\d.]+)x fewer bytes`)

// goTest runs the test binary bin/<pkg>.test in the package's directory
// and returns its output.
func goTest(o opts, pkg string, args ...string) (string, error) {
	bin, err := filepath.Abs(filepath.Join(o.bin, pkg+".test"))
	if err != nil {
		return "", err
	}
	dir := pkg
	if _, err := os.Stat(filepath.Join(o.src, dir)); err != nil {
		dir = filepath.Join("internal", pkg)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = filepath.Join(o.src, dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", bin, strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// parseBench reads the result lines of go test -bench output: the name,
// the iterations, then value-unit pairs.
func parseBench(out string) []Result {
	var rs []Result
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 { // the GOMAXPROCS suffix
			name = name[:i]
		}
		v := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			x, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			v[f[i+1]] = x
		}
		rs = append(rs, Result{Bench: "gobench", Name: name, Values: v})
	}
	return rs
}
