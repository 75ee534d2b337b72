package web

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/gopqueue"
	"camhub/internal/mp4"
	"camhub/internal/replay"
	"camhub/internal/wire"
)

// The timeline: the page's scrub bar over everything the hub's buffer
// holds. Three requests serve it:
//
//   - GET /api/timeline: what the buffer holds of each camera the user may
//     see (capture times of the oldest and newest frame), polled as the
//     buffer moves.
//   - GET /api/still?at=T: every camera's picture at T, once, in the
//     records of GET /api/media: a JPEG camera's frame at or before T; an
//     H.264 camera's keyframe at or before T (exact=1: and the access units
//     after it up to T) as an MP4 init segment and one fragment, which the
//     page decodes itself (WebCodecs or MSE), so that scrubbing needs no
//     decoder on the server; with jpeg=1, for a page that cannot decode
//     H.264, a server with a decoder (viewer --http) sends a JPEG of it.
//   - GET /api/media?at=T&speed=S (and /api/stream?at=T): every camera
//     played from T, in sync, on into live: JPEG cameras by a
//     replay.Player, H.264 cameras by replay.PlayVideo from their keyframe
//     at or before T (the access units before T come at once, for the page
//     to decode without showing).

// timelineTimeout bounds reading what the buffer holds, and a still.
const timelineTimeout = 5 * time.Second

// timelineWorkers is how many cameras a request reads at once.
const timelineWorkers = 8

// maxAhead is how far past the server's clock a requested time may be (an
// agent's clock a little ahead).
const maxAhead = time.Minute

// TimelineCamera is what the buffer holds of one camera.
type TimelineCamera struct {
	ID    string    `json:"id"`
	From  time.Time `json:"from,omitzero"`   // capture time of its oldest frame (access unit) in the buffer
	To    time.Time `json:"to,omitzero"`     // and of its newest
	Video bool      `json:"video,omitempty"` // it sends H.264
	// Error says why the buffer could not be read for this camera (a
	// busy hub that did not answer in time): it has no From and To, and
	// the timeline's ends are the other cameras'.
	Error string `json:"error,omitempty"`
}

// Timeline is the body of GET /api/timeline.
type Timeline struct {
	From    *time.Time       `json:"from"` // the oldest of the cameras' From; null: the buffer holds nothing of them
	To      *time.Time       `json:"to"`   // the newest of their To
	Now     time.Time        `json:"now"`  // the server's clock
	Cameras []TimelineCamera `json:"cameras"`
}

// parseAt reads a capture time: milliseconds since the Unix epoch ("1764547200123")
// or RFC 3339 ("2026-12-04T20:00:00.5Z"), from MaxSince before now to
// maxAhead after it.
func parseAt(s string, now time.Time) (time.Time, error) {
	var t time.Time
	if ms, err := strconv.ParseFloat(s, 64); err == nil {
		if !math.IsNaN(ms) && !math.IsInf(ms, 0) && math.Abs(ms) < 1e15 {
			t = time.UnixMicro(int64(math.Round(ms * 1000)))
		}
	} else if p, err := time.Parse(time.RFC3339Nano, s); err == nil {
		t = p
	}
	if t.IsZero() || t.Before(now.Add(-MaxSince)) || t.After(now.Add(maxAhead)) {
		return time.Time{}, fmt.Errorf("%w: at=%q: want a capture time within %v before now, in milliseconds since 1970 or RFC 3339", ErrBadRequest, s, MaxSince)
	}
	return t, nil
}

// viewable is the cameras a request may see and asked for (want, from
// Server.wanted), sorted by id.
func (s *Server) viewable(r *http.Request, want func(string) bool) []string {
	var ids []string
	for _, c := range s.camerasFor(viewerOf(r), time.Now()) {
		if want == nil || want(c.ID) {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// eachCamera calls f for each of ids, timelineWorkers at a time, and
// returns when all have returned.
func eachCamera(ids []string, f func(i int, id string)) {
	sem := make(chan struct{}, timelineWorkers)
	var wg sync.WaitGroup
	for i, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f(i, id)
		})
	}
	wg.Wait()
}

