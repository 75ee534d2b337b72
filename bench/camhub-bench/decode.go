package main

import (
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"time"

	"gocv.io/x/gocv"

	"camhub/internal/turbojpeg"
)

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

var tjFPS = regexp.MustCompile(`Decompress\s+-->\s+Frame rate:\s+([0-9.]+)\s+fps`)

// decodeCost measures the time to decode one frame at 1/1, 1/2 and 1/4
// scale: with camhub's TurboJPEG decoder (the grid's, fast DCT and
// upsampling), with OpenCV's imdecode (1/1 and 1/2 only), and with
// libjpeg-turbo's own tjbench on the same files and flags, the reference.
func decodeCost(res *results, o opts, frames map[string][][]byte) error {
	tjbench, tjErr := exec.LookPath("tjbench")
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, size := range sizes {
		name := sizeName(size)
		// every 10th frame: tjbench times each file by itself, so all
		// three decode the same ten files
		var fr [][]byte
		var files []string
		step := 10
		if o.quick {
			step = 25
		}
		for i := 0; i < len(frames[name]); i += step {
			fr = append(fr, frames[name][i])
			files = append(files, filepath.Join(o.frames, name, fmt.Sprintf("%03d.jpg", i)))
		}
		for _, s := range []turbojpeg.Scale{{Num: 1, Denom: 1}, {Num: 1, Denom: 2}, {Num: 1, Denom: 4}} {
			dec, err := turbojpeg.NewDecoder(true)
			if err != nil {
				return err
			}
			dst := gocv.NewMat()
			rounds := 30
			if o.quick {
				rounds = 10
			}
			for _, f := range fr { // warm up, as tjbench does
				if err := dec.DecodeAt(f, s, &dst); err != nil {
					return err
				}
			}
			// wall time, as tjbench measures
			t0 := time.Now()
			for range rounds {
				for _, f := range fr {
					if err := dec.DecodeAt(f, s, &dst); err != nil {
						return err
					}
				}
			}
			ours := float64(time.Since(t0)) / 1e6 / float64(rounds*len(fr))
			dst.Close()
			dec.Close()
			v := map[string]float64{"turbojpeg_ms": ours}

			flag, ok := map[turbojpeg.Scale]gocv.IMReadFlag{{Num: 1, Denom: 1}: gocv.IMReadColor, {Num: 1, Denom: 2}: gocv.IMReadReducedColor2, {Num: 1, Denom: 4}: gocv.IMReadReducedColor4}[s]
			if ok {
				t0 := time.Now()
				for range rounds {
					for _, f := range fr {
						m, err := gocv.IMDecode(f, flag)
						if err != nil {
							return err
						}
						m.Close()
					}
				}
				v["opencv_ms"] = float64(time.Since(t0)) / 1e6 / float64(rounds*len(fr))
			}
			if tjErr == nil {
				var sum float64
				var k int
				for _, file := range files {
					bt := "0.3"
					if o.quick {
						bt = "0.1"
					}
					out, err := exec.Command(tjbench, file, "-scale", s.String(), "-fastdct", "-fastupsample",
						"-benchtime", bt, "-warmup", "0.1").CombinedOutput()
					if err != nil {
						return fmt.Errorf("tjbench: %v: %s", err, out)
					}
					m := tjFPS.FindSubmatch(out)
					if m == nil {
						return fmt.Errorf("tjbench: no decompression frame rate in: %s", out)
					}
					fps, _ := strconv.ParseFloat(string(m[1]), 64)
					sum += 1000 / fps
					k++
				}
				v["tjbench_ms"] = sum / float64(k)
				v["ratio_to_tjbench"] = ours / v["tjbench_ms"]
			}
			res.add(Result{Bench: "decode", Name: fmt.Sprintf("%s at %v", name, s),
				Labels: map[string]string{"size": name, "scale": s.String()}, Values: v})
		}
	}
	return nil
}
