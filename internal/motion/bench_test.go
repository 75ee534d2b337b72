//go:build cgo

package motion_test

import (
	"fmt"
	"image"
	"slices"
	"syscall"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"camhub/internal/motion"
	"camhub/internal/motion/motiontest"
	"camhub/internal/turbojpeg"
)

// BenchmarkAnalyse is the detector's CPU per analysed picture: the walk's
// frames, decoded beforehand (Analyse alone), and decoded from JPEG as the
// detector does (turbojpeg at the smallest fast scale that keeps 180 rows).
// Run: go test -run XXX -bench Analyse -benchtime 200x ./internal/motion/
func BenchmarkAnalyse(b *testing.B) {
	for _, sz := range []image.Point{{640, 480}, {1280, 720}} {
		frames := motiontest.Walk(b, sz.X, sz.Y)[90:130] // still, then walking
		b.Run(fmt.Sprintf("%dx%d/analyse", sz.X, sz.Y), func(b *testing.B) {
			mats := make([]gocv.Mat, len(frames))
			for i, f := range frames {
				var err error
				if mats[i], err = gocv.IMDecode(f, gocv.IMReadColor); err != nil {
					b.Fatal(err)
				}
				defer mats[i].Close()
			}
			d, err := motion.New(motion.DefaultConfig())
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			t0 := time.Now()
			b.ResetTimer()
			cpu := processCPU(b)
			for i := 0; i < b.N; i++ {
				if _, err := d.Analyse(mats[i%len(mats)], t0.Add(time.Duration(i)*200*time.Millisecond)); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu)
		})
		b.Run(fmt.Sprintf("%dx%d/decode+analyse", sz.X, sz.Y), func(b *testing.B) {
			dec, err := turbojpeg.NewDecoder(true)
			if err != nil {
				b.Fatal(err)
			}
			defer dec.Close()
			pic := gocv.NewMat()
			defer pic.Close()
			d, err := motion.New(motion.DefaultConfig())
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			t0 := time.Now()
			b.ResetTimer()
			cpu := processCPU(b)
			for i := 0; i < b.N; i++ {
				if _, err := dec.Decode(frames[i%len(frames)], image.Pt(1, motion.DefaultHeight), &pic); err != nil {
					b.Fatal(err)
				}
				if _, err := d.Analyse(pic, t0.Add(time.Duration(i)*200*time.Millisecond)); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu)
		})
	}
}

// processCPU is the CPU time the process has used: OpenCV may work on
// threads of its own, and the machine's other load does not inflate it as
// it does wall time.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, since time.Duration) {
	b.ReportMetric(float64((processCPU(b)-since).Microseconds())/1000/float64(b.N), "cpu-ms/frame")
}

// BenchmarkFixtures runs the fixtures through the detector at 5 pictures a
// second and reports false events per hour of the negative fixtures and
// the detection delay on the walk: from the motion's start to the capture
// time of the picture that raised the event (ON is published once that
// picture is analysed), for the 10 phases of the 5 fps sampling against
// the 10 fps footage and start times.
// Run: go test -run XXX -bench Fixtures -benchtime 1x ./internal/motion/
func BenchmarkFixtures(b *testing.B) {
	masked := motion.DefaultConfig()
	masked.Masks, _ = motion.ParseMask(motiontest.ClockMask)
	negatives := []struct {
		name   string
		frames [][]byte
		cfg    motion.Config
	}{
		{"noise", motiontest.Noise(b, 640, 480), motion.DefaultConfig()},
		{"brightness", motiontest.Brightness(b, 640, 480), motion.DefaultConfig()},
		{"clock-masked", motiontest.Clock(b, 640, 480), masked},
	}
	walk := motiontest.Walk(b, 640, 480)
	b.ResetTimer()
	for range b.N {
		var footage time.Duration
		falses := 0
		for _, n := range negatives {
			for phase := range 2 {
				starts, _ := decide(b, n.cfg, n.frames, phase)
				falses += len(starts)
				footage += time.Duration(len(n.frames)) * motiontest.Interval
			}
		}
		b.ReportMetric(float64(falses)/footage.Hours(), "false-events/h")
		var delays []time.Duration
		for phase := range 2 {
			for skip := range 5 { // the motion starts at other points of the sampling
				_, on := decide(b, motion.DefaultConfig(), walk[skip:], phase)
				if len(on) != 1 {
					b.Fatalf("phase %d, skip %d: %d events", phase, skip, len(on))
				}
				delays = append(delays, on[0]-(motiontest.MotionStart-time.Duration(skip)*motiontest.Interval))
			}
		}
		slices.Sort(delays)
		b.ReportMetric(float64(delays[len(delays)/2].Milliseconds()), "delay-p50-ms")
		b.ReportMetric(float64(delays[len(delays)-1].Milliseconds()), "delay-max-ms")
	}
}

// decide analyses every other frame from phase on and returns the events'
// starts and the capture times of the pictures that raised them, both from
// the fixture's start.
func decide(b *testing.B, cfg motion.Config, frames [][]byte, phase int) (starts, on []time.Duration) {
	d, err := motion.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	var t0 time.Time
	for i := phase; i < len(frames); i += 2 {
		img, err := gocv.IMDecode(frames[i], gocv.IMReadColor)
		if err != nil {
			b.Fatal(err)
		}
		at := t0.Add(time.Duration(i) * motiontest.Interval)
		r, err := d.Analyse(img, at)
		img.Close()
		if err != nil {
			b.Fatal(err)
		}
		if r.Started {
			starts = append(starts, r.Start.Sub(t0))
			on = append(on, at.Sub(t0))
		}
	}
	return starts, on
}
