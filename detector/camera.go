//go:build cgo

package detector

import (
	"context"
	"errors"
	"image"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"gocv.io/x/gocv"

	"camhub/internal/avcodec"
	"camhub/internal/gopqueue"
	"camhub/internal/motion"
	"camhub/internal/replay"
	"camhub/internal/turbojpeg"
	"camhub/internal/wire"
)

// Limits of an H.264 camera's queue of access units: a detector that
// falls further behind waits for the next keyframe (counted as skipped).
const (
	maxQueuedAUs   = 120
	maxQueuedBytes = 32 << 20
)

// staleAfter: an event of a camera that sent nothing for this long ends
// at its last frame.
const staleAfter = 30 * time.Second

// maxClockJump: a capture time this far before the last analysed one (an
// agent restarted with another clock) restarts the rate limit.
const maxClockJump = 10 * time.Second

// camera is one camera's analysis: the newest live frame (JPEG) or its
// queue of access units (H.264), handed from the subscription to the
// camera's goroutine, which owns every native resource.
type camera struct {
	d   *Detector
	id  string
	set motion.Camera

	mu     sync.Mutex
	newest *nats.Msg // JPEG: the newest frame not analysed yet
	wake   chan struct{}

	video   *gopqueue.Queue
	catchUp atomic.Bool // the queue asked for the newest GOP from the buffer
	pattern atomic.Bool // it sends the test pattern: not analysed (testpattern.go)

	// the goroutine's own
	det       *motion.Detector
	next      time.Time // capture time of the next picture due for analysis
	lastWall  time.Time // when the last frame was analysed or decoded
	ev        *wire.Event
	evVideo   bool
	clip      *clipCopy
	lastFrame time.Time
	th        thumbMaker // thumb.go
	thumbSrc  []byte     // the JPEG frame being analysed, for its thumbnail
	thumbPic  gocv.Mat   // the picture being analysed, and its capture time
	thumbTime time.Time
	snapNext  time.Time // capture time of the next snapshot (snapshot.go)
}

func newCamera(d *Detector, id string, set motion.Camera) *camera {
	return &camera{d: d, id: id, set: set, wake: make(chan struct{}, 1), video: gopqueue.New(maxQueuedAUs, maxQueuedBytes)}
}

func (c *camera) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// pushJPEG hands over a live JPEG frame: the newest wins.
func (c *camera) pushJPEG(m *nats.Msg) {
	c.mu.Lock()
	if c.newest != nil {
		c.d.skipped.Add(1)
	}
	c.newest = m
	c.mu.Unlock()
	c.poke()
}

// pushVideo queues a live access unit.
func (c *camera) pushVideo(m *nats.Msg) {
	v, err := wire.ParseVideo(m.Header)
	if err == nil {
		if _, key, serr := wire.ParseVideoSubject(m.Subject); serr != nil || key != v.Key {
			err = wire.ErrBadVideo
		}
	}
	if err != nil || len(m.Data) == 0 {
		c.d.bad.Add(1)
		return
	}
	if c.video.Push(replay.AU{Video: v, Data: m.Data, Stored: time.Now()}) {
		c.catchUp.Store(true)
	}
	c.poke()
}