// handleTimeline answers GET /api/timeline[?cams=a,b]: what the buffer
// holds of every camera (or cams).
func (s *Server) handleTimeline(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.RawQuery, MaxCameras)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	want, ok := s.wanted(w, r, q.Cams)
	if !ok {
		return
	}
	ids := s.viewable(r, want)
	js := s.jsOf(viewerOf(r))
	ctx, cancel := context.WithTimeout(r.Context(), timelineTimeout)
	defer cancel()
	cams := make([]TimelineCamera, len(ids))
	errs := make([]error, len(ids))
	eachCamera(ids, func(i int, id string) {
		cams[i].ID = id
		first, last, err := replay.Ends(ctx, js, id)
		if err == nil {
			cams[i].From, cams[i].To = first.Time, last.Time
			return
		}
		if errors.Is(err, replay.ErrNoFrames) {
			vf, vl, verr := replay.VideoEnds(ctx, js, id)
			if verr == nil {
				cams[i].From, cams[i].To, cams[i].Video = vf.Time, vl.Time, true
				return
			}
			if !errors.Is(verr, replay.ErrNoFrames) {
				err = verr
			}
		}
		errs[i] = err
	})
	tl := Timeline{Now: time.Now(), Cameras: make([]TimelineCamera, 0, len(cams))}
	for i, c := range cams {
		switch err := errs[i]; {
		case errors.Is(err, replay.ErrNoBuffer):
			writeError(w, http.StatusServiceUnavailable, "%v", err)
			return
		case errors.Is(err, replay.ErrNoFrames):
			continue // nothing of it in the buffer
		case err != nil:
			s.warn.Warn("timeline: reading the replay buffer", "camera", c.ID, "error", err)
			tl.Cameras = append(tl.Cameras, TimelineCamera{ID: c.ID, Video: c.Video, Error: err.Error()})
			continue
		}
		if tl.From == nil || c.From.Before(*tl.From) {
			tl.From = new(c.From)
		}
		if tl.To == nil || c.To.After(*tl.To) {
			tl.To = new(c.To)
		}
		tl.Cameras = append(tl.Cameras, c)
	}
	writeJSON(w, tl)
}

// still is one camera's picture at a time: a JPEG frame, or an H.264
// keyframe and the access units after it.
type still struct {
	id    string
	frame replay.Frame // a JPEG camera's, or an H.264 camera's decoded by the server
	gop   []replay.AU  // an H.264 camera's, for the page to decode
	err   error
}

// stillAt reads camera id's picture at t. With exact, an H.264 camera's
// access units go up to t; with jpeg, the server decodes them (it must
// have a decoder).
func (s *Server) stillAt(ctx context.Context, js jetstream.JetStream, id string, t time.Time, exact, jpeg bool) still {
	st := still{id: id}
	video := s.isVideo(id)
	for range 2 {
		if video {
			st.gop, st.err = replay.GOPAt(ctx, js, id, t, exact)
			if st.err == nil && jpeg {
				if s.cfg.Video == nil {
					st.gop, st.err = nil, fmt.Errorf("camera %q sends H.264: %w: this server was started without one", id, replay.ErrNoDecoder)
				} else {
					st.frame, st.err = replay.DecodeNewest(id, st.gop, s.cfg.Video)
					st.gop = nil
				}
			}
		} else {
			st.frame, st.err = replay.FrameAt(ctx, js, id, t)
		}
		if !errors.Is(st.err, replay.ErrNoFrames) {
			return st
		}
		video = !video // its codec is not what this server saw last
	}
	return st
}

// handleStill answers GET /api/still?at=T[&exact=1][&jpeg=1][&cams=a,b]:
// every camera's (or cams') picture at T in MediaContentType, each as it
// is read; then the answer ends. Cameras with nothing in the buffer are
// left out.
func (s *Server) handleStill(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.RawQuery, MaxCameras)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	v, _ := url.ParseQuery(r.URL.RawQuery) // parseQuery read it
	var exact, jpeg bool
	for name, p := range map[string]*bool{"exact": &exact, "jpeg": &jpeg} {
		if s, ok := one(v, name); ok {
			if *p, err = strconv.ParseBool(s); err != nil {
				writeError(w, http.StatusBadRequest, "%v: %s=%q: want 1 or 0", ErrBadRequest, name, s)
				return
			}
		}
	}
	want, ok := s.wanted(w, r, q.Cams)
	if !ok {
		return
	}
	if q.At.IsZero() {
		writeError(w, http.StatusBadRequest, "%v: at: missing; say which capture time to show", ErrBadRequest)
		return
	}
	ids := s.viewable(r, want)
	js := s.jsOf(viewerOf(r))
	ctx, cancel := context.WithTimeout(r.Context(), timelineTimeout)
	defer cancel()

	h := w.Header()
	h.Set("Content-Type", MediaContentType)
	noCache(h)
	w.WriteHeader(http.StatusOK)
	c := &client{s: s, w: w, rc: http.NewResponseController(w), ctx: ctx, buf: make([]byte, 0, 256)}
	var mu sync.Mutex // one camera's records at a time
	failed := false
	eachCamera(ids, func(_ int, id string) {
		st := s.stillAt(ctx, js, id, q.At, exact, jpeg)
		if st.err != nil {
			if !errors.Is(st.err, replay.ErrNoFrames) && ctx.Err() == nil {
				s.warn.Warn("cannot read a camera's picture at a time", "camera", id, "at", q.At, "error", st.err)
			}
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if failed {
			return
		}
		if err := s.writeStill(c, &st); err != nil {
			failed = true
			cancel()
			return
		}
		if c.flush() != nil {
			failed = true
			cancel()
		}
	})
}

