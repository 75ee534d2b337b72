//go:build cgo

package motiontest_test

import (
	"errors"
	"flag"
	"fmt"
	"image"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"camhub/internal/avcodec"
	"camhub/internal/motion"
	"camhub/internal/motion/motiontest"
	"camhub/internal/turbojpeg"
)

var (
	eventsOut = flag.String("events", "", "write each fixture's events to this file, one line a fixture (to compare two builds)")
	scoresOut = flag.String("scores", "", "write each analysed picture's score to this file, one line a picture")
)

// outcome is what the detector made of a fixture.
type outcome struct {
	starts, ends []time.Duration // from the fixture's first frame
	lights       int             // lightswitches
	motion       int             // analysed pictures with motion
	analysed     int
	scores       []float64     // of each analysed picture
	cpu          time.Duration // the process's CPU time while decoding and analysing
}

func (o outcome) String() string {
	ev := make([]string, len(o.starts))
	for i, s := range o.starts {
		e := "open"
		if i < len(o.ends) {
			e = o.ends[i].String()
		}
		ev[i] = s.String() + "-" + e
	}
	return fmt.Sprintf("events [%s] lightswitches %d motion %d/%d", strings.Join(ev, " "), o.lights, o.motion, o.analysed)
}

// detect runs frames through a detector with cfg as the detector component
// runs a camera's: 5 pictures a second of the fixtures' 10 (every other
// frame), JPEGs decoded by libjpeg-turbo at the smallest fast scale that
// keeps the analysed rows, H.264 access units (every one) by libavcodec.
func detect(t *testing.T, cfg motion.Config, frames [][]byte, h264 bool) outcome {
	t.Helper()
	d, err := motion.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	jd, err := turbojpeg.NewDecoder(true)
	if err != nil {
		t.Fatal(err)
	}
	defer jd.Close()
	vd, err := avcodec.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer vd.Close()
	pic := gocv.NewMat()
	defer pic.Close()

	var o outcome
	t0 := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	cpu0 := processCPU(t)
	for i, f := range frames {
		if h264 {
			ok, err := vd.Decode(f, &pic)
			if err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
			if !ok {
				t.Fatalf("frame %d: no picture", i)
			}
		}
		if i%2 != 0 {
			continue
		}
		if !h264 {
			if _, err := jd.Decode(f, image.Pt(1, cfg.Height), &pic); err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
		}
		r, err := d.Analyse(pic, t0.Add(time.Duration(i)*motiontest.Interval))
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		o.analysed++
		o.scores = append(o.scores, r.Score)
		if r.Motion {
			o.motion++
		}
		if r.Lightswitch {
			o.lights++
		}
		if r.Started {
			o.starts = append(o.starts, r.Start.Sub(t0))
		}
		if r.Ended {
			o.ends = append(o.ends, r.End.Sub(t0))
		}
	}
	o.cpu = processCPU(t) - cpu0
	return o
}

// processCPU is the CPU time the process has used (OpenCV may use threads
// of its own).
func processCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestEvents runs the fixtures through the motion detector with its
// default settings, as the hub's detector runs a camera, and checks that
// each gives the events it is made for: the walk exactly one, starting
// within a second of the motion, as JPEG and as H.264; sensor noise, a
// brightness step (a lightswitch) and the masked clock none. With -events
// FILE it writes what each gave, so that builds for two architectures can
// be compared: scripts/motion-arm64-test.sh runs the arm64 build under qemu
// and fails unless its file is the amd64 build's.
func TestEvents(t *testing.T) {
	masked := motion.DefaultConfig()
	var err error
	if masked.Masks, err = motion.ParseMask(motiontest.ClockMask); err != nil {
		t.Fatal(err)
	}
	type fixture struct {
		name   string
		frames func() [][]byte
		cfg    motion.Config
		h264   bool
		check  func(outcome) error
	}
	var fixtures []fixture
	for _, sz := range []image.Point{{320, 240}, {640, 480}, {1280, 720}} {
		w, h := sz.X, sz.Y
		name := func(s string) string { return fmt.Sprintf("%s/%dx%d", s, w, h) }
		var walk, clock [][]byte
		walkF := func() [][]byte {
			if walk == nil {
				walk = motiontest.Walk(t, w, h)
			}
			return walk
		}
		clockF := func() [][]byte {
			if clock == nil {
				clock = motiontest.Clock(t, w, h)
			}
			return clock
		}
		fixtures = append(fixtures, fixture{name("walk"), walkF, motion.DefaultConfig(), false, oneEvent})
		if w > 640 { // the walk alone: the JPEG decoder's 1/4 scale
			continue
		}
		fixtures = append(fixtures,
			fixture{name("walk-h264"), func() [][]byte { return motiontest.H264(t, walkF(), 20) }, motion.DefaultConfig(), true, oneEvent},
			fixture{name("noise"), func() [][]byte { return motiontest.Noise(t, w, h) }, motion.DefaultConfig(), false, noEvent(false)},
			fixture{name("brightness"), func() [][]byte { return motiontest.Brightness(t, w, h) }, motion.DefaultConfig(), false, noEvent(true)},
			fixture{name("clock-masked"), clockF, masked, false, noEvent(false)},
			// the clock does move: without the mask it is motion
			fixture{name("clock-unmasked"), clockF, motion.DefaultConfig(), false, func(o outcome) error {
				if len(o.starts) == 0 {
					return errors.New("no event: the clock does not show as motion")
				}
				return nil
			}})
	}
	var lines, scores []string
	var total outcome
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			o := detect(t, f.cfg, f.frames(), f.h264)
			line := fmt.Sprintf("%s: %v", f.name, o)
			t.Log(line)
			lines = append(lines, line)
			for i, s := range o.scores {
				scores = append(scores, fmt.Sprintf("%s %d %.6f", f.name, 2*i, s))
			}
			total.analysed += o.analysed
			total.cpu += o.cpu
			if err := f.check(o); err != nil {
				t.Error(err)
			}
		})
	}
	if total.analysed > 0 {
		t.Logf("%d pictures decoded and analysed, %.2f ms of CPU each", total.analysed,
			float64(total.cpu.Microseconds())/1000/float64(total.analysed))
	}
	for _, out := range []struct {
		file  string
		lines []string
	}{{*eventsOut, lines}, {*scoresOut, scores}} {
		if out.file == "" {
			continue
		}
		if err := os.WriteFile(out.file, []byte(strings.Join(out.lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func oneEvent(o outcome) error {
	if len(o.starts) != 1 || len(o.ends) != 1 {
		return fmt.Errorf("%v, want exactly one event", o)
	}
	if d := o.starts[0] - motiontest.MotionStart; d < -time.Second || d > time.Second {
		return fmt.Errorf("the event starts at %v, the motion at %v", o.starts[0], motiontest.MotionStart)
	}
	if o.ends[0] < motiontest.MotionEnd+motion.DefaultOffDelay-time.Second {
		return fmt.Errorf("the event ends at %v, the motion at %v and the off-delay is %v", o.ends[0], motiontest.MotionEnd, motion.DefaultOffDelay)
	}
	return nil
}

func noEvent(lightswitch bool) func(outcome) error {
	return func(o outcome) error {
		if len(o.starts) != 0 {
			return fmt.Errorf("%v, want no event", o)
		}
		if lightswitch && o.lights == 0 {
			return fmt.Errorf("%v, want a lightswitch", o)
		}
		if !lightswitch && o.lights > 0 {
			return fmt.Errorf("%v, want no lightswitch", o)
		}
		return nil
	}
}
