package web

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"camhub/internal/replay"
	"camhub/internal/wire"
)

// ErrBadRequest is wrapped by every error about a request's parameters; the
// server answers it with 400.
var ErrBadRequest = errors.New("bad request")

// Bounds of the query parameters.
const (
	// MaxSince is the furthest back a rewind may ask for. The hub's buffer
	// decides what is really there (30 s by default); a rewind further
	// back than it holds starts at its oldest frame.
	MaxSince = 24 * time.Hour
	// MinSpeed and MaxSpeed bound the replay speed.
	MinSpeed = replay.MinSpeed
	MaxSpeed = 16.0
	// MaxFPS is the highest per-camera rate a client may ask to be
	// limited to.
	MaxFPS = 1000.0
)

// streamQuery is what a client asks of a stream or a snapshot.
type streamQuery struct {
	Since    time.Duration // rewind by this much; 0: live
	At       time.Time     // rewind to this capture time (timeline.go); zero: Since says
	Speed    float64       // replay speed, 1: real time
	FPS      float64       // at most this many frames a second per camera; 0: all
	Cams     []string      // the cameras of a multi-camera stream; nil: all
	Download bool          // a snapshot as an attachment
}

// parseQuery parses a request's raw query. Parameters it does not know
// (cache busters, say) are ignored; the ones it knows must be well-formed.
func parseQuery(raw string, maxCams int) (streamQuery, error) {
	q := streamQuery{Speed: 1}
	v, err := url.ParseQuery(raw)
	if err != nil {
		return q, fmt.Errorf("%w: query: %v", ErrBadRequest, err)
	}
	if s, ok := one(v, "since"); ok {
		if q.Since, err = parseSince(s); err != nil {
			return q, err
		}
	}
	if s, ok := one(v, "at"); ok {
		if q.At, err = parseAt(s, time.Now()); err != nil {
			return q, err
		}
	}
	if s, ok := one(v, "speed"); ok {
		if q.Speed, err = parseNumber("speed", s, MinSpeed, MaxSpeed); err != nil {
			return q, err
		}
	}
	if s, ok := one(v, "fps"); ok {
		if q.FPS, err = parseNumber("fps", s, 0, MaxFPS); err != nil {
			return q, err
		}
	}
	if s, ok := one(v, "cams"); ok {
		if q.Cams, err = parseCams(s, maxCams); err != nil {
			return q, err
		}
	}
	if s, ok := one(v, "download"); ok {
		if q.Download, err = strconv.ParseBool(s); err != nil {
			return q, fmt.Errorf("%w: download=%q: want 1 or 0", ErrBadRequest, s)
		}
	}
	return q, nil
}

// one returns the first value of a parameter that is present.
func one(v url.Values, key string) (string, bool) {
	vs, ok := v[key]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

// parseSince reads how far to rewind: a Go duration ("10s", "1m30s") or
// plain seconds ("10", "2.5"). Zero means live.
func parseSince(s string) (time.Duration, error) {
	bad := func() (time.Duration, error) {
		return 0, fmt.Errorf("%w: since=%q: want a duration from 0 to %v, such as 10s, 1m or 30", ErrBadRequest, s, MaxSince)
	}
	var d time.Duration
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(secs) || secs < 0 || secs > MaxSince.Seconds() {
			return bad()
		}
		d = time.Duration(secs * float64(time.Second))
	} else if d, err = time.ParseDuration(s); err != nil {
		return bad()
	}
	if d < 0 || d > MaxSince {
		return bad()
	}
	return d, nil
}

// live reports whether q asks for live pictures, not a rewind.
func (q streamQuery) live() bool { return q.Since <= 0 && q.At.IsZero() }

// start is the capture time a rewind asked for at now starts at.
func (q streamQuery) start(now time.Time) time.Time {
	if !q.At.IsZero() {
		return q.At
	}
	return now.Add(-q.Since)
}

// parseNumber reads a finite number in [lo, hi].
func parseNumber(name, s string, lo, hi float64) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < lo || f > hi {
		return 0, fmt.Errorf("%w: %s=%q: want a number from %v to %v", ErrBadRequest, name, s, lo, hi)
	}
	return f, nil
}

// parseCams reads a comma-separated list of camera ids; empty elements are
// ignored, repeated ones kept once.
func parseCams(s string, maxCams int) ([]string, error) {
	var ids []string
	seen := make(map[string]bool)
	for id := range strings.SplitSeq(s, ",") {
		id = strings.TrimSpace(id)
		if id == "" || seen[id] {
			continue
		}
		if err := wire.ValidateID(id); err != nil {
			return nil, fmt.Errorf("%w: cams: %w", ErrBadRequest, err)
		}
		if len(ids) == maxCams {
			return nil, fmt.Errorf("%w: cams: more than %d cameras", ErrBadRequest, maxCams)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	return ids, nil
}
