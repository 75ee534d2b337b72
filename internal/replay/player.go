package replay

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/wire"
)

// DefaultMaxLate is how far behind its schedule playback may fall before
// older frames are skipped for newer ones (see Player.MaxLate).
const DefaultMaxLate = 500 * time.Millisecond

// Bounds of the frames a player holds per camera: at most playerPull in the
// NATS client, one in the reader's hands, laneSize on the way to the
// scheduler and queueSize in the scheduler. Whatever the speed or however
// slow deliver is, a camera costs at most
// playerPull+1+laneSize+queueSize frames (MaxHeldPerCamera); the rest stays
// in the stream, which the hub bounds.
const (
	playerPull = 4
	laneSize   = 1
	queueSize  = 2
	// MaxHeldPerCamera is the most frames of one camera a Player holds.
	MaxHeldPerCamera = playerPull + 1 + laneSize + queueSize
)

// Bounds of a player's speed. Slower than MinSpeed a rewind is a stream
// of nothing that holds a consumer; the bounds also keep every scheduled
// delay a valid time.Duration.
const (
	MinSpeed = 0.1
	MaxSpeed = 1000.0
)

// noteSlack is how much earlier than the buffer's oldest frame a start may
// be without a note.
const noteSlack = time.Second

// defaultInterval is a camera's frame interval until two of its frames
// have been seen.
const defaultInterval = 100 * time.Millisecond

// A Player replays cameras from the buffer in sync and continues into live.
//
// Each camera is read by one ordered consumer that starts at the requested
// time and keeps delivering frames as the agent sends them: the rewind and
// the live view are the same sequence of stream messages, so switching to
// live can neither miss a frame nor show one twice.
//
// Frames of all cameras are delivered in capture-time (Frame-Time) order,
// paced by their capture-time spacing divided by the speed, on a schedule
// anchored at the wall-clock time of the first frame (so delays do not
// accumulate). At speed 1 playback stays as far behind live as it started
// (a time-shifted view); faster, it catches up, and once it has (it is
// less than a frame interval behind, or no camera has anything more
// buffered) frames are delivered as they arrive.
//
// Newest frame wins: a Player never queues. It holds at most
// MaxHeldPerCamera frames of a camera; when deliver is slow, the readers
// wait, frames stay in the buffer, and when playback has fallen more than
// MaxLate behind, older frames are skipped for newer ones.
type Player struct {
	// MaxLate: when a newer frame of a camera is due and playback runs
	// more than MaxLate behind (its schedule while replaying; the
	// camera's newest frame once live), the older frame is skipped.
	// Zero means DefaultMaxLate; negative, never skip. Set it before Run.
	MaxLate time.Duration

	js      jetstream.JetStream
	ids     []string
	start   time.Time
	asked   time.Time // when NewPlayer was called: start is that long ago
	speed   float64
	deliver func(id string, f Frame, behind time.Duration)

	running    atomic.Bool
	ready      chan struct{} // closed once every camera's consumer exists
	delivered  atomic.Uint64
	skipped    atomic.Uint64
	outOfOrder atomic.Uint64
	live       atomic.Bool
	mu         sync.Mutex
	note       string
}

// NewPlayer returns a player of cameras ids from start (capture time; zero:
// now, which is live) at speed (1: real time). deliver is called with each
// frame, its camera and how far playback is behind live (now minus the
// frame's capture time), from one goroutine, one frame at a time; it
// should hand the frame on and return (the frame's JPEG is its to keep).
func NewPlayer(js jetstream.JetStream, ids []string, start time.Time, speed float64,
	deliver func(id string, f Frame, behind time.Duration)) (*Player, error) {
	if js == nil || deliver == nil {
		return nil, fmt.Errorf("%w: a player needs a JetStream context and a deliver function", ErrInvalid)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: a player needs at least one camera", ErrInvalid)
	}
	if err := wire.ValidateIDs(ids, 0); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if !(speed >= MinSpeed && speed <= MaxSpeed) {
		return nil, fmt.Errorf("%w: speed %v: must be from %v to %v (1 is real time)", ErrInvalid, speed, MinSpeed, MaxSpeed)
	}
	return &Player{
		js: js, ids: append([]string(nil), ids...), start: start, asked: time.Now(), speed: speed, deliver: deliver,
		ready: make(chan struct{}),
	}, nil
}

// Ready is closed once Run has created the consumers of every camera:
// the server has accepted the rewind. If it refuses, Run returns the error
// and Ready stays open.
func (p *Player) Ready() <-chan struct{} { return p.ready }

// Note says what the player found different from what was asked: a start
// earlier than the buffer's oldest frame (playback starts at the oldest),
// cameras with nothing in the buffer. It is set before the first frame is
// delivered, and empty if there is nothing to say.
func (p *Player) Note() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.note
}

