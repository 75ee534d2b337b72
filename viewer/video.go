package viewer

import (
	"context"
	"errors"
	"fmt"
	"image"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"gocv.io/x/gocv"

	"camhub/internal/avcodec"
	"camhub/internal/replay"
	"camhub/internal/turbojpeg"
	"camhub/internal/wire"
)

// H.264 tiles. A JPEG tile needs only the newest frame; an H.264 tile
// needs every access unit from a keyframe on. So a camera's access units
// wait in a short queue (videoQueue) that always starts at a keyframe or
// continues what the grid decoded last: a new keyframe replaces whatever
// the grid has not yet taken, and a queue that grows past its limits (a
// grid that fell behind) is emptied and waits for the next keyframe. Both
// are counted as skipped: latency stays bounded by about one GOP, as for
// JPEG it is one frame.
//
// A tile shows a picture at once, not after the camera's next keyframe:
// the first access unit of a camera that is not a keyframe makes the feed
// read the newest keyframe and what follows from the hub's buffer
// (replay.NewestGOP), which the grid decodes, showing the newest picture.

// Limits of a camera's queue of access units.
const (
	maxQueuedAUs   = 120
	maxQueuedBytes = 32 << 20
)

// au is one access unit for a tile.
type au struct {
	video wire.Video
	data  []byte
	at    time.Time // received
}

// videoQueue holds a camera's access units until the grid decodes them.
type videoQueue struct {
	mu      sync.Mutex
	aus     []au
	bytes   int
	keyed   bool // aus starts at a keyframe, or continues what was taken
	pending bool // a catch-up from the buffer is under way
	asked   bool // a catch-up was started for this camera
	skipped uint64
}

// push adds a live access unit. It reports whether the camera needs a
// catch-up from the buffer (its first access units are not a keyframe).
func (q *videoQueue) push(a au) (catchUp bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if a.video.Key {
		q.skipped += uint64(len(q.aus)) // not decoded: the keyframe supersedes them
		q.aus, q.bytes, q.keyed = q.aus[:0], 0, true
	}
	if len(q.aus) >= maxQueuedAUs || q.bytes+len(a.data) > maxQueuedBytes {
		// the grid fell behind: wait for the next keyframe
		q.skipped += uint64(len(q.aus)) + 1
		q.aus, q.bytes, q.keyed = q.aus[:0], 0, false
		return false
	}
	if !q.keyed && !q.pending {
		if q.asked {
			q.skipped++ // waiting for a keyframe
			return false
		}
		q.asked, q.pending = true, true
		catchUp = true
	}
	q.aus = append(q.aus, a)
	q.bytes += len(a.data)
	return catchUp
}

// caughtUp puts the access units read from the buffer before the live
// ones received since (those not in gop), unless a live keyframe came
// first.
func (q *videoQueue) caughtUp(gop []replay.AU) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending = false
	if q.keyed || len(gop) == 0 {
		return
	}
	last := gop[len(gop)-1].Seq
	aus := make([]au, 0, len(gop)+len(q.aus))
	bytes := 0
	for _, a := range gop {
		aus = append(aus, au{video: a.Video, data: a.Data, at: time.Now()})
		bytes += len(a.Data)
	}
	for _, a := range q.aus {
		if a.video.Seq > last {
			aus = append(aus, a)
			bytes += len(a.data)
		}
	}
	q.aus, q.bytes, q.keyed = aus, bytes, true
}

// take returns the access units queued since the last take (from a
// keyframe, or continuing the last take) and the count skipped so far.
func (q *videoQueue) take() (aus []au, skipped uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.keyed || len(q.aus) == 0 {
		return nil, q.skipped
	}
	aus = q.aus
	q.aus, q.bytes = nil, 0
	return aus, q.skipped
}

