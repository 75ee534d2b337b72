package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/mp4"
	"camhub/internal/replay"
	"camhub/internal/wire"
)

// Events, their thumbnails and clips, as the motion detector keeps them
// in the hub's streams EVENTS and CLIPS (docs/PROTOCOL.md, "Motion, events
// and clips"). Everything is read through the requester's own connection
// to the hub, so the hub's permissions decide, and filtered to the
// cameras the requester sees: one who may not see a camera is answered
// about its events as about events that do not exist.

// Bounds of GET /api/events.
const (
	// DefaultEventsSince is how far back /api/events looks without since.
	DefaultEventsSince = 24 * time.Hour
	// DefaultEventsLimit and MaxEventsLimit bound the events answered.
	DefaultEventsLimit = 100
	MaxEventsLimit     = 1000
	// eventsTimeout bounds reading the events, or a thumbnail, from the hub.
	eventsTimeout = 10 * time.Second
)

// ClipMJPEGType is the type of a JPEG camera's clip: its frames as
// multipart/x-mixed-replace, at the pace they were captured.
const ClipMJPEGType = "multipart/x-mixed-replace; boundary=" + boundary

// ClipMP4Type is the type of an H.264 camera's clip: a fragmented MP4.
const ClipMP4Type = "video/mp4"

// Event is an element of GET /api/events: the event's newest document
// (wire.Event) and where its thumbnail and clip are.
type Event struct {
	wire.Event
	ThumbURL string `json:"thumb_url"` // the thumbnail, a JPEG
	ClipURL  string `json:"clip_url"`  // the clip, played
	ClipType string `json:"clip_type"` // its Content-Type: ClipMJPEGType or ClipMP4Type
}

// eventsQuery is what GET /api/events asks.
type eventsQuery struct {
	Cam   string
	Since time.Time
	Limit int
}

// parseEventsQuery reads GET /api/events' parameters: cam, since (a
// duration back from now, or an RFC 3339 time) and limit. Parameters it
// does not know are ignored.
func parseEventsQuery(raw string, now time.Time) (eventsQuery, error) {
	q := eventsQuery{Since: now.Add(-DefaultEventsSince), Limit: DefaultEventsLimit}
	v, err := url.ParseQuery(raw)
	if err != nil {
		return q, fmt.Errorf("%w: query: %v", ErrBadRequest, err)
	}
	if s, ok := one(v, "cam"); ok && s != "" {
		if err := wire.ValidateID(s); err != nil {
			return q, fmt.Errorf("%w: cam: %w", ErrBadRequest, err)
		}
		q.Cam = s
	}
	if s, ok := one(v, "since"); ok && s != "" {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			q.Since = t
		} else if d, err := time.ParseDuration(s); err == nil && d >= 0 {
			q.Since = now.Add(-d)
		} else {
			return q, fmt.Errorf("%w: since=%q: want a duration back from now (24h, 90m) or an RFC 3339 time", ErrBadRequest, s)
		}
	}
	if s, ok := one(v, "limit"); ok && s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxEventsLimit {
			return q, fmt.Errorf("%w: limit=%q: want 1 to %d", ErrBadRequest, s, MaxEventsLimit)
		}
		q.Limit = n
	}
	return q, nil
}

// eventsError answers an error reading events or clips from the hub.
func eventsError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, replay.ErrNoEvents):
		writeError(w, http.StatusServiceUnavailable, "the hub keeps no events: %v", err)
	default:
		writeError(w, http.StatusServiceUnavailable, "the hub did not give the events: %v", err)
	}
}

// handleEvents answers GET /api/events[?cam=id&since=24h&limit=100]: the
// events of the cameras the requester sees, newest first.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	q, err := parseEventsQuery(r.URL.RawQuery, now)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	who := viewerOf(r)
	var cams []string // "": every camera, in one read
	switch {
	case q.Cam != "":
		if _, ok := s.wanted(w, r, []string{q.Cam}); !ok {
			return
		}
		cams = []string{q.Cam}
	case who == nil || who.acc.all():
		cams = []string{""}
	default:
		// a user limited to some cameras may read only their events
		for _, c := range s.camerasFor(who, now) {
			cams = append(cams, c.ID)
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), eventsTimeout)
	defer cancel()
	js := s.jsOf(who)
	var evs []wire.Event
	for _, id := range cams {
		got, _, err := replay.Events(ctx, js, id, q.Since)
		if err != nil {
			eventsError(w, err)
			return
		}
		evs = append(evs, got...)
	}
	evs = slices.DeleteFunc(evs, func(e wire.Event) bool { return !s.want(e.Camera) || !who.allows(e.Camera) })
	slices.SortStableFunc(evs, func(a, b wire.Event) int { return cmp.Compare(b.Start.UnixNano(), a.Start.UnixNano()) })
	if len(evs) > q.Limit {
		evs = evs[:q.Limit]
	}
	out := make([]Event, 0, len(evs))
	for _, e := range evs {
		ct := ClipMJPEGType
		if e.Clip.Codec == wire.CodecH264 {
			ct = ClipMP4Type
		}
		base := "/api/events/" + e.ID
		out = append(out, Event{Event: e, ThumbURL: base + "/thumb.jpg", ClipURL: base + "/clip", ClipType: ct})
	}
	writeJSON(w, out)
}

