package viewer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/camlist"
	"camhub/internal/gopqueue"
	"camhub/internal/ratelog"
	"camhub/internal/replay"
	"camhub/internal/wire"
)

// MaxCameras is the most cameras a grid shows. Without a camera list, more
// cameras than this appearing on the hub are ignored (and counted).
const MaxCameras = 64

// Pending limits of the subscriptions. The handlers only store a pointer,
// so nothing should ever wait; the limits are a second guard that bounds
// the memory a stalled viewer holds.
const (
	pendingFramesPerCamera = 32
	pendingBytesPerCamera  = 32 << 20
	pendingStatus          = 64
	pendingStatusBytes     = 1 << 20
)

// delivery is a frame for a tile and when it arrived: a live frame message,
// or a frame the replay player delivered from the buffer.
type delivery struct {
	frame wire.Frame // its headers, parsed once on arrival
	jpeg  []byte
	err   error // a live message that is not a frame: counted, then skipped
	// behind: replayed while the player was behind live.
	behind bool
	lo     bool // a small-tier frame
	at     time.Time
}

// parts returns the frame's headers and JPEG payload.
func (d *delivery) parts() (wire.Frame, []byte, error) { return d.frame, d.jpeg, d.err }

// report is a camera's newest status report and when it was received.
type report struct {
	status *wire.Status
	at     time.Time
}

// slot is where the NATS handlers leave the newest frame and status of one
// camera for the display loop: newest wins, nothing is queued or decoded.
type slot struct {
	feed     *Feed
	id       string
	frame    atomic.Pointer[delivery]
	received atomic.Uint64 // frame messages received
	status   atomic.Pointer[report]
	video    *gopqueue.Queue // an H.264 camera's access units
	loVideo  *gopqueue.Queue // those of its H.264 small tier
	// seen is when the hub last heard of the camera before this viewer
	// started (from the camera list), in Unix nanoseconds; 0 if unknown.
	seen atomic.Int64

	// The tier read (tier.go): lo is whether the small tier is wanted,
	// arrived whether the grid has shown a picture of the wanted tier
	// since the switch (for H.264, one its own decoder made from a
	// keyframe). mainSubs and loSubs (under the feed's mu) are the tiers'
	// frame and video subscriptions: the main tier's of a feed with a
	// camera list, the small tier's of any feed.
	lo, arrived      atomic.Bool
	mainSubs, loSubs []*nats.Subscription
}

func (s *slot) onFrame(m *nats.Msg) {
	if err := wire.CheckLive(m); err != nil {
		s.feed.badMessage(s.id, "frame", err) // not shown at all
		return
	}
	if !s.accept(false) { // the small tier is read
		return
	}
	// Only counted here; the grid skips the frame when it looks at it, and
	// the tile keeps its picture.
	f, err := wire.ParseFrame(m.Header)
	if err == nil && !wire.LooksLikeJPEG(m.Data) {
		err = errNotJPEG
	}
	if err != nil {
		s.feed.badMessage(s.id, wire.KindFrames, err)
	}
	s.frame.Store(&delivery{frame: f, jpeg: m.Data, err: err, at: time.Now()})
	s.received.Add(1)
}

// onReplayed takes a frame from the replay player, as onFrame takes a live
// one: newest wins, nothing is decoded here. behind says the player was
// still behind live when it delivered the frame.
func (s *slot) onReplayed(f replay.Frame, behind bool) {
	s.frame.Store(&delivery{frame: f.Frame, jpeg: f.JPEG, behind: behind, at: time.Now()})
	s.received.Add(1)
}

func (s *slot) onStatus(m *nats.Msg) {
	if err := wire.CheckLive(m); err != nil {
		s.feed.badMessage(s.id, "status", err)
		return
	}
	st, err := wire.ParseStatus(m.Subject, m.Data)
	if err != nil {
		s.feed.badMessage(s.id, wire.KindStatus, err) // not a camhub agent's report
		return
	}
	s.status.Store(&report{status: st, at: time.Now()})
}