// run analyses the camera until ctx ends.
func (c *camera) run(ctx context.Context) {
	log := c.d.log.With("camera", c.id)
	det, err := motion.New(c.set.Motion)
	if err != nil { // checked in New
		log.Error("motion detector", "error", err)
		return
	}
	c.det = det
	defer det.Close()
	jd, err := turbojpeg.NewDecoder(true)
	if err != nil {
		log.Error("JPEG decoder", "error", err)
		return
	}
	defer jd.Close()
	var vd *avcodec.Decoder // made for the first access unit
	defer func() {
		if vd != nil {
			vd.Close()
		}
	}()
	pic := gocv.NewMat()
	defer pic.Close()
	defer c.th.close()
	c.checkPattern(ctx)
	c.resume(ctx)

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if c.ev != nil && !c.lastWall.IsZero() && now.Sub(c.lastWall) > staleAfter+c.set.Motion.OffDelay {
				// the camera went quiet during an event
				c.end(ctx, c.lastFrame)
			}
			continue
		case <-c.wake:
		}

		c.mu.Lock()
		m := c.newest
		c.newest = nil
		c.mu.Unlock()
		if c.pattern.Load() {
			c.skipPattern(m)
			continue
		}
		if m != nil {
			c.jpeg(ctx, jd, m, &pic)
		}

		if c.catchUp.Swap(false) {
			gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			gop, err := replay.NewestGOP(gctx, c.d.js, c.id)
			cancel()
			if err != nil {
				gop = nil
			}
			c.video.CaughtUp(gop)
		}
		aus, _ := c.video.Take()
		for _, a := range aus {
			if vd == nil {
				if vd, err = avcodec.NewDecoder(); err != nil {
					log.Error("H.264 decoder", "error", err)
					vd = nil
					break
				}
			}
			ok, err := vd.Decode(a.Data, &pic)
			if err != nil && !errors.Is(err, avcodec.ErrDamaged) {
				if !errors.Is(err, avcodec.ErrNeedKeyframe) {
					c.d.bad.Add(1)
				}
				continue
			}
			if !ok {
				continue
			}
			c.snapshot(pic, a.Time)
			if !c.due(a.Time) {
				c.d.skipped.Add(1)
				continue
			}
			c.analyse(ctx, pic, a.Time, true)
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// due reports whether a picture captured at t is to be analysed: at most
// FPS a second of capture time.
func (c *camera) due(t time.Time) bool {
	if !c.next.IsZero() && t.Before(c.next) && c.next.Sub(t) < maxClockJump+time.Duration(float64(time.Second)/c.set.FPS) {
		return false
	}
	c.next = t.Add(time.Duration(float64(time.Second) / c.set.FPS))
	return true
}

// jpeg decodes and analyses a JPEG frame, if it is due.
func (c *camera) jpeg(ctx context.Context, jd *turbojpeg.Decoder, m *nats.Msg, pic *gocv.Mat) {
	f, err := wire.ParseFrame(m.Header)
	if err != nil || !wire.LooksLikeJPEG(m.Data) {
		c.d.bad.Add(1)
		return
	}
	if !c.due(f.Time) {
		c.d.skipped.Add(1)
		return
	}
	if _, err := jd.Decode(m.Data, image.Pt(1, c.set.Motion.Height), pic); err != nil && pic.Empty() {
		c.d.bad.Add(1)
		return
	}
	c.thumbSrc = m.Data
	c.analyse(ctx, *pic, f.Time, false)
	c.thumbSrc = nil
}

// analyse runs the motion detector on a picture captured at t and acts on
// what it says.
func (c *camera) analyse(ctx context.Context, pic gocv.Mat, t time.Time, video bool) {
	r, err := c.det.Analyse(pic, t)
	if err != nil {
		c.d.bad.Add(1)
		return
	}
	c.d.analysed.Add(1)
	c.lastWall, c.lastFrame = time.Now(), t
	if r.Started {
		c.thumbPic, c.thumbTime = pic, t
		c.start(ctx, r, video)
	}
	if c.ev != nil && r.Motion {
		c.ev.Frames++
		if r.Score > c.ev.Score {
			c.ev.Score, c.ev.Boxes = r.Score, r.Boxes
		}
	}
	if r.Ended {
		c.end(ctx, r.End)
	}
}

// start begins an event: motion ON, the event stored, its clip copied.
func (c *camera) start(ctx context.Context, r motion.Result, video bool) {
	if c.ev != nil { // a resumed event the detector did not know of
		c.end(ctx, r.Start)
	}
	eid := wire.EventID(c.id, r.Start)
	codec := wire.CodecJPEG
	if video {
		codec = wire.CodecH264
	}
	c.ev = &wire.Event{
		ID: eid, Camera: c.id, Start: r.Start, Score: r.Score, Boxes: r.Boxes, Source: "motion",
		Clip: wire.Clip{Stream: wire.ClipsStream, Subject: wire.ClipFilter(eid, c.id), From: r.Start.Add(-c.set.PreRoll), Codec: codec},
	}
	if c.ev.Boxes == nil {
		c.ev.Boxes = []wire.Box{}
	}
	c.evVideo = video
	c.d.events.Add(1)
	c.d.log.Info("motion", "camera", c.id, "event", eid, "start", r.Start, "score", r.Score)
	c.d.publishMotion(wire.Motion{Camera: c.id, State: wire.MotionOn, Time: r.Start, Event: eid, Score: r.Score})
	c.thumb(ctx) // stored before the event, so that who reads the event finds it
	ev := *c.ev
	if err := c.d.publishEvent(ctx, &ev, eid+".start"); err != nil {
		c.d.log.Warn("event", "camera", c.id, "event", eid, "error", err)
	}
	c.clip = c.d.startClip(ev, video, time.Time{}, wire.Clip{})
}

// end ends the event at end: motion OFF; the clip is copied on to end +
// post-roll, and the event stored again with its end and clip.
func (c *camera) end(ctx context.Context, end time.Time) {
	if c.ev == nil {
		return
	}
	if end.Before(c.ev.Start) {
		end = c.ev.Start
	}
	c.ev.End = end
	c.ev.Clip.To = end.Add(c.set.PostRoll)
	c.d.log.Info("motion over", "camera", c.id, "event", c.ev.ID, "end", end, "score", c.ev.Score)
	c.d.publishMotion(wire.Motion{Camera: c.id, State: wire.MotionOff, Time: end, Event: c.ev.ID, Score: c.ev.Score})
	c.clip.finish(*c.ev)
	c.ev, c.clip = nil, nil
	c.det.Stop() // when the camera went quiet, the detector's event ends too
}

// resume carries on an event that the newest record in EVENTS says is
// still open: one a detector (this one, before a restart) left behind.
func (c *camera) resume(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ev, err := replay.LastEvent(rctx, c.d.js, c.id)
	if err != nil || ev == nil || !ev.Open() {
		return
	}
	copied, err := c.d.clipSoFar(rctx, ev.ID)
	if err != nil {
		c.d.log.Warn("resuming event", "camera", c.id, "event", ev.ID, "error", err)
		return
	}
	last := ev.Start
	if copied.Last.After(last) {
		last = copied.Last
	}
	c.d.log.Info("resuming event", "camera", c.id, "event", ev.ID, "start", ev.Start, "copied", copied.Frames)
	c.ev = ev
	c.evVideo = ev.Clip.Codec == wire.CodecH264
	c.det.Resume(ev.Start, last)
	c.clip = c.d.startClip(*ev, c.evVideo, copied.Last, copied)
}
