package motion

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"camhub/internal/wire"
)

// Flags are the motion detector's settings as command-line flags (and so,
// through package config, YAML keys and CAMHUB_* variables), shared by the
// hub and the detector command.
type Flags struct {
	Enabled   bool
	FPS       float64
	Threshold int
	MinArea   float64
	OnFrames  int
	OffDelay  time.Duration
	PreRoll   time.Duration
	PostRoll  time.Duration
	Mask      string
	Cameras   CameraSettings
	// Cams, if not empty, are the only cameras analysed.
	Cams []string
}

// Add defines the flags on fs; enabled is --motion's default.
func (f *Flags) Add(fs *pflag.FlagSet, enabled bool) {
	fs.BoolVar(&f.Enabled, "motion", enabled, "detect motion on every camera and keep an event and a clip of each (--motion=false: off)")
	fs.Float64Var(&f.FPS, "motion-fps", DefaultFPS, "pictures a second analysed per camera, at most (the newest frame wins)")
	fs.IntVar(&f.Threshold, "motion-threshold", DefaultThreshold, "how much (1-255) a pixel must change to count: lower is more sensitive")
	fs.Float64Var(&f.MinArea, "motion-min-area", DefaultMinArea, "smallest moving area, as a fraction of the picture")
	fs.IntVar(&f.OnFrames, "motion-on-frames", DefaultOnFrames, "analysed pictures in a row with motion that start an event")
	fs.DurationVar(&f.OffDelay, "motion-off-delay", DefaultOffDelay, "no motion for this long ends an event")
	fs.DurationVar(&f.PreRoll, "pre-roll", DefaultPreRoll, "an event's clip starts this long before the motion")
	fs.DurationVar(&f.PostRoll, "post-roll", DefaultPostRoll, "and ends this long after it")
	fs.StringVar(&f.Mask, "motion-mask", "", "areas where motion is ignored, on every camera: polygons of x,y points in fractions of the picture, e.g. '0,0 1,0 1,0.1 0,0.1' (the top tenth); ';' between polygons")
	fs.StringSliceVar(&f.Cams, "motion-cams", nil, "analyse only these cameras (comma-separated `ids`; default: every camera): to share the cameras between hubs of a cluster or several detectors")
	fs.Var(&f.Cameras, "motion-cameras", `per-camera settings as JSON (a map in YAML): {"garden":{"mask":"0,0.9 1,0.9 1,1 0,1","threshold":35,"off-delay":"10s"},"door":{"enabled":false}}; keys enabled, fps, threshold, min-area, on-frames, off-delay, pre-roll, post-roll, mask`)
}

// Camera returns every camera's settings as the flags say, checked.
func (f *Flags) Camera() (Camera, error) {
	c := DefaultCamera()
	c.Enabled, c.FPS, c.PreRoll, c.PostRoll = f.Enabled, f.FPS, f.PreRoll, f.PostRoll
	c.Motion.Threshold, c.Motion.MinArea, c.Motion.OnFrames, c.Motion.OffDelay = f.Threshold, f.MinArea, f.OnFrames, f.OffDelay
	m, err := ParseMask(f.Mask)
	if err != nil {
		return c, fmt.Errorf("motion-mask: %w", err)
	}
	c.Motion.Masks = m
	if err := c.Validate(); err != nil {
		return c, err
	}
	for _, id := range f.Cams {
		if err := wire.ValidateID(id); err != nil {
			return c, fmt.Errorf("motion-cams: %w", err)
		}
	}
	for id, s := range f.Cameras {
		if _, err := s.Apply(c); err != nil {
			return c, fmt.Errorf("motion-cameras: camera %q: %w", id, err)
		}
	}
	return c, nil
}