// Feed receives the frames and status reports of the cameras a grid shows.
// With a camera list it subscribes to those cameras only; without one it
// subscribes to every camera's status reports and adds cameras as they
// report (or as the hub's camera list names them, Seed), sorted by id.
// Either way frames are subscribed per camera, at the tier it is read at
// (tier.go): a camera read at its small tier receives nothing else.
type Feed struct {
	fixed   bool
	rewound bool // frames come from a replay player, not subscriptions

	mu    sync.Mutex
	slots map[string]*slot
	order []*slot // tiles in display order; replaced, never modified
	subs  []*nats.Subscription
	nc    *nats.Conn // what Subscribe was given, for tier switches

	gen     atomic.Uint64 // incremented when a camera is added
	ignored atomic.Uint64 // status reports of cameras beyond MaxCameras or with bad subjects

	log atomic.Pointer[ratelog.Logger]
	bad atomic.Uint64 // frame and status messages that were not camhub's

	// H.264 catch-ups from the buffer (UseBuffer): js nil without
	js   jetstream.JetStream
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// badWarnEvery is how often bad messages are logged: the first at once,
// then at most one line per interval with the count so far.
const badWarnEvery = 10 * time.Second

// SetLogger makes the feed log the bad messages it receives (rate-limited,
// see badWarnEvery) to log; a new feed logs nothing.
func (f *Feed) SetLogger(log *slog.Logger) {
	if log == nil {
		f.log.Store(nil)
		return
	}
	f.log.Store(ratelog.New(log, badWarnEvery))
}

// Bad counts the frame and status messages received that were not
// camhub's: bad headers, a payload that is not a whole JPEG, a status
// report that does not parse. They are skipped.
func (f *Feed) Bad() uint64 { return f.bad.Load() }

// badMessage counts a bad message of camera id and logs it, rarely.
func (f *Feed) badMessage(id, kind string, err error) {
	n := f.bad.Add(1)
	f.log.Load().Warn("skipping messages that are not camhub's", "camera", id, "kind", kind, "error", err, "bad_messages", n)
}

// ErrCameras is wrapped by the errors NewFeed returns for a bad camera list.
var ErrCameras = errors.New("bad camera list")

// NewFeed returns a feed for the cameras ids, in that order, or for every
// camera on the hub if ids is empty. It checks the ids.
func NewFeed(ids []string) (*Feed, error) {
	if err := CheckCams(ids); err != nil {
		return nil, err
	}
	f := &Feed{fixed: len(ids) > 0, slots: make(map[string]*slot)}
	for _, id := range ids {
		s := f.newSlot(id)
		f.slots[id] = s
		f.order = append(f.order, s)
	}
	return f, nil
}

func (f *Feed) newSlot(id string) *slot {
	return &slot{feed: f, id: id, video: gopqueue.New(maxQueuedAUs, maxQueuedBytes),
		loVideo: gopqueue.New(maxQueuedAUs, maxQueuedBytes)}
}

// CheckCams checks a camera list: valid ids (wire.IDRule), none twice, at
// most MaxCameras.
func CheckCams(ids []string) error {
	if err := wire.ValidateIDs(ids, MaxCameras); err != nil {
		return fmt.Errorf("%w: %w", ErrCameras, err)
	}
	return nil
}

// Subscribe subscribes to the cameras' frames and status reports on nc (to
// the status reports only after Rewind). It works on a connection that is
// still waiting for its server: the subscriptions are made when it
// connects.
func (f *Feed) Subscribe(nc *nats.Conn) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nc = nc
	sub := func(subject string, h nats.MsgHandler, msgs, bytes int) error {
		s, err := nc.Subscribe(subject, h)
		if err != nil {
			return fmt.Errorf("subscribing to %s: %w", subject, err)
		}
		f.subs = append(f.subs, s)
		return s.SetPendingLimits(msgs, bytes)
	}
	if f.fixed {
		for _, s := range f.order {
			if !f.rewound {
				// the frames' and video's subscriptions are the tier's (tier.go)
				if err := f.subscribeTier(s, false); err != nil {
					return err
				}
			}
			if err := sub(wire.StatusSubject(s.id), s.onStatus, pendingStatus, pendingStatusBytes); err != nil {
				return err
			}
		}
		return nil
	}
	if err := sub(wire.AllStatus, f.onAnyStatus, pendingStatus, pendingStatusBytes); err != nil {
		return err
	}
	for _, s := range f.order { // from the camera list (Seed)
		if err := f.subscribeTier(s, s.lo.Load()); err != nil {
			return err
		}
	}
	return nil
}

// ErrRewind is wrapped by the errors Rewind returns for a feed it cannot
// rewind.
var ErrRewind = errors.New("cannot rewind")

