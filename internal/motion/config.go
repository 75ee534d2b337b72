package motion

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"camhub/internal/wire"
)

// Defaults: tuned on OpenCV's vtest clip (people walking) against sensor
// noise, brightness steps and a running clock (see the tests).
const (
	DefaultHeight      = 180
	DefaultThreshold   = 25
	DefaultMinArea     = 0.002
	DefaultOnFrames    = 2
	DefaultOffDelay    = 5 * time.Second
	DefaultLightswitch = 0.5
	DefaultAlpha       = 0.05
)

// Config is a detector's tuning.
type Config struct {
	// Height is how many rows the picture is shrunk to (100-480).
	Height int
	// Threshold is how much (1-255) a pixel must differ from the
	// background to count as changed: lower is more sensitive.
	Threshold int
	// MinArea is the smallest moving area, as a fraction of the picture
	// (outside the masks), that is motion.
	MinArea float64
	// OnFrames is how many analysed pictures in a row must show motion
	// before an event starts.
	OnFrames int
	// OffDelay is how long without motion ends an event.
	OffDelay time.Duration
	// Lightswitch is the fraction of the picture that, changing at once,
	// is taken for a change of light: the background is learnt again.
	Lightswitch float64
	// Alpha is how fast the background learns (0-1 a picture).
	Alpha float64
	// Masks are areas where motion is ignored.
	Masks []Polygon
}

// DefaultConfig is the tuning a plain hub uses.
func DefaultConfig() Config {
	return Config{Height: DefaultHeight, Threshold: DefaultThreshold, MinArea: DefaultMinArea, OnFrames: DefaultOnFrames,
		OffDelay: DefaultOffDelay, Lightswitch: DefaultLightswitch, Alpha: DefaultAlpha}
}

// ErrConfig is wrapped by every error of Validate and of parsing settings.
var ErrConfig = errors.New("bad motion settings")

// Validate checks c.
func (c *Config) Validate() error {
	switch {
	case c.Height < 60 || c.Height > 480:
		return fmt.Errorf("%w: height %d: 60 to 480", ErrConfig, c.Height)
	case c.Threshold < 1 || c.Threshold > 255:
		return fmt.Errorf("%w: threshold %d: 1 to 255", ErrConfig, c.Threshold)
	case !(c.MinArea >= 0 && c.MinArea <= 1):
		return fmt.Errorf("%w: min-area %v: a fraction of the picture, 0 to 1", ErrConfig, c.MinArea)
	case c.OnFrames < 1 || c.OnFrames > 100:
		return fmt.Errorf("%w: on-frames %d: 1 to 100", ErrConfig, c.OnFrames)
	case c.OffDelay < 0 || c.OffDelay > time.Hour:
		return fmt.Errorf("%w: off-delay %v: 0 to 1h", ErrConfig, c.OffDelay)
	case !(c.Lightswitch > 0 && c.Lightswitch <= 1):
		return fmt.Errorf("%w: lightswitch %v: a fraction above 0, at most 1", ErrConfig, c.Lightswitch)
	case !(c.Alpha > 0 && c.Alpha <= 1):
		return fmt.Errorf("%w: alpha %v: above 0, at most 1", ErrConfig, c.Alpha)
	}
	return nil
}

// Settings is what may be set per camera (and globally): the detector's
// tuning and what is done with its events. A nil field is not set: the
// camera has the global value.
type Settings struct {
	Enabled   *bool     `json:"enabled,omitempty"`
	FPS       *float64  `json:"fps,omitempty"`
	Threshold *int      `json:"threshold,omitempty"`
	MinArea   *float64  `json:"min-area,omitempty"`
	OnFrames  *int      `json:"on-frames,omitempty"`
	OffDelay  *Duration `json:"off-delay,omitempty"`
	PreRoll   *Duration `json:"pre-roll,omitempty"`
	PostRoll  *Duration `json:"post-roll,omitempty"`
	// Mask is a mask spec (ParseMask).
	Mask *string `json:"mask,omitempty"`
}

// Camera is the whole of one camera's settings.
type Camera struct {
	Enabled  bool
	FPS      float64 // analysed pictures a second, at most
	PreRoll  time.Duration
	PostRoll time.Duration
	Motion   Config
}

// Defaults for Camera.
const (
	DefaultFPS      = 5
	DefaultPreRoll  = 5 * time.Second
	DefaultPostRoll = 5 * time.Second
	MaxRoll         = 5 * time.Minute
)

