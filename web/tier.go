package web

import (
	"fmt"
	"net/url"
	"time"

	"github.com/nats-io/nats.go"

	"camhub/internal/wire"
)

// Quality tiers. Cameras whose agents publish a small tier
// (cams.<id>.lo.frames, JPEG) are also received on a board of their own,
// liveLo. The page's streams, /api/stream and /api/media, take
// lo=<ids>: those cameras are sent from their small tier while they have
// one (else, and every other camera, from the main tier). The page asks for
// the small tier of the tiles shown at most half the camera's size
// (wire.ChooseTier) and opens a new stream when that changes; a tile keeps
// its picture until the new stream's first frame for it, which the board's
// newest frame makes immediate. /api/cams says which cameras have a small
// tier (lo). Rewinds, snapshots and MJPEG streams are main-tier only.
//
// An H.264 camera's H.264 small tier (cams.<id>.lo.video.*) goes to
// /api/media's clients as its main tier does (mse.go), each tier a track
// of its own: lo=<id> sends the small tier while its access units come
// (loTimeout), else the main one. The small tier is live only, so it
// starts at its next keyframe; the main tier starts at once from the
// buffer's newest keyframe. When a stream's tier of a camera changes, the
// old tier's track goes on until the new one's first keyframe is sent
// with its init segment; the page shows the old track's picture until it
// has decoded the new one's (mse.js). /api/stream sends H.264 cameras
// from their main tier (decoded on the server).

// loTimeout is how long after its last access unit an H.264 small tier
// stops being sent: its camera goes back to its main tier.
const loTimeout = 3 * time.Second

// loQuery reads the lo parameter of a stream request: a comma-separated
// list of camera ids, each valid. Cameras the stream does not carry are
// ignored.
func loQuery(raw string) (map[string]bool, error) {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: query: %v", ErrBadRequest, err)
	}
	s, ok := one(v, "lo")
	if !ok || s == "" {
		return nil, nil
	}
	ids, err := parseCams(s, MaxCameras)
	if err != nil {
		return nil, fmt.Errorf("lo: %w", err)
	}
	lo := make(map[string]bool, len(ids))
	for _, id := range ids {
		lo[id] = true
	}
	return lo, nil
}

// useTiers sets up client c to send cameras lo from their small tier.
func (c *client) useTiers(lo map[string]bool) {
	if len(lo) == 0 {
		return
	}
	c.lo, c.sentLo = lo, make(map[string]uint64, len(lo))
}

// wantMain narrows want (nil: every camera) to the cameras sent from the
// main tier: all but those asked for at the small tier that have one.
func (c *client) wantMain(want func(string) bool) func(string) bool {
	if c.lo == nil {
		return want
	}
	return func(id string) bool {
		if want != nil && !want(id) {
			return false
		}
		return !c.lo[id] || c.s.liveLo.newest(id) == nil
	}
}

// newerLo appends to out the small-tier frames of the cameras c sends at
// that tier that it has not sent, and sets c.wakeLo to a channel closed on
// the next one.
func (c *client) newerLo(want func(string) bool, out []*frame) []*frame {
	if c.lo == nil {
		return out
	}
	out, c.wakeLo = c.s.liveLo.newer(c.sentLo, func(id string) bool {
		return c.lo[id] && (want == nil || want(id)) && !c.s.isVideo(id)
	}, out)
	return out
}

// subscribeTier subscribes to one tier's JPEG frames and video of every
// camera shown (all of them: the subjects all, else a camera's own), each
// with its handler.
func (s *Server) subscribeTier(allFrames, allVideo string, frames, video func(id string) string, onFrame, onVideo nats.MsgHandler) error {
	type sub struct {
		subject string
		handler nats.MsgHandler
	}
	subs := []sub{{allFrames, onFrame}, {allVideo, onVideo}}
	if s.only != nil {
		subs = subs[:0]
		for _, id := range s.cfg.Cams {
			subs = append(subs, sub{frames(id), onFrame}, sub{video(id), onVideo})
		}
	}
	for _, w := range subs {
		ns, err := s.nc.Subscribe(w.subject, w.handler)
		if err != nil {
			return fmt.Errorf("subscribing to %s: %w", w.subject, err)
		}
		s.subs = append(s.subs, ns)
		if err := ns.SetPendingLimits(pendingFrames, pendingBytes); err != nil {
			return err
		}
	}
	return nil
}

// onLoFrame takes one small-tier frame, as onFrame a main one.
func (s *Server) onLoFrame(m *nats.Msg) {
	id, video, _, err := wire.ParseLoSubject(m.Subject)
	if err != nil || video || !s.want(id) {
		return
	}
	wf, err := wire.ParseFrame(m.Header)
	if err == nil {
		err = wire.CheckLive(m)
	}
	if err != nil {
		s.liveLo.invalid(id)
		s.warn.Warn("ignoring a message that is not a camhub frame", "camera", id, "tier", wire.TierLo, "error", err)
		return
	}
	if !s.liveLo.put(&frame{id: id, Frame: wf, jpeg: m.Data, received: time.Now(), lo: true}) {
		s.ignored.Add(1)
	}
}

// loLive reports whether camera id's H.264 small tier is live at t, when
// an access unit of its small tier (lo) or main tier came. m.mu is held.
func (m *media) loLive(id string, t time.Time, lo bool) bool {
	if lo {
		if _, ok := m.loSeen[id]; ok || len(m.loSeen) < MaxCameras {
			m.loSeen[id] = t
		}
		return true
	}
	seen, ok := m.loSeen[id]
	return ok && t.Sub(seen) < loTimeout
}

// shown notes that camera tier v's track is now the one the page plays:
// the other tier's, if it was, is replaced (switched reports so).
func (c *mediaClient) shown(v *mediaCam) (switched bool) {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v.shown, v.paused = true, false
	if o := c.cams[camTier{v.id, !v.lo}]; o != nil {
		switched = o.shown
		o.paused, o.shown = true, false
	}
	return switched
}

// onLoVideo takes one small-tier access unit, as onVideo a main one, for
// the pages that play H.264 (mse.go).
func (s *Server) onLoVideo(m *nats.Msg) {
	id, video, key, err := wire.ParseLoSubject(m.Subject)
	if err != nil || !video || !s.want(id) {
		return
	}
	a, err := parseAU(m, key)
	if err != nil {
		s.media.badLo.Add(1)
		s.warn.Warn("ignoring a message that is not a camhub access unit", "camera", id, "tier", wire.TierLo, "error", err)
		return
	}
	s.pushMedia(id, a, true)
}

// replaced reports whether camera tier v's track was replaced by the
// other tier's.
func (c *mediaClient) replaced(v *mediaCam) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return v.paused
}
