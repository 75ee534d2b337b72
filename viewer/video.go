package viewer

import (
	"context"
	"errors"
	"fmt"
	"image"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"gocv.io/x/gocv"

	"camhub/internal/avcodec"
	"camhub/internal/replay"
	"camhub/internal/turbojpeg"
	"camhub/internal/wire"
)

// H.264 tiles: each camera's access units wait in a gopqueue.Queue (see
// there: bounded latency, skips counted, catch-up from the buffer) until
// the grid decodes them with the tile's own decoder.

// Limits of a camera's queue of access units.
const (
	maxQueuedAUs   = 120
	maxQueuedBytes = 32 << 20
)

// onVideo takes a live access unit of the slot's camera.
func (s *slot) onVideo(m *nats.Msg) { s.takeVideo(m, false) }

// onLoVideo takes a live access unit of the camera's small tier.
func (s *slot) onLoVideo(m *nats.Msg) { s.takeVideo(m, true) }

// takeVideo queues an access unit of the small tier (lo) or the main one,
// if the tile shows that tier (tier.go). A tier's first access unit that
// is not a keyframe asks for a catch-up: from the hub's buffer for the
// main tier; the small tier, live only, waits for its next keyframe.
func (s *slot) takeVideo(m *nats.Msg, lo bool) {
	if err := wire.CheckLive(m); err != nil {
		s.feed.badMessage(s.id, "video", err)
		return
	}
	v, err := wire.ParseVideo(m.Header)
	if err == nil {
		var key, video bool
		var serr error
		if lo {
			_, video, key, serr = wire.ParseLoSubject(m.Subject)
		} else {
			_, key, serr = wire.ParseVideoSubject(m.Subject)
			video = true
		}
		if serr != nil || !video || key != v.Key {
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
	if !s.accept(lo) {
		return
	}
	s.received.Add(1)
	q := s.video
	if lo {
		q = s.loVideo
	}
	if q.Push(replay.AU{Video: v, Data: m.Data, Stored: time.Now()}) {
		if lo {
			q.CaughtUp(nil)
		} else {
			s.feed.catchUp(s)
		}
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
		s.video.CaughtUp(nil) // no buffer: wait for a keyframe
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
		s.video.CaughtUp(gop)
	})
}

// decodeVideo decodes the access units queued for tile t, in order, and
// shows the newest picture: of both tiers while a switch is under way
// (tier.go), the wanted tier's last. It reports whether the tile changed.
// Access units a decoder rejects are counted; the decoder goes on.
func (g *Grid) decodeVideo(t *tile) (bool, error) {
	want := t.slot.lo.Load()
	old, skipOld, oldErr := g.decodeTier(t, !want)
	shown, skip, err := g.decodeTier(t, want)
	t.skipped = skipOld + skip
	if err == nil {
		err = oldErr
	}
	return old || shown, err
}

// decodeTier decodes the access units queued for the small tier of tile t
// (lo) or its main tier with that tier's own decoder, made at the tier's
// first keyframe, and shows the newest picture. Those of a tier the tile no
// longer shows are dropped undecoded. A picture of the wanted tier ends
// a switch. It also returns how many access units the tier's queue has
// skipped.
func (g *Grid) decodeTier(t *tile, lo bool) (_ bool, skipped uint64, _ error) {
	s := t.slot
	q, dec := s.video, &t.vdec
	if lo {
		q, dec = s.loVideo, &t.loDec
	}
	aus, skipped := q.Take()
	if len(aus) == 0 || !s.shows(lo) {
		return false, skipped, nil
	}
	if *dec == nil {
		d, err := avcodec.NewDecoder()
		if err != nil {
			return false, skipped, err
		}
		*dec = d
	}
	var shown *replay.AU
	var firstErr error
	for i := range aus {
		ok, err := (*dec).Decode(aus[i].Data, &t.raw)
		if err != nil && !(ok && errors.Is(err, avcodec.ErrDamaged)) {
			t.bad++
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if ok && !aus[i].Preroll {
			shown = &aus[i]
			t.decoded++
		}
	}
	if shown == nil {
		return false, skipped, firstErr
	}
	got := image.Pt(t.raw.Cols(), t.raw.Rows())
	size := Fit(got, t.rect.Size())
	if size.X == 0 {
		return false, skipped, firstErr
	}
	gocv.Resize(t.raw, &t.pic, size, 0, 0, interpolation(got, size))
	t.picRect = Centre(size, t.rect)
	f := shown.Frame
	f.Width, f.Height = got.X, got.Y
	behind := s.feed.rewound && time.Since(f.Time) > time.Second
	t.frame, t.good, t.behind, t.video, t.lo = f, shown.Stored, behind, true, lo
	t.scale = turbojpeg.Scale{Num: 1, Denom: 1}
	if s.lo.Load() == lo {
		// the queue starts at a keyframe: this decoder was fed from one
		s.arrived.Store(true)
	}
	return true, skipped, firstErr
}

// rewindVideo plays the H.264 cameras among ids from the buffer from start
// at speed, as the replay player does JPEG cameras, and on into live: each
// from its keyframe at or before start, the access units before start
// decoded but not shown. It runs in goroutines Close stops; cameras with
// no access units in the buffer are left alone. f.mu is held; without
// UseBuffer it does nothing.
func (f *Feed) rewindVideo(ids []string, start time.Time, speed float64) {
	if f.js == nil {
		return
	}
	js, ctx := f.js, f.ctx
	wall := time.Now()
	for _, id := range ids {
		s := f.slots[id]
		f.wg.Go(func() {
			err := replay.PlayVideo(ctx, js, id, start, wall, speed, func(a replay.AU) {
				s.received.Add(1)
				s.video.Push(a)
			})
			if err != nil && ctx.Err() == nil {
				f.log.Load().Warn("cannot rewind an H.264 camera", "camera", id, "error", err)
			}
		})
	}
}
