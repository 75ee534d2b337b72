// Package replay reads camhub's replay buffer, the JetStream stream CAMS that
// the hub keeps of every camera's frames: the newest frame of a camera at once
// (Snapshot, WriteSnapshot), what the buffer holds (Bounds, Ends), one
// camera's frames in order (Cursor), and a synchronised rewind of several
// cameras that continues into live (Player). It needs no cgo; writing clips
// (package export) does.
//
// Times are the frames' Frame-Time headers, the agents' capture clocks, not
// the times the hub stored the frames; see docs/PROTOCOL.md.
package replay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/atomicfile"
	"camhub/internal/wire"
)

// Sentinel errors. Every error of this package that has one of these causes
// wraps it, so callers can tell them apart with errors.Is.
var (
	// ErrNoBuffer: the NATS server has no CAMS stream (no hub provisioned
	// it) or no JetStream at all.
	ErrNoBuffer = errors.New("no replay buffer")
	// ErrNoFrames: the buffer holds no frame of the camera.
	ErrNoFrames = errors.New("no frames in the replay buffer")
	// ErrOutOfRange: a requested time range does not overlap what the
	// buffer holds of the camera.
	ErrOutOfRange = errors.New("range outside the replay buffer")
	// ErrInvalid: the request itself is wrong (camera id, file type, a
	// range that ends before it starts, ...).
	ErrInvalid = errors.New("invalid replay request")
	// ErrRunning: Player.Run was called more than once.
	ErrRunning = errors.New("replay: Player.Run called more than once")
)

// Frame is one frame read from the buffer.
type Frame struct {
	wire.Frame           // its headers: Frame-Seq, Frame-Time, size
	JPEG       []byte    // the payload; owned by the receiver
	StreamSeq  uint64    // its sequence in the CAMS stream
	Stored     time.Time // when the hub stored it (the hub's clock)
}

// Internal errors.
var (
	errNotFrame = errors.New("not a camhub frame")
	errClock    = errors.New("capture time out of step")
)

// framesStream returns the CAMS stream, or an error wrapping ErrNoBuffer that
// says how to get one.
func framesStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	st, err := js.Stream(ctx, wire.FramesStream)
	switch {
	case err == nil:
		return st, nil
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return nil, fmt.Errorf("%w: the NATS server has no stream %s; is the hub running? Start it (hub, or hub --nats URL for an existing server) and point --nats at it",
			ErrNoBuffer, wire.FramesStream)
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount),
		errors.Is(err, nats.ErrNoResponders):
		return nil, fmt.Errorf("%w: the NATS server has no JetStream, so no stream %s; start the hub, which runs one, and point --nats at it: %v",
			ErrNoBuffer, wire.FramesStream, err)
	default:
		return nil, fmt.Errorf("reading the replay buffer (stream %s): %w", wire.FramesStream, err)
	}
}