// PlayerStats counts what a player did.
type PlayerStats struct {
	Delivered uint64 // frames handed to deliver
	Skipped   uint64 // frames skipped because playback was late
	// OutOfOrder counts frames skipped because their capture time was
	// out of step with their camera's other frames (see MaxClockStep).
	OutOfOrder uint64
	Live       bool // playback has caught up with live
}

// Stats returns the player's counts so far.
func (p *Player) Stats() PlayerStats {
	return PlayerStats{Delivered: p.delivered.Load(), Skipped: p.skipped.Load(), OutOfOrder: p.outOfOrder.Load(), Live: p.live.Load()}
}

// item is what a reader hands the scheduler: a frame, or only news of how
// many frames are left (f.StreamSeq == 0).
type item struct {
	f       Frame
	pending uint64 // frames of the camera stored after this point
}

// camera is the scheduler's state of one camera.
type camera struct {
	id       string
	lane     chan item
	q        []item // at most queueSize, oldest first
	pending  uint64 // frames stored after the newest item received
	known    bool   // pending has been reported
	interval time.Duration
	last     time.Time // capture time of the last frame delivered
}

// pop removes the camera's next frame from its queue and returns it.
func (c *camera) pop() item {
	it := c.q[0]
	n := copy(c.q, c.q[1:])
	c.q[n] = item{} // let go of the JPEG
	c.q = c.q[:n]
	return it
}

// atEdge reports whether the camera has nothing buffered that the
// scheduler has not seen.
func (c *camera) atEdge() bool { return c.known && c.pending == 0 }

// Run plays until ctx is done, then stops every goroutine it started and
// returns nil. It returns an error if the buffer cannot be read. A Player
// runs once.
func (p *Player) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	start := p.start
	if start.IsZero() {
		start = time.Now()
	}
	st, err := framesStream(ctx, p.js)
	if err == nil {
		err = p.explain(ctx, st, start)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started
		}
		return err
	}

	// Every camera's consumer first, so that a refusal (the server's
	// consumer limit, say) is an error of Run before anything plays.
	seek := start.Add(-seekMargin)
	readers := make([]*reader, 0, len(p.ids))
	defer func() {
		for _, r := range readers {
			r.close()
		}
	}()
	for _, id := range p.ids {
		r, err := openReader(ctx, p.js, id, jetstream.OrderedConsumerConfig{
			DeliverPolicy: jetstream.DeliverByStartTimePolicy,
			OptStartTime:  &seek,
		}, playerPull)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		readers = append(readers, r)
	}
	close(p.ready)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	notify := make(chan struct{}, 1)
	errc := make(chan error, len(p.ids))
	cams := make([]*camera, len(p.ids))
	var wg sync.WaitGroup
	for i, id := range p.ids {
		c := &camera{id: id, lane: make(chan item, laneSize), interval: defaultInterval}
		cams[i] = c
		r := readers[i]
		wg.Go(func() {
			if err := p.read(ctx, c, r, start, notify); err != nil && ctx.Err() == nil {
				errc <- err
				cancel()
			}
		})
	}
	p.play(ctx, cams, notify)
	cancel()
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// explain finds what to tell the viewer before playback starts.
func (p *Player) explain(ctx context.Context, st jetstream.Stream, start time.Time) error {
	var notes []string
	var oldestAll time.Time
	for _, id := range p.ids {
		f, err := oldest(ctx, st, id)
		if errors.Is(err, ErrNoFrames) {
			notes = append(notes, fmt.Sprintf("camera %q has no frames in the buffer: it shows when it sends", id))
			continue
		}
		if err != nil {
			return err
		}
		if oldestAll.IsZero() || f.Time.Before(oldestAll) {
			oldestAll = f.Time
		}
	}
	// Within a second of the oldest frame is not worth a word.
	if !oldestAll.IsZero() && start.Before(oldestAll.Add(-noteSlack)) {
		// "ago" as asked (--since 10m: 10m0s, however long connecting took)
		notes = append([]string{fmt.Sprintf("asked for %s ago, but the buffer holds %s: starting at its oldest frame",
			roughly(p.asked.Sub(start)), roughly(time.Since(oldestAll)))}, notes...)
	}
	p.mu.Lock()
	p.note = strings.Join(notes, "; ")
	p.mu.Unlock()
	return nil
}

// roughly rounds a duration for people: to the second from 10 s on, to a
// tenth of a second below.
func roughly(d time.Duration) time.Duration {
	if d >= 10*time.Second {
		return d.Round(time.Second)
	}
	return d.Round(100 * time.Millisecond)
}

