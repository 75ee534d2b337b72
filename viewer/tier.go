package viewer

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"camhub/internal/wire"
)

// Quality tiers. A camera whose agent publishes a small tier
// (cams.<id>.lo.frames or cams.<id>.lo.video.*, see wire.Tier) is read at
// that tier while its tile is at most half the main tier's size in both
// dimensions (wire.ChooseTier), and at the main tier otherwise: a grid of
// many 1080p cameras decodes 320-pixel pictures, a camera shown alone its
// full frames. Either tier may be JPEG or H.264. Pin a tier with
// Grid.SetTier (viewer --tier, the t key).
//
// A switch never blanks the tile: the new tier is subscribed while the old
// one still is, pictures of both are shown until the grid has shown one of
// the new tier, and only then is the old tier unsubscribed and its H.264
// decoder freed. Each H.264 tier has its own decoder, fed from the tier's
// first keyframe (the main tier's from the hub's buffer if the feed uses
// it; the small tier, live only, waits for its next keyframe: the deltas
// before it are skipped, not errors). With a camera list (Config.Cams)
// subscriptions are per camera, and a camera read at its small tier
// receives nothing else. Rewinds, exports and snapshots read the hub's
// buffer, which holds the main tier alone.

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

// shows reports whether a picture of tier lo (or main) is to be shown: one
// of the tier the tile wants, or of the other tier until the grid has shown
// one of the wanted tier since the switch.
func (s *slot) shows(lo bool) bool {
	return s.lo.Load() == lo || !s.arrived.Load()
}

// accept reports whether a message of tier lo (or main) is to be kept for
// the grid: see shows.
func (s *slot) accept(lo bool) bool { return s.shows(lo) }

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
// subscribing to the new tier, whose H.264 queue starts afresh; the old one
// is unsubscribed by settle once the new one has been shown. It does
// nothing for a rewound feed.
func (f *Feed) setTier(s *slot, lo bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rewound || f.nc == nil || s.lo.Load() == lo {
		return nil
	}
	if lo {
		s.loVideo.Reset()
	} else {
		s.video.Reset()
	}
	s.lo.Store(lo)
	s.arrived.Store(false)
	if len(*s.subs(lo)) > 0 {
		return nil // still subscribed: the switch before had not settled
	}
	return f.subscribeTier(s, lo)
}

// subs are the subscriptions of camera s's small tier (lo) or main one.
func (s *slot) subs(lo bool) *[]*nats.Subscription {
	if lo {
		return &s.loSubs
	}
	return &s.mainSubs
}

// subscribeTier subscribes to the frames and access units of camera s's
// small tier (lo) or main one. f.mu is held.
func (f *Feed) subscribeTier(s *slot, lo bool) error {
	frames, video := wire.FramesSubject(s.id), wire.VideoFilter(s.id)
	onFrame, onVideo := s.onFrame, s.onVideo
	if lo {
		frames, video = wire.LoFramesSubject(s.id), wire.LoVideoFilter(s.id)
		onFrame, onVideo = s.onLoFrame, s.onLoVideo
	}
	subs := s.subs(lo)
	for _, sub := range []struct {
		subject string
		h       nats.MsgHandler
		msgs    int
	}{{frames, onFrame, pendingFramesPerCamera}, {video, onVideo, pendingFramesPerCamera * 8}} {
		ns, err := f.nc.Subscribe(sub.subject, sub.h)
		if err != nil {
			return fmt.Errorf("subscribing to %s: %w", sub.subject, err)
		}
		*subs = append(*subs, ns)
		if err := ns.SetPendingLimits(sub.msgs, pendingBytesPerCamera); err != nil {
			return err
		}
	}
	return nil
}

// unsubscribe ends the subscriptions subs.
func unsubscribe(subs *[]*nats.Subscription) {
	for _, s := range *subs {
		_ = s.Unsubscribe() // fails only if the connection is closed
	}
	*subs = nil
}

// settle unsubscribes the tier camera s no longer reads and drops what its
// H.264 queue holds, once the one it reads has been shown.
func (f *Feed) settle(s *slot) {
	if !s.arrived.Load() {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	old := !s.lo.Load()
	if len(*s.subs(old)) == 0 {
		return
	}
	unsubscribe(s.subs(old))
	if old {
		s.loVideo.Reset()
	} else {
		s.video.Reset()
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
		if st.Lo != nil {
			mw, mh, lw, lh = st.Width, st.Height, st.Lo.Width, st.Lo.Height
		}
	}
	lo := wire.ChooseTier(t.rect.Dx(), t.rect.Dy(), mw, mh, lw, lh, g.pin) == wire.TierLo
	if err := g.feed.setTier(s, lo); err != nil && !t.warned {
		t.warned = true
		g.log.Warn("cannot switch the camera's tier", "camera", s.id, "error", err)
	}
	g.feed.settle(s)
	if s.arrived.Load() {
		t.closeDecoder(!s.lo.Load()) // the tier no longer read
	}
}

// closeDecoder frees the H.264 decoder of tile t's small tier (lo) or main
// one, if it has one.
func (t *tile) closeDecoder(lo bool) {
	d := &t.vdec
	if lo {
		d = &t.loDec
	}
	if *d != nil {
		(*d).Close()
		*d = nil
	}
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
