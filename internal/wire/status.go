package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Camera states an agent reports.
const (
	// StateStarting: the agent runs but has not captured a frame yet.
	StateStarting = "starting"
	// StateStreaming: frames are being captured and sent.
	StateStreaming = "streaming"
	// StateSourceError: the camera failed or disappeared; the agent is
	// reopening it with backoff. Status.Error says why.
	StateSourceError = "source-error"
	// StateStopped: the agent stopped (on a signal, or at the end of a
	// video file played without --loop).
	StateStopped = "stopped"
)

// DefaultReportInterval is how often an agent reports its status.
const DefaultReportInterval = 2 * time.Second

// MaxReportInterval is the longest interval an agent may report at.
const MaxReportInterval = 5 * time.Second

// Status is the JSON document an agent publishes on cams.<id>.status.
type Status struct {
	ID            string    `json:"id"`
	Site          string    `json:"site,omitempty"` // where the camera is; optional
	Host          string    `json:"host"`
	Source        string    `json:"source"` // credentials in URLs are redacted
	State         string    `json:"state"`
	Error         string    `json:"error,omitempty"`
	FPS           float64   `json:"fps"`             // frames sent per second, recently
	Codec         string    `json:"codec,omitempty"` // CodecJPEG (or empty: an older agent) or CodecH264
	Width         int       `json:"width"`
	Height        int       `json:"height"`
	FramesSent    uint64    `json:"frames_sent"`
	FramesDropped uint64    `json:"frames_dropped"`
	BytesSent     uint64    `json:"bytes_sent,omitempty"` // payload bytes of the frames sent (0: an older agent)
	Started       time.Time `json:"started"`
	Time          time.Time `json:"time"`        // when this report was made
	IntervalMS    int64     `json:"interval_ms"` // the agent's report interval
	Version       string    `json:"version"`
	// Lo is the camera's small tier (cams.<id>.lo.…), if it has one.
	Lo *Tier `json:"lo,omitempty"`
}

// Interval is the agent's report interval: DefaultReportInterval if it did
// not say, and never more than MaxReportInterval, so a report claiming a
// huge interval cannot keep a camera online for ever.
func (s *Status) Interval() time.Duration {
	if s.IntervalMS <= 0 {
		return DefaultReportInterval
	}
	if s.IntervalMS > MaxReportInterval.Milliseconds() {
		return MaxReportInterval
	}
	return time.Duration(s.IntervalMS) * time.Millisecond
}

// OfflineAfter is how long after a report a camera that sent no newer one
// counts as offline: three missed reports.
func (s *Status) OfflineAfter() time.Duration { return 3 * s.Interval() }

// Online reports whether a camera whose newest report is s, received at
// received, is online at now.
func (s *Status) Online(received, now time.Time) bool {
	return s.State != StateStopped && now.Sub(received) <= s.OfflineAfter()
}

// ErrBadStatus is wrapped by every error from ParseStatus.
var ErrBadStatus = errors.New("bad status report")

// ParseStatus decodes and checks a status report received on subject.
func ParseStatus(subject string, data []byte) (*Status, error) {
	id, kind, err := ParseSubject(subject)
	if err != nil || kind != KindStatus {
		return nil, fmt.Errorf("%w: subject %q", ErrBadStatus, subject)
	}
	var s Status
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%w on %s: %v", ErrBadStatus, subject, err)
	}
	if s.ID != id {
		return nil, fmt.Errorf("%w on %s: id %q does not match the subject", ErrBadStatus, subject, s.ID)
	}
	switch s.State {
	case StateStarting, StateStreaming, StateSourceError, StateStopped:
	default:
		return nil, fmt.Errorf("%w on %s: unknown state %q", ErrBadStatus, subject, s.State)
	}
	if s.IntervalMS < 0 || s.Width < 0 || s.Height < 0 || s.FPS < 0 {
		return nil, fmt.Errorf("%w on %s: negative field", ErrBadStatus, subject)
	}
	if l := s.Lo; l != nil {
		if l.Width < 0 || l.Height < 0 || l.FPS < 0 {
			return nil, fmt.Errorf("%w on %s: negative field in lo", ErrBadStatus, subject)
		}
		if l.Codec != CodecJPEG && l.Codec != CodecH264 {
			return nil, fmt.Errorf("%w on %s: lo codec %q", ErrBadStatus, subject, l.Codec)
		}
	}
	return &s, nil
}