// eventRequest reads the event id of a /api/events/{event}/... request
// and returns it with its camera; it answers 404 for an id that is not
// one, or of a camera the requester does not see, and then reports false.
func (s *Server) eventRequest(w http.ResponseWriter, r *http.Request) (eid, cam string, ok bool) {
	eid = r.PathValue("event")
	cam, ok = wire.EventCamera(eid)
	if !ok || wire.ValidateEventID(eid) != nil || !s.want(cam) || !viewerOf(r).allows(cam) {
		writeError(w, http.StatusNotFound, "unknown event %q", eid)
		return "", "", false
	}
	return eid, cam, true
}

// handleEventThumb answers GET /api/events/{event}/thumb.jpg: the event's
// thumbnail from CLIPS.
func (s *Server) handleEventThumb(w http.ResponseWriter, r *http.Request) {
	eid, cam, ok := s.eventRequest(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), eventsTimeout)
	defer cancel()
	js := s.jsOf(viewerOf(r))
	cons, err := js.OrderedConsumer(ctx, wire.ClipsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{wire.ThumbSubject(eid, cam)}, DeliverPolicy: jetstream.DeliverLastPolicy,
		NamePrefix: replay.ConsumerNamePrefix(), InactiveThreshold: time.Minute,
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		writeError(w, http.StatusServiceUnavailable, "the hub keeps no clips (no stream %s)", wire.ClipsStream)
		return
	}
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "the hub did not give the thumbnail: %v", err)
		return
	}
	defer func() {
		if info := cons.CachedInfo(); info != nil {
			dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = js.DeleteConsumer(dctx, wire.ClipsStream, info.Name)
			dcancel()
		}
	}()
	if info := cons.CachedInfo(); info == nil || info.NumPending == 0 {
		writeError(w, http.StatusNotFound, "event %q has no thumbnail (unknown, or dropped from %s for age or space)", eid, wire.ClipsStream)
		return
	}
	m, err := cons.Next(jetstream.FetchMaxWait(eventsTimeout / 2))
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "the hub did not give the thumbnail: %v", err)
		return
	}
	if !wire.LooksLikeJPEG(m.Data()) {
		writeError(w, http.StatusBadGateway, "event %q: the thumbnail stored is not a JPEG", eid)
		return
	}
	h := w.Header()
	h.Set("Content-Type", wire.ContentTypeJPEG)
	h.Set("Content-Length", strconv.Itoa(len(m.Data())))
	// an event's thumbnail never changes; with logins, only this browser keeps it
	h.Set("Cache-Control", "private, max-age=86400")
	w.WriteHeader(http.StatusOK)
	w.Write(m.Data())
}

// handleEventClip answers GET /api/events/{event}/clip: the event's clip
// as a browser plays it without the server decoding anything. A JPEG
// camera's frames go as MJPEG (multipart/x-mixed-replace, for an <img>)
// at the pace they were captured; an H.264 camera's access units as a
// fragmented MP4 (for a <video>), as fast as the client takes them.
func (s *Server) handleEventClip(w http.ResponseWriter, r *http.Request) {
	eid, _, ok := s.eventRequest(w, r)
	if !ok {
		return
	}
	if s.ctx.Err() != nil {
		writeError(w, http.StatusServiceUnavailable, "the server is shutting down")
		return
	}
	// each clip being played holds a consumer on the hub, as a rewind does
	if s.replays.Add(1) > int64(s.cfg.MaxReplays) {
		s.replays.Add(-1)
		s.refused.Add(1)
		writeError(w, http.StatusServiceUnavailable, "too many replays: %d are being served", s.cfg.MaxReplays)
		return
	}
	defer s.replays.Add(-1)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()
	who := viewerOf(r)
	if who != nil {
		defer context.AfterFunc(who.ctx, cancel)()
	}
	p := &clipPlayer{s: s, w: w, rc: http.NewResponseController(w), ctx: ctx, head: r.Method == http.MethodHead}
	err := replay.ReadClip(ctx, s.jsOf(who), eid, false, p.add)
	if errors.Is(err, errClipDone) {
		err = nil
	}
	if ferr := p.finish(); err == nil {
		err = ferr
	}
	switch {
	case p.started:
		// the answer has begun: an error can only end it
	case errors.Is(err, errClipEmpty) || (err == nil && p.frames == 0):
		writeError(w, http.StatusNotFound, "event %q has no clip (unknown, or dropped from %s for age or space)", eid, wire.ClipsStream)
	case err != nil:
		eventsError(w, err)
	}
}

