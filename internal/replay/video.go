package replay

import (
	"context"
	"errors"
	"fmt"
	"image"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/wire"
)

// AU is one H.264 access unit read from the buffer.
type AU struct {
	wire.Video           // its headers: Frame-Seq, Frame-Time, size, codec, key, PTS/DTS
	Data       []byte    // the Annex B access unit; owned by the receiver
	StreamSeq  uint64    // its sequence in the CAMS stream
	Stored     time.Time // when the hub stored it (the hub's clock)
	// Preroll: decode it but do not show it (a rewind's access units
	// before the time asked for, from the keyframe before it).
	Preroll bool
}

// VideoDecoder decodes one camera's H.264 access units, given in decode
// order from a keyframe on, and encodes its newest picture as a JPEG. This
// package needs no cgo: programs that can decode (the viewer) give an
// implementation (package videojpeg) to the functions that need one.
type VideoDecoder interface {
	// Decode decodes an access unit and reports whether it gave a
	// picture. An error is about that access unit alone: the decoder
	// goes on with the next.
	Decode(au []byte) (bool, error)
	// JPEG encodes the newest picture decoded at quality (1-100),
	// appending it to dst[:0]. It fails before the first picture.
	JPEG(quality int, dst []byte) ([]byte, error)
	// Size is the size of the newest picture; zero before the first.
	Size() image.Point
	// Close frees the decoder.
	Close() error
}

// NewVideoDecoder makes a VideoDecoder; nil where a program cannot decode
// H.264.
type NewVideoDecoder func() (VideoDecoder, error)

// ErrNoDecoder: an H.264 camera's pictures were asked of a program built
// without a decoder.
var ErrNoDecoder = errors.New("no H.264 decoder")

// SnapshotQuality is the JPEG quality of a snapshot of an H.264 camera.
const SnapshotQuality = 85

// rawAU parses a video message read from the stream by sequence or subject.
func rawAU(m *jetstream.RawStreamMsg) (AU, error) {
	v, err := wire.ParseVideo(m.Header)
	if err != nil {
		return AU{}, fmt.Errorf("%w: stream sequence %d on %s: %w", errNotFrame, m.Sequence, m.Subject, err)
	}
	return AU{Video: v, Data: m.Data, StreamSeq: m.Sequence, Stored: m.Time}, nil
}

// consumedAU parses a video message delivered by a consumer.
func consumedAU(m jetstream.Msg) (AU, error) {
	meta, err := m.Metadata()
	if err != nil {
		return AU{}, err
	}
	v, err := wire.ParseVideo(m.Headers())
	if err != nil {
		return AU{}, fmt.Errorf("%w: stream sequence %d on %s: %w", errNotFrame, meta.Sequence.Stream, m.Subject(), err)
	}
	return AU{Video: v, Data: m.Data(), StreamSeq: meta.Sequence.Stream, Stored: meta.Timestamp}, nil
}

// lastVideo returns the newest message of camera id on subject (a direct
// get), or an error wrapping ErrNoFrames.
func lastVideo(ctx context.Context, st jetstream.Stream, id, subject string) (AU, error) {
	m, err := st.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return AU{}, noFrames(id)
	}
	if err != nil {
		return AU{}, fmt.Errorf("camera %q: reading its newest access unit: %w", id, err)
	}
	a, err := rawAU(m)
	if err != nil {
		return AU{}, fmt.Errorf("camera %q: newest access unit: %w", id, err)
	}
	return a, nil
}

// VideoEnds returns the oldest and the newest access unit of camera id in
// the buffer (keyframe or not). A camera with no video in the buffer gives
// an error wrapping ErrNoFrames.
func VideoEnds(ctx context.Context, js jetstream.JetStream, id string) (first, last AU, err error) {
	if err := validID(id); err != nil {
		return first, last, err
	}
	st, err := framesStream(ctx, js)
	if err != nil {
		return first, last, err
	}
	return videoEnds(ctx, st, id)
}