// Rewind makes the feed play its cameras from the hub's replay buffer
// instead of subscribing to their live frames: from start (a capture time)
// at speed (1: as fast as they were captured), all cameras in time order,
// carrying on live with no gap and no duplicate (see replay.Player; at
// speed 1 playback stays as far behind live as it started). Its frames go
// into the same newest-wins slots as live frames, marked as behind live
// until the player has caught up. Call it once, before Subscribe, which
// then subscribes to the status reports only, and run the returned player;
// the feed must have a camera list.
func (f *Feed) Rewind(js jetstream.JetStream, start time.Time, speed float64) (*replay.Player, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case !f.fixed:
		return nil, fmt.Errorf("%w: a rewind needs a camera list", ErrRewind)
	case f.rewound:
		return nil, fmt.Errorf("%w: the feed is rewound already", ErrRewind)
	case len(f.subs) > 0:
		return nil, fmt.Errorf("%w: the feed is subscribed to live frames already", ErrRewind)
	}
	ids := make([]string, len(f.order))
	slots := make(map[string]*slot, len(f.order))
	for i, s := range f.order {
		ids[i], slots[s.id] = s.id, s
	}
	var p *replay.Player
	p, err := replay.NewPlayer(js, ids, start, speed, func(id string, fr replay.Frame, _ time.Duration) {
		// The player marks itself live before it delivers the frame
		// that caught up.
		slots[id].onReplayed(fr, !p.Stats().Live)
	})
	if err != nil {
		return nil, err
	}
	f.rewound = true
	f.rewindVideo(ids, start, speed)
	return p, nil
}

// Close unsubscribes and stops reading the buffer. It may be called more
// than once.
func (f *Feed) Close() {
	f.mu.Lock()
	for _, s := range f.subs {
		_ = s.Unsubscribe() // fails only if the connection is closed
	}
	f.subs = nil
	for _, s := range f.order {
		unsubscribe(&s.mainSubs)
		unsubscribe(&s.loSubs)
	}
	if f.stop != nil {
		f.stop()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *Feed) onAnyStatus(m *nats.Msg) {
	if err := wire.CheckLive(m); err != nil {
		f.badMessage(m.Subject, "status", err)
		return
	}
	if s := f.lookup(m.Subject); s != nil {
		s.onStatus(m)
	}
}

// lookup returns the slot for a message's subject, adding the camera if
// the feed shows every camera.
func (f *Feed) lookup(subject string) *slot {
	id, _, err := wire.ParseSubject(subject)
	if err != nil {
		f.ignored.Add(1)
		return nil
	}
	s := f.add(id)
	if s == nil {
		f.ignored.Add(1)
	}
	return s
}

// add returns the slot for camera id, adding it unless the feed has a fixed
// camera list or is full; nil then. An added camera's main tier is
// subscribed once the feed is.
func (f *Feed) add(id string) *slot {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.slots[id]; s != nil {
		return s
	}
	if f.fixed || len(f.order) >= MaxCameras {
		return nil
	}
	s := f.newSlot(id)
	if f.nc != nil {
		if err := f.subscribeTier(s, false); err != nil {
			// only if the connection is closed: the viewer is ending
			f.log.Load().Warn("cannot subscribe to a camera", "camera", id, "error", err)
		}
	}
	f.slots[id] = s
	order := append(slices.Clip(f.order), s)
	slices.SortFunc(order, func(a, b *slot) int { return strings.Compare(a.id, b.id) })
	f.order = order
	f.gen.Add(1)
	return s
}

// cameras returns the cameras in display order and the generation, which
// changes whenever a camera is added.
func (f *Feed) cameras() ([]*slot, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.order, f.gen.Load()
}

// IDs returns the ids of the cameras, in display order.
func (f *Feed) IDs() []string {
	order, _ := f.cameras()
	ids := make([]string, len(order))
	for i, s := range order {
		ids[i] = s.id
	}
	return ids
}

// Ignored counts the messages dropped because their camera is not shown.
func (f *Feed) Ignored() uint64 { return f.ignored.Load() }

// Seed reads the hub's camera list: without a fixed camera list every
// camera the hub knows gets a tile, including offline ones. Either way the
// cameras' newest reports and when the hub last heard of them are kept for
// "no signal" tiles. It returns camlist.ErrNoHub if the server has no
// camhub streams.
func (f *Feed) Seed(ctx context.Context, js jetstream.JetStream) error {
	cams, err := camlist.List(ctx, js, time.Now())
	if err != nil {
		return err
	}
	for _, c := range cams {
		s := f.add(c.ID)
		if s == nil {
			continue
		}
		st := c.Status
		// keep a report received since, which is newer
		s.status.CompareAndSwap(nil, &report{status: &st, at: c.LastSeen})
		s.seen.CompareAndSwap(0, c.LastSeen.UnixNano())
	}
	return nil
}