var errClipEmpty = errors.New("an empty clip")

// clipPlayer writes a clip's messages, handed over in order, to a client.
type clipPlayer struct {
	s       *Server
	w       http.ResponseWriter
	rc      *http.ResponseController
	ctx     context.Context
	started bool // the answer's header was written
	head    bool // a HEAD request
	video   bool
	frames  int

	// JPEG: the pace
	first time.Time // capture time of the first frame
	wall  time.Time // when it was sent
	timer *time.Timer
	buf   []byte

	// H.264
	mw     *mp4.Writer
	origin time.Time
}

// Write writes to the client under the write deadline: mp4.Writer's
// output goes here.
func (p *clipPlayer) Write(b []byte) (int, error) {
	if err := p.rc.SetWriteDeadline(time.Now().Add(p.s.cfg.WriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return 0, err
	}
	n, err := p.w.Write(b)
	if err == nil {
		err = p.rc.Flush()
	}
	return n, err
}

// begin writes the answer's header, of the clip's type.
func (p *clipPlayer) begin(video bool) {
	p.started, p.video = true, video
	h := p.w.Header()
	if video {
		h.Set("Content-Type", ClipMP4Type)
		p.mw = mp4.NewWriter(p, mp4.Options{})
	} else {
		h.Set("Content-Type", ClipMJPEGType)
	}
	noCache(h)
	p.w.WriteHeader(http.StatusOK)
}

// add plays one message of the clip.
func (p *clipPlayer) add(m jetstream.Msg, f wire.Frame) error {
	if err := p.ctx.Err(); err != nil {
		return err
	}
	v, verr := wire.ParseVideo(m.Headers())
	video := verr == nil
	if !p.started {
		p.begin(video)
		if p.head {
			return errClipDone // the type is all a HEAD asks
		}
	}
	if video != p.video {
		return nil // not the clip's kind: nothing a player could show
	}
	p.frames++
	if video {
		if p.origin.IsZero() {
			p.origin = f.Time
		}
		pts := f.Time.Sub(p.origin)
		dts := pts - time.Duration(v.PTS-v.DTS)*time.Second/wire.VideoClockRate
		rejected := p.mw.Stats().Rejected
		err := p.mw.WriteAU(m.Data(), pts, dts)
		switch {
		case errors.Is(err, mp4.ErrParamsChanged):
			return errClipDone // the camera changed its resolution: the clip ends there
		case err != nil && p.mw.Stats().Rejected == rejected:
			return err // the client went, or is too slow
		}
		return nil // a damaged access unit is skipped by the writer
	}
	if !wire.LooksLikeJPEG(m.Data()) {
		return nil
	}
	now := time.Now()
	if p.wall.IsZero() {
		p.first, p.wall = f.Time, now
	} else if d := p.wall.Add(f.Time.Sub(p.first)).Sub(now); d > 0 {
		if d > 5*time.Second { // a gap in the clip is not waited out
			p.wall = p.wall.Add(-d + 5*time.Second)
			d = 5 * time.Second
		}
		if p.timer == nil {
			p.timer = time.NewTimer(d)
		} else {
			p.timer.Reset(d)
		}
		select {
		case <-p.ctx.Done():
			return p.ctx.Err()
		case <-p.timer.C:
		}
	}
	p.buf = appendPartHeader(p.buf[:0], &frame{Frame: f, jpeg: m.Data()})
	for _, b := range [][]byte{p.buf, m.Data(), crlf} {
		if _, err := p.Write(b); err != nil {
			return err
		}
	}
	p.s.sent.Add(1)
	return nil
}

var errClipDone = errors.New("the clip ends here")

// finish ends the answer: an MP4's last fragment.
func (p *clipPlayer) finish() error {
	if p.timer != nil {
		p.timer.Stop()
	}
	if !p.started {
		return errClipEmpty
	}
	if p.mw != nil {
		if err := p.mw.Close(); err != nil && !errors.Is(err, mp4.ErrEmpty) {
			return err
		}
		return nil
	}
	_, err := p.Write([]byte("--" + boundary + "--\r\n")) // the MJPEG's end
	return err
}

var _ io.Writer = (*clipPlayer)(nil)