func videoEnds(ctx context.Context, st jetstream.Stream, id string) (first, last AU, err error) {
	last, err = lastVideo(ctx, st, id, wire.VideoSubject(id, true))
	if err != nil {
		return first, last, err
	}
	if d, err := lastVideo(ctx, st, id, wire.VideoSubject(id, false)); err == nil && d.StreamSeq > last.StreamSeq {
		last = d
	}
	m, err := firstOn(ctx, st, wire.VideoFilter(id))
	if err != nil {
		return first, last, fmt.Errorf("camera %q: reading its oldest access unit: %w", id, err)
	}
	if m == nil {
		return first, last, noFrames(id)
	}
	if first, err = consumedAU(m); err != nil {
		return first, last, fmt.Errorf("camera %q: oldest access unit: %w", id, err)
	}
	return first, last, nil
}

// VideoCursor reads one camera's access units from the buffer in stream
// (decode) order, through to the newest stored: none twice and none missed.
// Messages on the camera's video subjects that are not camhub access units
// are skipped and counted.
type VideoCursor struct {
	r   *reader
	bad int
}

// VideoCursorOptions says where a VideoCursor starts and what it reads.
type VideoCursorOptions struct {
	// StartSeq, if set, is the stream sequence of the first access unit
	// read; otherwise StartTime, if set, is when the hub stored the first
	// (no earlier than it); neither: the cursor starts at the oldest.
	StartSeq  uint64
	StartTime time.Time
	// KeysOnly reads keyframes alone.
	KeysOnly bool
	// HeadersOnly reads the headers without the access units.
	HeadersOnly bool
	// Pull is how many messages the client holds at once (default 1).
	Pull int
}