// DefaultCamera is a camera's settings when nothing is set.
func DefaultCamera() Camera {
	return Camera{Enabled: true, FPS: DefaultFPS, PreRoll: DefaultPreRoll, PostRoll: DefaultPostRoll, Motion: DefaultConfig()}
}

// Apply sets what s sets on c, and checks the result.
func (s Settings) Apply(c Camera) (Camera, error) {
	if s.Enabled != nil {
		c.Enabled = *s.Enabled
	}
	if s.FPS != nil {
		c.FPS = *s.FPS
	}
	if s.Threshold != nil {
		c.Motion.Threshold = *s.Threshold
	}
	if s.MinArea != nil {
		c.Motion.MinArea = *s.MinArea
	}
	if s.OnFrames != nil {
		c.Motion.OnFrames = *s.OnFrames
	}
	if s.OffDelay != nil {
		c.Motion.OffDelay = time.Duration(*s.OffDelay)
	}
	if s.PreRoll != nil {
		c.PreRoll = time.Duration(*s.PreRoll)
	}
	if s.PostRoll != nil {
		c.PostRoll = time.Duration(*s.PostRoll)
	}
	if s.Mask != nil {
		m, err := ParseMask(*s.Mask)
		if err != nil {
			return c, fmt.Errorf("%w: mask: %w", ErrConfig, err)
		}
		c.Motion.Masks = m
	}
	return c, c.Validate()
}

// Validate checks c.
func (c *Camera) Validate() error {
	if !(c.FPS >= 0.1 && c.FPS <= 30) {
		return fmt.Errorf("%w: fps %v: 0.1 to 30", ErrConfig, c.FPS)
	}
	if c.PreRoll < 0 || c.PreRoll > MaxRoll || c.PostRoll < 0 || c.PostRoll > MaxRoll {
		return fmt.Errorf("%w: pre-roll %v, post-roll %v: 0 to %v", ErrConfig, c.PreRoll, c.PostRoll, MaxRoll)
	}
	return c.Motion.Validate()
}

// Duration is a time.Duration written as "5s" in JSON and YAML.
type Duration time.Duration

// UnmarshalJSON reads "5s" (or a number of seconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var sec float64
		if err := json.Unmarshal(b, &sec); err != nil {
			return fmt.Errorf("a duration such as \"5s\"")
		}
		*d = Duration(sec * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("a duration such as \"5s\": %q", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes "5s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// CameraSettings is the per-camera settings of a detector, by camera id:
// a pflag.Value that reads JSON (a YAML map in a config file becomes
// that), e.g. {"garden":{"mask":"0,0 1,0 1,0.1 0,0.1","threshold":35},"door":{"enabled":false}}.
type CameraSettings map[string]Settings

// Set implements pflag.Value.
func (cs *CameraSettings) Set(s string) error {
	m, err := ParseCameraSettings([]byte(s))
	if err != nil {
		return err
	}
	*cs = m
	return nil
}

// String implements pflag.Value.
func (cs *CameraSettings) String() string {
	if cs == nil || len(*cs) == 0 {
		return ""
	}
	b, _ := json.Marshal(*cs)
	return string(b)
}

// Type implements pflag.Value.
func (cs *CameraSettings) Type() string { return "json" }

// MaxCameraSettings bounds how many cameras settings may name.
const MaxCameraSettings = 1000

// ParseCameraSettings reads per-camera settings as JSON and checks every
// camera id and setting (against the defaults; Resolve checks them against
// the global settings).
func ParseCameraSettings(b []byte) (CameraSettings, error) {
	var m CameraSettings
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: per-camera settings: %v (want JSON such as {\"front\":{\"threshold\":30,\"mask\":\"0,0 1,0 1,0.1 0,0.1\"}})", ErrConfig, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: per-camera settings: more after the JSON object", ErrConfig)
	}
	if len(m) > MaxCameraSettings {
		return nil, fmt.Errorf("%w: settings for %d cameras, at most %d", ErrConfig, len(m), MaxCameraSettings)
	}
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if err := wire.ValidateID(id); err != nil {
			return nil, fmt.Errorf("%w: per-camera settings: %w", ErrConfig, err)
		}
		if _, err := m[id].Apply(DefaultCamera()); err != nil {
			return nil, fmt.Errorf("camera %q: %w", id, err)
		}
	}
	return m, nil
}
