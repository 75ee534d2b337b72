//go:build cgo

package detector

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/replay"
	"camhub/internal/wire"
)

// A clip is copied while its event lasts: from the pre-roll before the
// event's start (for H.264 from the keyframe at or before it) through to
// the post-roll after its end, message by message as the buffer stores
// them, each with the message id <event-id>.<kind>.<Frame-Time>.<Frame-Seq>
// so that copying a frame again (after a restart) stores nothing.

// seekMargin: JetStream seeks by the time a frame was stored, a clip by
// its capture time; starting this much earlier covers clocks this far
// apart (frames captured earlier are skipped).
const seekMargin = 5 * time.Second

// quietEnd: a clip whose end is known but whose camera sends nothing more
// for this long is finished with what it has.
const quietEnd = 10 * time.Second

// clipCopy is one clip being copied, by its own goroutine.
type clipCopy struct {
	end chan wire.Event // the event once it ended: the clip's To is known
}

// finish says the event ended; the copier stores the event when the clip
// is complete.
func (cc *clipCopy) finish(ev wire.Event) {
	if cc == nil {
		return
	}
	select {
	case cc.end <- ev:
	default:
	}
}

// startClip starts copying ev's clip, of frames captured after after (all
// from ev.Clip.From if zero), with so far what was copied before.
func (d *Detector) startClip(ev wire.Event, video bool, after time.Time, so wire.Clip) *clipCopy {
	cc := &clipCopy{end: make(chan wire.Event, 1)}
	d.wg.Go(func() {
		log := d.log.With("camera", ev.Camera, "event", ev.ID)
		clip, final, err := d.copyClip(d.ctx, ev, video, after, so, cc.end)
		if d.ctx.Err() != nil {
			return // stopped: a detector started later carries on
		}
		if err != nil {
			log.Warn("clip", "error", err)
			clip.Missing = err.Error()
		}
		final.Clip = clip
		if err := d.publishEvent(d.ctx, &final, final.ID+".end"); err != nil {
			log.Warn("event", "error", err)
			return
		}
		log.Info("clip stored", "frames", clip.Frames, "bytes", clip.Bytes, "first", clip.First, "last", clip.Last)
	})
	return cc
}

