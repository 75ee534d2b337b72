//go:build cgo

package motion_test

import (
	"testing"
	"time"

	"gocv.io/x/gocv"

	"camhub/internal/motion"
	"camhub/internal/motion/motiontest"
)

// run analyses every other frame of a fixture (5 of its 10 a second) and
// returns the events' starts and ends, and how many lightswitches it saw.
func run(t testing.TB, cfg motion.Config, frames [][]byte) (starts, ends []time.Duration, lights int) {
	t.Helper()
	d, err := motion.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	t0 := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	for i := 0; i < len(frames); i += 2 {
		img, err := gocv.IMDecode(frames[i], gocv.IMReadColor)
		if err != nil {
			t.Fatal(err)
		}
		at := t0.Add(time.Duration(i) * motiontest.Interval)
		r, err := d.Analyse(img, at)
		img.Close()
		if err != nil {
			t.Fatal(err)
		}
		if r.Started {
			starts = append(starts, r.Start.Sub(t0))
		}
		if r.Ended {
			ends = append(ends, r.End.Sub(t0))
		}
		if r.Lightswitch {
			lights++
		}
	}
	return starts, ends, lights
}

func TestWalk(t *testing.T) {
	check := matLeaks(t)
	for _, sz := range []struct{ w, h int }{{640, 480}, {1280, 720}, {320, 240}} {
		frames := motiontest.Walk(t, sz.w, sz.h)
		starts, ends, _ := run(t, motion.DefaultConfig(), frames)
		if len(starts) != 1 || len(ends) != 1 {
			t.Fatalf("%dx%d: events starting at %v and ending at %v, want exactly one", sz.w, sz.h, starts, ends)
		}
		if d := starts[0] - motiontest.MotionStart; d < -time.Second || d > time.Second {
			t.Errorf("%dx%d: event starts at %v, motion at %v", sz.w, sz.h, starts[0], motiontest.MotionStart)
		}
		if ends[0] < motiontest.MotionEnd+motion.DefaultOffDelay-time.Second {
			t.Errorf("%dx%d: event ends at %v, motion at %v and the off-delay is %v", sz.w, sz.h, ends[0], motiontest.MotionEnd, motion.DefaultOffDelay)
		}
		t.Logf("%dx%d: event %v to %v", sz.w, sz.h, starts[0], ends[0])
	}
	check("after the walks")
}

func TestNoEvent(t *testing.T) {
	check := matLeaks(t)
	masked := motion.DefaultConfig()
	var err error
	if masked.Masks, err = motion.ParseMask(motiontest.ClockMask); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		frames func(testing.TB, int, int) [][]byte
		cfg    motion.Config
		lights bool
	}{
		{"sensor noise", motiontest.Noise, motion.DefaultConfig(), false},
		{"brightness step", motiontest.Brightness, motion.DefaultConfig(), true},
		{"clock masked", motiontest.Clock, masked, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			starts, _, lights := run(t, tc.cfg, tc.frames(t, 640, 480))
			if len(starts) != 0 {
				t.Errorf("events starting at %v, want none", starts)
			}
			if tc.lights != (lights > 0) {
				t.Errorf("%d lightswitches", lights)
			}
		})
	}
	// the clock does move: without the mask it is an event
	starts, _, _ := run(t, motion.DefaultConfig(), motiontest.Clock(t, 640, 480))
	if len(starts) == 0 {
		t.Error("the clock unmasked: no event")
	}
	check("after the fixtures")
}

func TestAnalyseErrors(t *testing.T) {
	check := matLeaks(t)
	d, err := motion.New(motion.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	empty := gocv.NewMat()
	if _, err := d.Analyse(empty, time.Now()); err == nil {
		t.Error("an empty picture: no error")
	}
	empty.Close()
	d.Close()
	d.Close()
	img := gocv.NewMatWithSize(10, 10, gocv.MatTypeCV8UC3)
	if _, err := d.Analyse(img, time.Now()); err != motion.ErrClosed {
		t.Errorf("after Close: %v", err)
	}
	img.Close()
	check("after Close")
	if _, err := motion.New(motion.Config{}); err == nil {
		t.Error("a zero config: no error")
	}
}