// writeStill writes a still's records: a JPEG, or an init segment and
// one fragment. An error is the client's connection failing.
func (s *Server) writeStill(c *client, st *still) error {
	if st.gop == nil {
		f := st.frame
		rec := MediaRecord{Kind: RecordJPEG, ID: st.id, Time: f.Time, Sent: time.Now(), Seq: f.Seq,
			Width: f.Width, Height: f.Height, Type: wire.ContentTypeJPEG}
		return c.writeRecord(&rec, f.JPEG)
	}
	key, last := st.gop[0], st.gop[len(st.gop)-1]
	m, err := mp4.NewMuxer(key.Data)
	if err != nil {
		s.media.broken.Add(1)
		return nil // the page keeps the picture it has
	}
	samples := make([]mp4.Sample, len(st.gop))
	for i, a := range st.gop {
		samples[i] = mp4.Sample{AU: a.Data, PTS: tickDuration(a.PTS), DTS: tickDuration(a.DTS)}
	}
	interval := defaultFrameInterval
	if n := len(samples); n > 1 {
		if d := samples[n-1].DTS - samples[n-2].DTS; d > 0 && d < time.Second {
			interval = d
		}
	}
	frag, err := m.Fragment(samples, samples[len(samples)-1].DTS+interval)
	if err != nil {
		s.media.broken.Add(uint64(len(samples)))
		return nil
	}
	sps := m.SPS()
	rec := MediaRecord{Kind: RecordInit, ID: st.id, Sent: time.Now(), Seq: key.Seq, Width: sps.Width, Height: sps.Height, Type: m.MIME()}
	if err := c.writeRecord(&rec, m.Init()); err != nil {
		return err
	}
	rec = MediaRecord{Kind: RecordFragment, ID: st.id, Time: last.Time, Sent: time.Now(), Seq: last.Seq,
		MediaTime: tickDuration(last.PTS - key.PTS), Width: sps.Width, Height: sps.Height}
	if err := c.writeRecord(&rec, frag); err != nil {
		return err
	}
	s.media.inits.Add(1)
	s.media.fragments.Add(1)
	return nil
}