// read feeds camera c's lane with its frames captured from start on, read
// by r.
func (p *Player) read(ctx context.Context, c *camera, r *reader, start time.Time, notify chan<- struct{}) error {
	var chk ClockCheck
	send := func(it item) bool {
		select {
		case c.lane <- it:
		case <-ctx.Done():
			return false
		}
		select {
		case notify <- struct{}{}:
		default:
		}
		return true
	}
	if !send(item{pending: r.pending}) {
		return nil
	}
	for {
		before := r.pending
		m, err := r.next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("camera %q: %w", c.id, err)
		}
		if m == nil {
			// Nothing came: pass on what the server says is left,
			// if that is news.
			if r.pending != before && !send(item{pending: r.pending}) {
				return nil
			}
			continue
		}
		f, pending, err := consumedFrame(m)
		if err == nil && !chk.OK(f) {
			p.outOfOrder.Add(1)
			err = errClock
		}
		if err != nil || f.Time.Before(start) {
			// Not a frame, a wrong clock, or before the start: not
			// played, but the scheduler must learn when the camera has
			// no more.
			if pending == 0 && !send(item{pending: 0}) {
				return nil
			}
			continue
		}
		if !send(item{f: f, pending: pending}) {
			return nil
		}
	}
}

// schedule is the playback schedule.
type schedule struct {
	set   bool
	wall  time.Time // when the first frame was delivered
	media time.Time // its capture time
	speed float64
}

// due is when frame f is to be delivered.
func (k *schedule) due(f Frame) time.Time {
	// Clamped: a Duration cannot hold more than 292 years.
	d := float64(f.Time.Sub(k.media)) / k.speed
	d = min(max(d, -float64(math.MaxInt64/2)), float64(math.MaxInt64/2))
	return k.wall.Add(time.Duration(d))
}

// play merges the cameras' frames and delivers them until ctx is done.
func (p *Player) play(ctx context.Context, cams []*camera, notify <-chan struct{}) {
	maxLate := p.MaxLate
	if maxLate == 0 {
		maxLate = DefaultMaxLate
	}
	k := schedule{speed: p.speed}
	live := false
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		// Take what the readers have, up to queueSize a camera.
		for _, c := range cams {
			for len(c.q) < queueSize {
				select {
				case it := <-c.lane:
					c.known, c.pending = true, it.pending
					if it.f.StreamSeq != 0 {
						c.q = append(c.q, it)
					}
					continue
				default:
				}
				break
			}
		}

		// The camera whose next frame was captured first. While
		// replaying, every camera that has buffered frames must have
		// shown its next one, or the order is not known yet.
		var best *camera
		wait := false
		for _, c := range cams {
			if len(c.q) == 0 {
				if !live && !c.atEdge() {
					wait = true
				}
				continue
			}
			if best == nil || c.q[0].f.Time.Before(best.q[0].f.Time) {
				best = c
			}
		}

		var wake <-chan time.Time
		if best != nil && !wait {
			now := time.Now()
			if !k.set {
				k = schedule{set: true, wall: now, media: best.q[0].f.Time, speed: p.speed}
			}
			if maxLate > 0 && len(best.q) > 1 && p.late(&k, live, best, now) > maxLate {
				best.pop()
				p.skipped.Add(1)
				continue
			}
			due := k.due(best.q[0].f)
			if live || !due.After(now) {
				p.next(best, cams, now, &live)
				continue
			}
			timer.Reset(due.Sub(now))
			wake = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-notify:
		case <-wake:
		}
		timer.Stop()
	}
}

// late is how far behind playback is with camera c's next frame, given a
// newer one is in hand: while replaying, how long ago that newer frame was
// due; once live, how much older the next frame is than the camera's newest
// (what is in hand, and what is stored after it, at its frame interval).
func (p *Player) late(k *schedule, live bool, c *camera, now time.Time) time.Duration {
	if !live {
		return now.Sub(k.due(c.q[1].f))
	}
	newest := c.q[len(c.q)-1].f.Time.Add(time.Duration(c.pending) * c.interval)
	return newest.Sub(c.q[0].f.Time)
}

// next delivers camera c's next frame, and switches to live once playback
// has caught up.
func (p *Player) next(c *camera, cams []*camera, now time.Time, live *bool) {
	it := c.pop()
	if !c.last.IsZero() {
		if d := it.f.Time.Sub(c.last); d > 0 && d < 5*time.Second {
			c.interval = d
		}
	}
	c.last = it.f.Time
	behind := max(now.Sub(it.f.Time), 0)
	if !*live {
		caughtUp := behind <= c.interval
		if !caughtUp {
			caughtUp = true
			for _, o := range cams {
				if len(o.q) > 0 || !o.atEdge() {
					caughtUp = false
					break
				}
			}
		}
		if caughtUp {
			*live = true
			p.live.Store(true)
		}
	}
	p.delivered.Add(1)
	p.deliver(c.id, it.f, behind)
}
