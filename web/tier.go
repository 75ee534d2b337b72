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

// subscribeLo subscribes to the small tier of every camera shown.
func (s *Server) subscribeLo() error {
	subjects := []string{wire.AllLoFrames}
	if s.only != nil {
		subjects = subjects[:0]
		for _, id := range s.cfg.Cams {
			subjects = append(subjects, wire.LoFramesSubject(id))
		}
	}
	for _, subj := range subjects {
		sub, err := s.nc.Subscribe(subj, s.onLoFrame)
		if err != nil {
			return fmt.Errorf("subscribing to %s: %w", subj, err)
		}
		s.subs = append(s.subs, sub)
		if err := sub.SetPendingLimits(pendingFrames, pendingBytes); err != nil {
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