// OpenVideoCursor opens a cursor on camera id's access units. Close it.
func OpenVideoCursor(ctx context.Context, js jetstream.JetStream, id string, o VideoCursorOptions) (*VideoCursor, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	cfg := jetstream.OrderedConsumerConfig{HeadersOnly: o.HeadersOnly}
	switch {
	case o.StartSeq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, o.StartSeq
	case !o.StartTime.IsZero():
		start := o.StartTime
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	filter := wire.VideoFilter(id)
	if o.KeysOnly {
		filter = wire.VideoSubject(id, true)
	}
	r, err := openFiltered(ctx, js, id, filter, cfg, max(o.Pull, 1))
	if err != nil {
		return nil, err
	}
	return &VideoCursor{r: r}, nil
}

// Next returns the next access unit. ok is false, with no error, when the
// access units the server last said were stored have all been read.
func (c *VideoCursor) Next(ctx context.Context) (a AU, ok bool, err error) {
	return c.read(ctx, func() bool { return c.r.pending > 0 })
}

// Wait returns the next access unit, waiting for it to be stored if need
// be: a cursor that carries on into live.
func (c *VideoCursor) Wait(ctx context.Context) (AU, error) {
	a, _, err := c.read(ctx, func() bool { return true })
	return a, err
}

// read returns the next access unit while more holds, skipping (and
// counting) messages that are not access units.
func (c *VideoCursor) read(ctx context.Context, more func() bool) (AU, bool, error) {
	for more() {
		m, err := c.r.next(ctx)
		if err != nil {
			return AU{}, false, err
		}
		if m == nil {
			continue
		}
		a, err := consumedAU(m)
		if errors.Is(err, errNotFrame) {
			c.bad++
			continue
		}
		if err != nil {
			return AU{}, false, err
		}
		return a, true, nil
	}
	return AU{}, false, nil
}

// KeyframeAt returns the stream sequence of camera id's newest keyframe
// captured at or before t, or its oldest keyframe if all are later; an
// error wrapping ErrNoFrames if the buffer holds none. It reads the
// headers of the camera's keyframes.
func KeyframeAt(ctx context.Context, js jetstream.JetStream, id string, t time.Time) (uint64, error) {
	seq, _, err := keyframeBefore(ctx, js, id, t, time.Time{})
	if err == nil && seq == 0 {
		err = noFrames(id)
	}
	return seq, err
}

// keyframeBefore reads the headers of camera id's keyframes captured from
// from on (zero: all of them): it returns the stream sequence and capture
// time of the newest captured at or before t, else of the oldest (after
// t); a sequence of 0 if there is none.
func keyframeBefore(ctx context.Context, js jetstream.JetStream, id string, t, from time.Time) (seq uint64, at time.Time, err error) {
	c, err := OpenVideoCursor(ctx, js, id, VideoCursorOptions{KeysOnly: true, HeadersOnly: true, Pull: 256, StartTime: from})
	if err != nil {
		return 0, at, err
	}
	defer c.Close()
	for {
		a, ok, err := c.Next(ctx)
		if err != nil {
			return 0, at, fmt.Errorf("camera %q: reading its keyframes: %w", id, err)
		}
		if !ok || (seq != 0 && a.Time.After(t)) {
			return seq, at, nil
		}
		seq, at = a.StreamSeq, a.Time
	}
}

// Bad is the number of messages skipped because they were not camhub
// access units.
func (c *VideoCursor) Bad() int { return c.bad }

// Close stops reading and deletes the consumer on the server.
func (c *VideoCursor) Close() { c.r.close() }

// NewestGOP returns the newest keyframe of camera id in the buffer (a
// direct get) and every access unit stored after it up to the newest when
// it was called: what a decoder needs for the newest picture. Damaged
// messages are left out.
func NewestGOP(ctx context.Context, js jetstream.JetStream, id string) ([]AU, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	st, err := framesStream(ctx, js)
	if err != nil {
		return nil, err
	}
	return newestGOP(ctx, js, st, id)
}

func newestGOP(ctx context.Context, js jetstream.JetStream, st jetstream.Stream, id string) ([]AU, error) {
	key, err := lastVideo(ctx, st, id, wire.VideoSubject(id, true))
	if errors.Is(err, errNotFrame) {
		// garbage on the keyframe subject: the newest good keyframe
		// before it, found the slow way (headers of every keyframe)
		key, err = lastGoodKey(ctx, js, id)
	}
	if err != nil {
		return nil, err
	}
	last := key.StreamSeq
	if m, err := st.GetLastMsgForSubject(ctx, wire.VideoSubject(id, false)); err == nil && m.Sequence > last {
		last = m.Sequence // what it holds does not matter: the cursor skips garbage
	}
	gop := []AU{key}
	if last == key.StreamSeq {
		return gop, nil
	}
	c, err := OpenVideoCursor(ctx, js, id, VideoCursorOptions{StartSeq: key.StreamSeq + 1, Pull: 16})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	for {
		a, ok, err := c.Next(ctx)
		if err != nil {
			return nil, fmt.Errorf("camera %q: reading its newest access units: %w", id, err)
		}
		if !ok || a.StreamSeq > last {
			return gop, nil
		}
		gop = append(gop, a)
		if a.StreamSeq == last {
			return gop, nil
		}
	}
}

// DecodeNewest decodes gop (NewestGOP's) with a decoder made by dec and
// returns a JPEG of its newest picture, described as a Frame: the headers
// of the access unit that gave it.
func DecodeNewest(id string, gop []AU, dec NewVideoDecoder) (Frame, error) {
	if dec == nil {
		return Frame{}, fmt.Errorf("camera %q sends H.264: %w in this program", id, ErrNoDecoder)
	}
	d, err := dec()
	if err != nil {
		return Frame{}, fmt.Errorf("camera %q: %w", id, err)
	}
	defer d.Close()
	var shown *AU
	var lastErr error
	for i := range gop {
		ok, err := d.Decode(gop[i].Data)
		if err != nil {
			lastErr = err
		}
		if ok {
			shown = &gop[i]
		}
	}
	if shown == nil {
		if lastErr == nil {
			lastErr = errors.New("no picture")
		}
		return Frame{}, fmt.Errorf("camera %q: %w: its newest keyframe and the %d access units after it decode to no picture: %w",
			id, ErrNoFrames, len(gop)-1, lastErr)
	}
	data, err := d.JPEG(SnapshotQuality, nil)
	if err != nil {
		return Frame{}, fmt.Errorf("camera %q: encoding its newest picture: %w", id, err)
	}
	f := shown.Frame
	if sz := d.Size(); sz.X > 0 {
		f.Width, f.Height = sz.X, sz.Y
	}
	return Frame{Frame: f, JPEG: data, StreamSeq: shown.StreamSeq, Stored: shown.Stored}, nil
}

// SnapshotJPEG returns the newest picture of camera id as a JPEG, whatever
// its codec: the newest JPEG frame as stored, or for an H.264 camera its
// newest keyframe and the access units after it decoded by a decoder from
// dec and encoded. A camera with both (its codec changed) gives the newer.
func SnapshotJPEG(ctx context.Context, js jetstream.JetStream, id string, dec NewVideoDecoder) (Frame, error) {
	if err := validID(id); err != nil {
		return Frame{}, err
	}
	st, err := framesStream(ctx, js)
	if err != nil {
		return Frame{}, err
	}
	f, ferr := newest(ctx, st, id)
	if ferr != nil && !errors.Is(ferr, ErrNoFrames) {
		return Frame{}, ferr
	}
	key, verr := lastVideo(ctx, st, id, wire.VideoSubject(id, true))
	if errors.Is(verr, errNotFrame) {
		verr = nil // garbage on the keyframe subject: newestGOP skips it
	}
	switch {
	case verr != nil && !errors.Is(verr, ErrNoFrames):
		return Frame{}, verr
	case verr != nil:
		return f, ferr // JPEG, or no frames at all
	case ferr == nil && f.StreamSeq > key.StreamSeq:
		return f, nil
	}
	gop, err := newestGOP(ctx, js, st, id)
	if err != nil {
		return Frame{}, err
	}
	return DecodeNewest(id, gop, dec)
}

// lastGoodKey returns camera id's newest keyframe with camhub's headers,
// reading the headers of every keyframe in the buffer.
func lastGoodKey(ctx context.Context, js jetstream.JetStream, id string) (AU, error) {
	c, err := OpenVideoCursor(ctx, js, id, VideoCursorOptions{KeysOnly: true, HeadersOnly: true, Pull: 256})
	if err != nil {
		return AU{}, err
	}
	defer c.Close()
	var key AU
	for {
		a, ok, err := c.Next(ctx)
		if err != nil {
			return AU{}, fmt.Errorf("camera %q: reading its keyframes: %w", id, err)
		}
		if !ok {
			break
		}
		key = a
	}
	if key.StreamSeq == 0 {
		return AU{}, noFrames(id)
	}
	// its payload, through a consumer filtered to the keyframes (not a
	// get by sequence: see firstOn)
	kc, err := OpenVideoCursor(ctx, js, id, VideoCursorOptions{KeysOnly: true, StartSeq: key.StreamSeq, Pull: 1})
	if err != nil {
		return AU{}, err
	}
	defer kc.Close()
	a, ok, err := kc.Next(ctx)
	if err == nil && (!ok || a.StreamSeq != key.StreamSeq) {
		err = fmt.Errorf("%w: it left the buffer", ErrNoFrames)
	}
	if err != nil {
		return AU{}, fmt.Errorf("camera %q: reading its newest keyframe: %w", id, err)
	}
	return a, nil
}

// PlayVideo plays camera id's access units from the buffer, as a Player
// does JPEG frames, and on into live through one ordered consumer: from its
// keyframe at or before start, the access unit captured at start+d handed
// to deliver at wall+d/speed; those captured before start at once, marked
// Preroll (decode, do not show). Its Stored is when it was delivered. It
// returns when ctx ends (nil), or at once with nil if the buffer holds no
// access units of the camera.
func PlayVideo(ctx context.Context, js jetstream.JetStream, id string, start, wall time.Time, speed float64, deliver func(AU)) error {
	if !(speed >= MinSpeed && speed <= MaxSpeed) {
		return fmt.Errorf("%w: speed %v: must be from %v to %v (1 is real time)", ErrInvalid, speed, MinSpeed, MaxSpeed)
	}
	seq, err := KeyframeAt(ctx, js, id, start)
	if errors.Is(err, ErrNoFrames) {
		return nil // not an H.264 camera
	}
	if err != nil {
		return err
	}
	c, err := OpenVideoCursor(ctx, js, id, VideoCursorOptions{StartSeq: seq, Pull: 16})
	if err != nil {
		return err
	}
	defer c.Close()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		a, err := c.Wait(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if a.Time.Before(start) {
			a.Preroll = true
		} else if d := time.Until(wall.Add(time.Duration(float64(a.Time.Sub(start)) / speed))); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			}
		}
		a.Stored = time.Now()
		deliver(a)
	}
}
