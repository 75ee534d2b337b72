package replay

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Pictures at a time, for a timeline that shows every camera at the time
// its user points at: a JPEG camera's frame at or before it, an H.264
// camera's keyframe at or before it (and, to show exactly that time, the
// access units after the keyframe up to it).

// keySeek is how much earlier than a requested time the search for an
// H.264 camera's keyframe before it starts (by the time the hub stored
// them). Cameras send a keyframe every few seconds; one whose keyframes
// are further apart is found by reading the headers of all of them.
const keySeek = time.Minute

// MaxGOPAt bounds the access units GOPAt returns: a camera whose
// keyframes are further apart gives its keyframe and the access units
// after it up to this many.
const MaxGOPAt = 1000

// FrameAt returns camera id's JPEG frame captured at or before t, or its
// oldest if every frame in the buffer is later; an error wrapping
// ErrNoFrames if the buffer holds none. It reads the headers of the
// frames stored in the few seconds before t, then the one frame.
func FrameAt(ctx context.Context, js jetstream.JetStream, id string, t time.Time) (Frame, error) {
	if err := validID(id); err != nil {
		return Frame{}, err
	}
	c, err := OpenCursor(ctx, js, id, CursorOptions{StartTime: t, HeadersOnly: true, Pull: 256})
	if err != nil {
		return Frame{}, err
	}
	var seq uint64
	for {
		f, ok, err := c.Next(ctx)
		if err != nil {
			c.Close()
			return Frame{}, fmt.Errorf("camera %q: reading its frames: %w", id, err)
		}
		if !ok || (seq != 0 && f.Time.After(t)) {
			break
		}
		seq = f.StreamSeq
	}
	c.Close()
	if seq == 0 {
		// nothing stored from t on: the newest frame, if any
		st, err := framesStream(ctx, js)
		if err != nil {
			return Frame{}, err
		}
		return newest(ctx, st, id)
	}
	fc, err := OpenCursor(ctx, js, id, CursorOptions{StartSeq: seq, Pull: 1})
	if err != nil {
		return Frame{}, err
	}
	defer fc.Close()
	f, ok, err := fc.Next(ctx)
	if err == nil && !ok {
		err = fmt.Errorf("%w: it left the buffer", ErrNoFrames)
	}
	if err != nil {
		return Frame{}, fmt.Errorf("camera %q: reading its frame at %v: %w", id, t, err)
	}
	return f, nil
}

// keyframeNear returns the stream sequence of camera id's newest keyframe
// captured at or before t, or its oldest if all are later, looking first
// among those stored in the keySeek before t.
func keyframeNear(ctx context.Context, js jetstream.JetStream, id string, t time.Time) (uint64, error) {
	seq, at, err := keyframeBefore(ctx, js, id, t, t.Add(-keySeek))
	if err != nil {
		return 0, err
	}
	if seq != 0 && !at.After(t) {
		return seq, nil
	}
	return KeyframeAt(ctx, js, id, t) // further back, or all later
}

// GOPAt returns what a decoder needs to show H.264 camera id at time t:
// its keyframe captured at or before t (its oldest if all are later) and,
// with exact, the access units after it captured up to t (at most
// MaxGOPAt in all). An error wraps ErrNoFrames if the buffer holds no
// keyframe of the camera.
func GOPAt(ctx context.Context, js jetstream.JetStream, id string, t time.Time, exact bool) ([]AU, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	seq, err := keyframeNear(ctx, js, id, t)
	if err != nil {
		return nil, err
	}
	o := VideoCursorOptions{StartSeq: seq, Pull: 16}
	if !exact {
		o.KeysOnly, o.Pull = true, 1
	}
	c, err := OpenVideoCursor(ctx, js, id, o)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var gop []AU
	for len(gop) < MaxGOPAt {
		a, ok, err := c.Next(ctx)
		if err != nil {
			return nil, fmt.Errorf("camera %q: reading its access units at %v: %w", id, t, err)
		}
		if !ok {
			break
		}
		if len(gop) == 0 && !a.Key {
			continue // cannot happen: the cursor starts at the keyframe
		}
		if len(gop) > 0 && (a.Time.After(t) || a.Key) {
			break
		}
		gop = append(gop, a)
		if !exact {
			break
		}
	}
	if len(gop) == 0 {
		return nil, fmt.Errorf("camera %q: %w: its keyframe at %v left the buffer", id, ErrNoFrames, t)
	}
	return gop, nil
}
