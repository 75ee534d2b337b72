//go:build cgo

package detector_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"camhub/agent"
	"camhub/detector"
	"camhub/hub/hubtest"
	"camhub/internal/motion"
	"camhub/internal/testenv"
)

// The agent's test pattern (a sweeping bar, a bouncing ball, a clock) raises
// no event with the default settings: the detector leaves it alone. A
// camera's settings that turn detection on make it analysed, and then it
// does raise events: the pattern moves, so the first case is not a test that
// cannot fail.
func TestPatternQuiet(t *testing.T) {
	for _, on := range []bool{false, true} {
		name := "default"
		if on {
			name = "enabled"
		}
		t.Run(name, func(t *testing.T) {
			h, _ := hubtest.StartJS(t, nil)
			cfg := detector.Config{Defaults: motion.DefaultCamera()}
			if on {
				cfg.Cameras = motion.CameraSettings{"pattern": {Enabled: &on}}
			}
			d, err := detector.New(testenv.Conn(t, h.ClientURL()), cfg, testenv.Quiet())
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(d.Close)
			a, err := agent.New(agent.Config{ID: "pattern", Source: "testpattern", FPS: 10, Width: 320, Height: 240}, testenv.Conn(t, h.ClientURL()), testenv.Quiet())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() { a.Run(ctx) })
			t.Cleanup(func() {
				cancel()
				wg.Wait()
			})
			if on {
				testenv.Eventually(t, 30*time.Second, "an event on the test pattern", func() bool { return d.Stats().Events > 0 })
				return
			}
			// 6 s of the pattern: the ball and the bar cross the picture
			testenv.Eventually(t, 60*time.Second, "60 frames of the test pattern", func() bool { return d.Stats().Skipped >= 60 })
			if st := d.Stats(); st.Events != 0 || st.Analysed != 0 {
				t.Errorf("the test pattern with the default settings: %+v", st)
			}
		})
	}
}