// validID checks a camera id, wrapping both ErrInvalid and wire.ErrInvalidID.
func validID(id string) error {
	if err := wire.ValidateID(id); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// noFrames is the error for a camera the buffer holds nothing of.
func noFrames(id string) error {
	return fmt.Errorf("camera %q: %w (is its agent running and sending to this hub? the buffer keeps only recent frames)", id, ErrNoFrames)
}

// rawFrame parses a message read from the stream by sequence or subject.
func rawFrame(m *jetstream.RawStreamMsg) (Frame, error) {
	wf, err := wire.ParseFrame(m.Header)
	if err != nil {
		return Frame{}, fmt.Errorf("%w: stream sequence %d on %s: %w", errNotFrame, m.Sequence, m.Subject, err)
	}
	return Frame{Frame: wf, JPEG: m.Data, StreamSeq: m.Sequence, Stored: m.Time}, nil
}

// consumedFrame parses a message delivered by a consumer, and returns the
// number of messages of the consumer's subject stored after it.
func consumedFrame(m jetstream.Msg) (Frame, uint64, error) {
	meta, err := m.Metadata()
	if err != nil {
		return Frame{}, 0, err
	}
	wf, err := wire.ParseFrame(m.Headers())
	if err != nil {
		return Frame{}, meta.NumPending, fmt.Errorf("%w: stream sequence %d on %s: %w", errNotFrame, meta.Sequence.Stream, m.Subject(), err)
	}
	return Frame{Frame: wf, JPEG: m.Data(), StreamSeq: meta.Sequence.Stream, Stored: meta.Timestamp}, meta.NumPending, nil
}

// Snapshot returns the newest frame of camera id in the buffer, at once: it
// does not wait for the camera's next frame.
func Snapshot(ctx context.Context, js jetstream.JetStream, id string) (Frame, error) {
	if err := validID(id); err != nil {
		return Frame{}, err
	}
	st, err := framesStream(ctx, js)
	if err != nil {
		return Frame{}, err
	}
	return newest(ctx, st, id)
}

func newest(ctx context.Context, st jetstream.Stream, id string) (Frame, error) {
	m, err := st.GetLastMsgForSubject(ctx, wire.FramesSubject(id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Frame{}, noFrames(id)
	}
	if err != nil {
		return Frame{}, fmt.Errorf("camera %q: reading its newest frame: %w", id, err)
	}
	f, err := rawFrame(m)
	if err != nil {
		return Frame{}, fmt.Errorf("camera %q: newest frame: %w", id, err)
	}
	return f, nil
}

// oldest returns the oldest frame of camera id in the buffer (through a
// consumer filtered to it, which a viewer limited to it may create: see
// firstOn).
func oldest(ctx context.Context, st jetstream.Stream, id string) (Frame, error) {
	m, err := firstOn(ctx, st, wire.FramesSubject(id))
	if err != nil {
		return Frame{}, fmt.Errorf("camera %q: reading its oldest frame: %w", id, err)
	}
	if m == nil {
		return Frame{}, noFrames(id)
	}
	f, _, err := consumedFrame(m)
	if err != nil {
		return Frame{}, fmt.Errorf("camera %q: oldest frame: %w", id, err)
	}
	return f, nil
}

// bounds returns the oldest and newest frames of camera id.
func bounds(ctx context.Context, st jetstream.Stream, id string) (first, last Frame, err error) {
	if last, err = newest(ctx, st, id); err != nil {
		return first, last, err
	}
	if first, err = oldest(ctx, st, id); err != nil {
		return first, last, err
	}
	return first, last, nil
}

// Bounds reports what the buffer holds of camera id: the capture times of
// its oldest and newest frames (access units, for an H.264 camera). A camera with no frames in the buffer gives
// an error wrapping ErrNoFrames.
func Bounds(ctx context.Context, js jetstream.JetStream, id string) (first, last time.Time, err error) {
	f, l, err := Ends(ctx, js, id)
	if errors.Is(err, ErrNoFrames) {
		// an H.264 camera
		vf, vl, verr := VideoEnds(ctx, js, id)
		if verr == nil {
			return vf.Time, vl.Time, nil
		}
	}
	if err != nil {
		return first, last, err
	}
	return f.Time, l.Time, nil
}

// Ends returns the oldest and the newest frame of camera id in the buffer
// (their stream sequences bound a Cursor). A camera with no frames in the
// buffer gives an error wrapping ErrNoFrames.
func Ends(ctx context.Context, js jetstream.JetStream, id string) (first, last Frame, err error) {
	if err := validID(id); err != nil {
		return first, last, err
	}
	st, err := framesStream(ctx, js)
	if err != nil {
		return first, last, err
	}
	return bounds(ctx, st, id)
}

// WriteSnapshot writes the newest picture of camera id to path, a .jpg or
// .jpeg file, and returns the frame (see SnapshotJPEG: an H.264 camera's
// picture is decoded by a decoder from dec). The file appears complete or not at
// all: it is written under a temporary name in the same directory and
// renamed. On failure nothing is left under path (an existing file there is
// kept as it was).
func WriteSnapshot(ctx context.Context, js jetstream.JetStream, id, path string, dec NewVideoDecoder) (Frame, error) {
	if err := NotDir(path, id+".jpg"); err != nil {
		return Frame{}, err
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jpg", ".jpeg":
	default:
		return Frame{}, fmt.Errorf("%w: snapshot %q: the file name must end in .jpg or .jpeg (the frames are JPEGs)", ErrInvalid, path)
	}
	f, err := SnapshotJPEG(ctx, js, id, dec)
	if err != nil {
		return Frame{}, err
	}
	if err := atomicfile.WriteFile(path, f.JPEG); err != nil {
		return Frame{}, err
	}
	return f, nil
}

// NotDir fails, wrapping ErrInvalid, if path names a directory: the file
// written would replace it, which a rename cannot do.
func NotDir(path, example string) error {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("%w: %s is a directory: give a file name, such as %s", ErrInvalid, path, filepath.Join(path, example))
	}
	return nil
}
