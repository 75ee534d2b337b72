package viewer

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"camhub/internal/wire"
)

// Quality tiers. A camera whose agent publishes a small tier
// (cams.<id>.lo.frames, see wire.Tier) is read at that tier while its tile is
// at most half the main tier's size in both dimensions (wire.ChooseTier),
// and at the main tier otherwise: a grid of many 1080p cameras decodes
// 320-pixel JPEGs, a camera shown alone its full frames. Pin a tier with
// Grid.SetTier (viewer --tier, the t key).
//
// A switch never blanks the tile: the new tier is subscribed while the old
// one still is, frames of both are shown until the first frame of the new
// tier arrives, and only then is the old tier unsubscribed. Tiers are
// switched for JPEG cameras with a JPEG small tier; other cameras are read
// at the main tier. With a camera list (Config.Cams) subscriptions are per
// camera, and a camera read at its small tier receives nothing else. Rewinds, exports and
// snapshots read the hub's buffer, which holds the main tier alone.

// Pins of Grid.SetTier.
const (
	TierAuto = "auto"
	TierMain = wire.TierMain
	TierLo   = wire.TierLo
)

// CheckTier checks a --tier value.
func CheckTier(s string) error {
	switch s {
	case TierAuto, TierMain, TierLo:
		return nil
	}
	return fmt.Errorf("tier %q: want %s, %s or %s", s, TierAuto, TierMain, TierLo)
}

// accept reports whether a frame of tier lo (or main) is to be shown: one
// of the tier the tile wants, or of the other tier until the wanted one has
// delivered a frame since the switch.
func (s *slot) accept(lo bool) bool {
	if s.lo.Load() == lo {
		s.arrived.Store(true)
		return true
	}
	return !s.arrived.Load()
}

// onLoFrame takes a small-tier frame, as onFrame a main one.
func (s *slot) onLoFrame(m *nats.Msg) {
	if err := wire.CheckLive(m); err != nil {
		s.feed.badMessage(s.id, "frame", err)
		return
	}
	if !s.accept(true) {
		return
	}
	f, err := wire.ParseFrame(m.Header)
	if err == nil && !wire.LooksLikeJPEG(m.Data) {
		err = errNotJPEG
	}
	if err != nil {
		s.feed.badMessage(s.id, wire.KindLo, err)
	}
	s.frame.Store(&delivery{frame: f, jpeg: m.Data, err: err, lo: true, at: time.Now()})
	s.received.Add(1)
}

// setTier makes camera s read the small tier (lo) or the main one,
// subscribing to the new tier; the old one is unsubscribed by settle once
// the new one has delivered. It does nothing for a feed whose tiers cannot
// be switched (see above).
func (f *Feed) setTier(s *slot, lo bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rewound || f.nc == nil || s.lo.Load() == lo {
		return nil
	}
	s.lo.Store(lo)
	s.arrived.Store(false)
	if !lo && !f.fixed {
		return nil // the subscription to every camera's frames brings the main tier
	}
	subj, handler, sub := wire.FramesSubject(s.id), s.onFrame, &s.mainSub
	if lo {
		subj, handler, sub = wire.LoFramesSubject(s.id), s.onLoFrame, &s.loSub
	}
	if *sub != nil {
		return nil
	}
	ns, err := f.nc.Subscribe(subj, handler)
	if err != nil {
		return fmt.Errorf("subscribing to %s: %w", subj, err)
	}
	*sub = ns
	return ns.SetPendingLimits(pendingFramesPerCamera, pendingBytesPerCamera)
}

// settle unsubscribes the tier camera s no longer reads, once the one it
// reads has delivered a frame.
func (f *Feed) settle(s *slot) {
	if !s.arrived.Load() {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	old := &s.mainSub
	if !s.lo.Load() {
		old = &s.loSub
	}
	if *old != nil {
		_ = (*old).Unsubscribe() // fails only if the connection is closed
		*old = nil
	}
}

// SetTier pins the tier every camera is read at: TierMain, TierLo (where a
// camera has one) or TierAuto (by tile size, the default).
func (g *Grid) SetTier(pin string) error {
	if err := CheckTier(pin); err != nil {
		return err
	}
	g.pin = pin
	return nil
}

// Tier is the grid's pin.
func (g *Grid) Tier() string {
	if g.pin == "" {
		return TierAuto
	}
	return g.pin
}

// chooseTier picks the tier of tile t by its size and the camera's newest
// status report, switches to it if it changed, and drops the old tier once
// the new one has delivered.
func (g *Grid) chooseTier(t *tile) {
	s := t.slot
	var mw, mh, lw, lh int
	if r := s.status.Load(); r != nil {
		st := r.status
		if st.Lo != nil && st.Lo.Codec == wire.CodecJPEG && (st.Codec == "" || st.Codec == wire.CodecJPEG) {
			mw, mh, lw, lh = st.Width, st.Height, st.Lo.Width, st.Lo.Height
		}
	}
	lo := wire.ChooseTier(t.rect.Dx(), t.rect.Dy(), mw, mh, lw, lh, g.pin) == wire.TierLo
	if err := g.feed.setTier(s, lo); err != nil && !t.warned {
		t.warned = true
		g.log.Warn("cannot switch the camera's tier", "camera", s.id, "error", err)
	}
	g.feed.settle(s)
}

// SetSolo shows camera id alone on the whole canvas (empty: every camera
// again). It reports whether the grid has that camera.
func (g *Grid) SetSolo(id string) bool {
	if id != "" {
		if _, ok := g.byID[id]; !ok {
			return false
		}
	}
	g.solo, g.laid = id, false
	return true
}

// Solo is the camera shown alone, or "".
func (g *Grid) Solo() string { return g.solo }