// copyClip copies the clip until the event ends and its post-roll is
// copied; it returns the clip and the final event.
func (d *Detector) copyClip(ctx context.Context, ev wire.Event, video bool, after time.Time, so wire.Clip, endc <-chan wire.Event) (wire.Clip, wire.Event, error) {
	clip := ev.Clip
	clip.First, clip.Last, clip.Frames, clip.Bytes = so.First, so.Last, so.Frames, so.Bytes
	final := ev
	from := clip.From
	if !after.IsZero() {
		from = after
	}
	var to time.Time // unknown until the event ends
	filter := wire.FramesSubject(ev.Camera)
	cfg := jetstream.OrderedConsumerConfig{NamePrefix: replay.ConsumerNamePrefix(), InactiveThreshold: time.Minute}
	if video {
		filter = wire.VideoFilter(ev.Camera)
		seq, err := replay.KeyframeAt(ctx, d.js, ev.Camera, from)
		if err != nil {
			return clip, final, err
		}
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, seq
	} else {
		seek := from.Add(-seekMargin)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &seek
	}
	cfg.FilterSubjects = []string{filter}
	cons, err := d.js.OrderedConsumer(ctx, wire.FramesStream, cfg)
	if err != nil {
		return clip, final, fmt.Errorf("reading the replay buffer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(16))
	if err != nil {
		return clip, final, fmt.Errorf("reading the replay buffer: %w", err)
	}
	defer func() {
		it.Stop()
		if info := cons.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = d.js.DeleteConsumer(dctx, wire.FramesStream, info.Name)
			cancel()
		}
	}()
	quiet := time.Now()
	started := !after.IsZero() // a resumed clip has its keyframe
	for {
		select {
		case e := <-endc:
			final, to = e, e.Clip.To
			clip.To = to
		default:
		}
		nctx, cancel := context.WithTimeout(ctx, time.Second)
		m, err := it.Next(jetstream.NextContext(nctx))
		cancel()
		if ctx.Err() != nil {
			return clip, final, ctx.Err()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			if !to.IsZero() && time.Since(quiet) > quietEnd {
				return clip, final, nil // the camera stopped sending
			}
			continue
		}
		if err != nil {
			return clip, final, fmt.Errorf("reading the replay buffer: %w", err)
		}
		quiet = time.Now()
		var f wire.Frame
		key := false
		if video {
			v, err := wire.ParseVideo(m.Headers())
			if err != nil {
				d.bad.Add(1)
				continue
			}
			f, key = v.Frame, v.Key
		} else if f, err = wire.ParseFrame(m.Headers()); err != nil {
			d.bad.Add(1)
			continue
		}
		if !after.IsZero() && !f.Time.After(after) {
			continue // copied before
		}
		switch {
		case video && !started && !key:
			continue
		case video:
			started = true // from the keyframe at or before the pre-roll on
		case after.IsZero() && f.Time.Before(clip.From):
			continue
		}
		if !to.IsZero() && f.Time.After(to) {
			return clip, final, nil
		}
		meta, _ := m.Metadata()
		var src uint64
		if meta != nil {
			src = meta.Sequence.Stream
		}
		if err := d.storeClipMsg(ctx, ev.ID, m, f, src); err != nil {
			return clip, final, err
		}
		if clip.Frames == 0 {
			clip.First = f.Time
		}
		clip.Frames++
		clip.Bytes += int64(len(m.Data()))
		clip.Last = f.Time
	}
}

// storeClipMsg stores a copy of m, a frame captured as f, in CLIPS.
func (d *Detector) storeClipMsg(ctx context.Context, eid string, m jetstream.Msg, f wire.Frame, src uint64) error {
	h := wire.ClipHeader(m.Headers())
	kind := wire.KindFrames
	if _, key, err := wire.ParseVideoSubject(m.Subject()); err == nil {
		kind = wire.VideoDelta
		if key {
			kind = wire.VideoKey
		}
	}
	h.Set(wire.HeaderMsgID, eid+"."+kind+"."+strconv.FormatInt(f.Time.UnixNano(), 10)+"."+strconv.FormatUint(f.Seq, 10))
	h.Set(wire.HeaderClipSource, strconv.FormatUint(src, 10))
	msg := &nats.Msg{Subject: wire.ClipSubject(eid, m.Subject()), Header: h, Data: m.Data()}
	return d.storeClip(ctx, msg, &d.copied, "the clip")
}

// storeClip stores msg, a part of an event's clip (what), in CLIPS,
// retrying while the hub starts, and counts it in stored unless JetStream
// already had it (a copy made again after a restart).
func (d *Detector) storeClip(ctx context.Context, msg *nats.Msg, stored *atomic.Uint64, what string) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var ack *jetstream.PubAck
		ack, err = d.js.PublishMsg(pctx, msg)
		cancel()
		if err == nil {
			if !ack.Duplicate {
				stored.Add(1)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
	return fmt.Errorf("storing %s in %s: %w", what, wire.ClipsStream, err)
}

// clipSoFar reads the headers of what CLIPS holds of event eid.
func (d *Detector) clipSoFar(ctx context.Context, eid string) (wire.Clip, error) {
	var c wire.Clip
	err := replay.ReadClip(ctx, d.js, eid, true, func(m jetstream.Msg, f wire.Frame) error {
		if c.Frames == 0 {
			c.First = f.Time
		}
		c.Frames++
		c.Last = f.Time
		if n, err := strconv.ParseInt(m.Headers().Get(nats.MsgSize), 10, 64); err == nil {
			c.Bytes += n
		}
		return nil
	})
	return c, err
}