// onVideo takes a live access unit of the slot's camera.
func (s *slot) onVideo(m *nats.Msg) {
	if err := wire.CheckLive(m); err != nil {
		s.feed.badMessage(s.id, "video", err)
		return
	}
	v, err := wire.ParseVideo(m.Header)
	if err == nil {
		if _, key, serr := wire.ParseVideoSubject(m.Subject); serr != nil || key != v.Key {
			err = fmt.Errorf("%w: %s on subject %s", wire.ErrBadVideo, wire.HeaderKey, m.Subject)
		}
	}
	if err == nil && len(m.Data) == 0 {
		err = fmt.Errorf("%w: an empty access unit", wire.ErrBadVideo)
	}
	if err != nil {
		s.feed.badMessage(s.id, wire.KindVideo, err) // counted, not queued
		return
	}
	s.received.Add(1)
	if s.video.push(au{video: v, data: m.Data, at: time.Now()}) {
		s.feed.catchUp(s)
	}
}

// catchUpTimeout bounds reading a camera's newest GOP from the buffer.
const catchUpTimeout = 5 * time.Second

// UseBuffer makes the feed start H.264 tiles from the newest keyframe in
// the hub's replay buffer (see above) through js. Without it, a tile waits
// for its camera's next keyframe. Call it before Subscribe.
func (f *Feed) UseBuffer(js jetstream.JetStream) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.js = js
	if f.stop == nil {
		f.ctx, f.stop = context.WithCancel(context.Background())
	}
}

// catchUp reads the newest GOP of s's camera from the buffer, in a
// goroutine that Close stops and waits for.
func (f *Feed) catchUp(s *slot) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.js == nil || f.ctx.Err() != nil {
		s.video.caughtUp(nil) // no buffer: wait for a keyframe
		return
	}
	js, ctx := f.js, f.ctx
	f.wg.Go(func() {
		cctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
		defer cancel()
		gop, err := replay.NewestGOP(cctx, js, s.id)
		if err != nil && ctx.Err() == nil {
			f.log.Load().Warn("cannot start an H.264 tile from the replay buffer; waiting for the camera's next keyframe", "camera", s.id, "error", err)
		}
		s.video.caughtUp(gop)
	})
}

// onAnyVideo takes an access unit of any camera.
func (f *Feed) onAnyVideo(m *nats.Msg) {
	if err := wire.CheckLive(m); err != nil {
		f.badMessage(m.Subject, "video", err)
		return
	}
	id, _, err := wire.ParseVideoSubject(m.Subject)
	if err != nil {
		f.ignored.Add(1)
		return
	}
	if s := f.add(id); s != nil {
		s.onVideo(m)
	} else {
		f.ignored.Add(1)
	}
}

// decodeVideo decodes the access units queued for tile t, in order, and
// shows the newest picture. It reports whether the tile changed. Access
// units the decoder rejects are counted; the decoder goes on.
func (g *Grid) decodeVideo(t *tile) (bool, error) {
	aus, skipped := t.slot.video.take()
	t.skipped = skipped
	if len(aus) == 0 {
		return false, nil
	}
	if t.vdec == nil {
		d, err := avcodec.NewDecoder()
		if err != nil {
			return false, err
		}
		t.vdec = d
	}
	var shown *au
	var firstErr error
	for i := range aus {
		ok, err := t.vdec.Decode(aus[i].data, &t.raw)
		if err != nil && !(ok && errors.Is(err, avcodec.ErrDamaged)) {
			t.bad++
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if ok {
			shown = &aus[i]
			t.decoded++
		}
	}
	if shown == nil {
		return false, firstErr
	}
	got := image.Pt(t.raw.Cols(), t.raw.Rows())
	size := Fit(got, t.rect.Size())
	if size.X == 0 {
		return false, firstErr
	}
	gocv.Resize(t.raw, &t.pic, size, 0, 0, interpolation(got, size))
	t.picRect = Centre(size, t.rect)
	f := shown.video.Frame
	f.Width, f.Height = got.X, got.Y
	t.frame, t.good, t.behind, t.video = f, shown.at, false, true
	t.scale = turbojpeg.Scale{Num: 1, Denom: 1}
	return true, firstErr
}