// handleMediaReplay answers GET /api/media?at=T|since=D[&speed=S][&cams=a,b]:
// every camera (or cams) played from T in sync and on into live, in
// MediaContentType. H.264 cameras start at their keyframe at or before T;
// the access units captured before T come at once (the page decodes them
// without showing them), the rest at their pace.
func (s *Server) handleMediaReplay(w http.ResponseWriter, r *http.Request, q streamQuery, want func(string) bool) {
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", MediaContentType)
		noCache(w.Header())
		return
	}
	if !(q.Speed >= replay.MinSpeed && q.Speed <= replay.MaxSpeed) {
		writeError(w, http.StatusBadRequest, "speed %v: must be from %v to %v (1 is real time)", q.Speed, replay.MinSpeed, replay.MaxSpeed)
		return
	}
	if s.ctx.Err() != nil {
		writeError(w, http.StatusServiceUnavailable, "the server is shutting down")
		return
	}
	if s.clients.Add(1) > int64(s.cfg.MaxClients) {
		s.clients.Add(-1)
		s.refused.Add(1)
		writeError(w, http.StatusServiceUnavailable, "too many streams: %d are being served", s.cfg.MaxClients)
		return
	}
	defer s.clients.Add(-1)
	who := viewerOf(r)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()
	if who != nil {
		defer context.AfterFunc(who.ctx, cancel)()
	}
	js := s.jsOf(who)
	jpegs, vids, err := s.buffered(ctx, js, s.viewable(r, want))
	if err != nil {
		streamError(w, err)
		return
	}
	if len(jpegs)+len(vids) == 0 {
		writeError(w, http.StatusNotFound, "nothing to rewind: the replay buffer holds no frames of these cameras")
		return
	}
	src := newBoard(0)
	if len(jpegs) > 0 {
		if src, err = s.startReplay(ctx, cancel, js, jpegs, q); err != nil {
			streamError(w, err)
			return
		}
	} else {
		if s.replays.Add(1) > int64(s.cfg.MaxReplays) {
			s.replays.Add(-1)
			s.refused.Add(1)
			writeError(w, http.StatusServiceUnavailable, "too many rewinds: %d are being served", s.cfg.MaxReplays)
			return
		}
		defer s.replays.Add(-1)
	}
	start, wall := q.start(time.Now()), time.Now()
	wake := make(chan struct{}, 1)
	cams := make([]*mediaCam, 0, len(vids))
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for _, id := range vids {
		v := &mediaCam{id: id, q: gopqueue.New(mediaQueueAUs, mediaQueueBytes), interval: defaultFrameInterval}
		cams = append(cams, v)
		wg.Add(1)
		if !s.spawn(func() {
			defer wg.Done()
			err := replay.PlayVideo(ctx, js, id, start, wall, q.Speed, func(a replay.AU) {
				if v.q.Push(a) {
					v.q.CaughtUp(nil) // it starts at a keyframe: cannot happen
				}
				select {
				case wake <- struct{}{}:
				default:
				}
			})
			if err != nil && ctx.Err() == nil {
				s.warn.Warn("rewind of an H.264 camera stopped", "camera", id, "error", err)
			}
		}) {
			wg.Done()
			writeError(w, http.StatusServiceUnavailable, "the server is shutting down")
			return
		}
	}

	h := w.Header()
	h.Set("Content-Type", MediaContentType)
	noCache(h)
	w.WriteHeader(http.StatusOK)
	c := &client{s: s, w: w, rc: http.NewResponseController(w), ctx: ctx, src: src,
		sent: make(map[string]uint64), buf: make([]byte, 0, 256)}
	if c.rc.Flush() != nil {
		return
	}
	var fresh []*frame
	for {
		var bwake <-chan struct{}
		fresh, bwake = c.src.newer(c.sent, nil, fresh[:0])
		wrote := false
		now := time.Now()
		for i, f := range fresh {
			fresh[i] = nil
			if c.sendJPEG(f, now) != nil {
				return
			}
			wrote = true
		}
		for _, v := range cams {
			ok, err := s.sendVideo(c, v)
			if err != nil {
				return
			}
			wrote = wrote || ok
		}
		if wrote {
			if c.flush() != nil {
				return
			}
			continue
		}
		select {
		case <-bwake:
		case <-wake:
		case <-ctx.Done():
			return
		}
	}
}

// handleSnapshotAt answers GET /cams/{id}/snapshot.jpg?at=T: camera id's
// picture at T, a JPEG (an H.264 camera's decoded by the server, if it
// has a decoder: exactly at T, from its keyframe before).
func (s *Server) handleSnapshotAt(w http.ResponseWriter, r *http.Request, id string, q streamQuery) {
	ctx, cancel := context.WithTimeout(r.Context(), snapshotTimeout)
	defer cancel()
	st := s.stillAt(ctx, s.jsOf(viewerOf(r)), id, q.At, true, true)
	switch err := st.err; {
	case errors.Is(err, replay.ErrNoDecoder):
		writeError(w, http.StatusNotImplemented, "%v", err)
		return
	case errors.Is(err, replay.ErrNoFrames):
		writeError(w, http.StatusNotFound, "camera %q has no frame in the buffer: %v", id, err)
		return
	case errors.Is(err, replay.ErrNoBuffer):
		writeError(w, http.StatusServiceUnavailable, "%v", err)
		return
	case err != nil:
		writeError(w, http.StatusBadGateway, "camera %q: %v", id, err)
		return
	}
	writeSnapshot(w, id, st.frame.Frame, st.frame.JPEG, q.Download)
}
