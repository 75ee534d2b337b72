package viewer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/camlist"
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
	pendingFramesAll       = 256
	pendingBytesAll        = 128 << 20
	pendingStatus          = 64
	pendingStatusBytes     = 1 << 20
)

// delivery is a received frame message and when it arrived.
type delivery struct {
	msg *nats.Msg
	at  time.Time
}

// report is a camera's newest status report and when it was received.
type report struct {
	status *wire.Status
	at     time.Time
}

// slot is where the NATS handlers leave the newest frame and status of one
// camera for the display loop: newest wins, nothing is queued or decoded.
type slot struct {
	id       string
	frame    atomic.Pointer[delivery]
	received atomic.Uint64 // frame messages received
	status   atomic.Pointer[report]
	// seen is when the hub last heard of the camera before this viewer
	// started (from the camera list), in Unix nanoseconds; 0 if unknown.
	seen atomic.Int64
}

func (s *slot) onFrame(m *nats.Msg) {
	s.frame.Store(&delivery{msg: m, at: time.Now()})
	s.received.Add(1)
}

func (s *slot) onStatus(m *nats.Msg) {
	st, err := wire.ParseStatus(m.Subject, m.Data)
	if err != nil {
		return // not a camhub agent's report
	}
	s.status.Store(&report{status: st, at: time.Now()})
}

// Feed receives the frames and status reports of the cameras a grid shows.
// With a camera list it subscribes to those cameras only; without one it
// subscribes to every camera and adds cameras as they appear, sorted by id.
type Feed struct {
	fixed bool

	mu    sync.Mutex
	slots map[string]*slot
	order []*slot // tiles in display order; replaced, never modified
	subs  []*nats.Subscription

	gen     atomic.Uint64 // incremented when a camera is added
	ignored atomic.Uint64 // messages of cameras beyond MaxCameras or with bad subjects
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
		s := &slot{id: id}
		f.slots[id] = s
		f.order = append(f.order, s)
	}
	return f, nil
}

// CheckCams checks a camera list: valid ids (wire.IDRule), none twice, at
// most MaxCameras.
func CheckCams(ids []string) error {
	if len(ids) > MaxCameras {
		return fmt.Errorf("%w: %d cameras, at most %d", ErrCameras, len(ids), MaxCameras)
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if err := wire.ValidateID(id); err != nil {
			return fmt.Errorf("%w: %w", ErrCameras, err)
		}
		if seen[id] {
			return fmt.Errorf("%w: camera %q is listed twice", ErrCameras, id)
		}
		seen[id] = true
	}
	return nil
}

// ParseCams splits a comma-separated camera list, trimming spaces and
// dropping empty entries, as --cams accepts it.
func ParseCams(list []string) []string {
	var ids []string
	for _, e := range list {
		for _, id := range strings.Split(e, ",") {
			if id = strings.TrimSpace(id); id != "" {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// Subscribe subscribes to the cameras' frames and status reports on nc. It
// works on a connection that is still waiting for its server: the
// subscriptions are made when it connects.
func (f *Feed) Subscribe(nc *nats.Conn) error {
	f.mu.Lock()
	defer f.mu.Unlock()
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
			if err := sub(wire.FramesSubject(s.id), s.onFrame, pendingFramesPerCamera, pendingBytesPerCamera); err != nil {
				return err
			}
			if err := sub(wire.StatusSubject(s.id), s.onStatus, pendingStatus, pendingStatusBytes); err != nil {
				return err
			}
		}
		return nil
	}
	if err := sub(wire.AllFrames, f.onAnyFrame, pendingFramesAll, pendingBytesAll); err != nil {
		return err
	}
	return sub(wire.AllStatus, f.onAnyStatus, pendingStatus, pendingStatusBytes)
}

// Close unsubscribes. It may be called more than once.
func (f *Feed) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.subs {
		_ = s.Unsubscribe() // fails only if the connection is closed
	}
	f.subs = nil
}

func (f *Feed) onAnyFrame(m *nats.Msg) {
	if s := f.lookup(m.Subject); s != nil {
		s.onFrame(m)
	}
}

func (f *Feed) onAnyStatus(m *nats.Msg) {
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
// camera list or is full; nil then.
func (f *Feed) add(id string) *slot {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.slots[id]; s != nil {
		return s
	}
	if f.fixed || len(f.order) >= MaxCameras {
		return nil
	}
	s := &slot{id: id}
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
