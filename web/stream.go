package web

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/replay"
	"camhub/internal/wire"
)

// boundary separates the parts of an MJPEG stream.
const boundary = "camhubframe"

// MuxContentType is the type of GET /api/stream: the frames of several
// cameras on one connection, each a line of JSON (id, seq, time, width,
// height, age_ms, len) followed by len bytes of JPEG. The page reads it with
// fetch, so a grid of any size needs one connection: browsers open at most
// six HTTP/1.1 connections to a server, which one MJPEG <img> per camera
// would exhaust.
const MuxContentType = "application/x-camhub-frames"

// replayCheckTimeout bounds looking into the buffer before a rewind starts.
const replayCheckTimeout = 5 * time.Second

// httpError is an answer that could not be a stream.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

// client is one stream being served, from its handler's goroutine.
type client struct {
	s     *Server
	w     http.ResponseWriter
	rc    *http.ResponseController
	ctx   context.Context
	src   *board
	fps   float64
	buf   []byte
	sent  map[string]uint64    // per camera, the number of the frame sent last
	last  map[string]time.Time // per camera, when it was sent (with fps)
	timer *time.Timer          // with fps: wakes the client when a frame is due
	// idle, for a rewind, ends the stream once nothing has been written
	// for this long; lastWrite is when something last was.
	idle      time.Duration
	lastWrite time.Time
	idleTimer *time.Timer
	// lo are the cameras sent from their small tier (tier.go), sentLo
	// the number of the small-tier frame sent last of each, wakeLo a
	// channel closed on the next small-tier frame; nil without tiers.
	lo     map[string]bool
	sentLo map[string]uint64
	wakeLo <-chan struct{}
}

// open admits a stream of cameras ids (nil: every camera; only with the
// page's stream) and, if q asks to rewind, starts its replay player. The
// caller must call the returned close when the stream ends.
func (s *Server) open(w http.ResponseWriter, r *http.Request, ids []string, q streamQuery) (*client, func(), error) {
	if s.ctx.Err() != nil {
		return nil, nil, &httpError{http.StatusServiceUnavailable, "the server is shutting down"}
	}
	if s.clients.Add(1) > int64(s.cfg.MaxClients) {
		s.clients.Add(-1)
		s.refused.Add(1)
		return nil, nil, &httpError{http.StatusServiceUnavailable, "too many streams: " + strconv.Itoa(s.cfg.MaxClients) + " are being served"}
	}
	// The stream ends when the client goes, the server closes or the
	// login ends.
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(s.ctx, cancel)
	who := viewerOf(r)
	stopLogin := func() bool { return true }
	if who != nil {
		stopLogin = context.AfterFunc(who.ctx, cancel)
	}
	unwatch := func() {}
	if q.live() {
		unwatch = s.watch(ids)
	}
	done := func() {
		unwatch()
		stop()
		stopLogin()
		cancel()
		s.clients.Add(-1)
	}
	c := &client{
		s: s, w: w, rc: http.NewResponseController(w), ctx: ctx, src: s.live, fps: q.FPS,
		sent: make(map[string]uint64), buf: make([]byte, 0, 256),
	}
	if q.FPS > 0 {
		c.last = make(map[string]time.Time)
		c.timer = time.NewTimer(time.Hour)
		c.timer.Stop()
	}
	if !q.live() {
		if ids == nil {
			for _, cam := range s.camerasFor(who, time.Now()) {
				ids = append(ids, cam.ID)
			}
		}
		b, err := s.startReplay(ctx, cancel, s.jsOf(who), ids, q)
		if err != nil {
			done()
			return nil, nil, err
		}
		c.src = b
		c.idle, c.lastWrite = s.cfg.ReplayIdle, time.Now()
		c.idleTimer = time.NewTimer(c.idle)
	}
	return c, done, nil
}

// startReplay starts a replay player of cameras ids from q.Since ago that
// leaves its frames on a board of their own, and runs until ctx ends (or
// the player fails, which calls cancel).
func (s *Server) startReplay(ctx context.Context, cancel context.CancelFunc, js jetstream.JetStream, ids []string, q streamQuery) (*board, error) {
	if len(ids) == 0 {
		return nil, &httpError{http.StatusNotFound, "no cameras to rewind"}
	}
	if s.replays.Add(1) > int64(s.cfg.MaxReplays) {
		s.replays.Add(-1)
		s.refused.Add(1)
		return nil, &httpError{http.StatusServiceUnavailable, "too many rewinds: " + strconv.Itoa(s.cfg.MaxReplays) + " are being served"}
	}
	started := false
	defer func() {
		if !started {
			s.replays.Add(-1)
		}
	}()
	// Only cameras with frames in the buffer are replayed: a camera with
	// none would only show its next frame, which is live, not a rewind.
	ids, vids, err := s.buffered(ctx, js, ids)
	if err != nil {
		return nil, err
	}
	if s.cfg.Video == nil {
		vids = nil // H.264 cameras cannot be shown
	}
	if len(ids)+len(vids) == 0 {
		return nil, &httpError{http.StatusNotFound, "nothing to rewind: the replay buffer holds no frames of these cameras"}
	}
	if !(q.Speed >= replay.MinSpeed && q.Speed <= replay.MaxSpeed) {
		return nil, &httpError{http.StatusBadRequest, fmt.Sprintf("speed %v: must be from %v to %v (1 is real time)", q.Speed, replay.MinSpeed, replay.MaxSpeed)}
	}
	b := newBoard(len(ids) + len(vids))
	start := q.start(time.Now())
	var p *replay.Player
	if len(ids) > 0 {
		p, err = replay.NewPlayer(js, ids, start, q.Speed, func(id string, f replay.Frame, _ time.Duration) {
			b.put(&frame{id: id, Frame: f.Frame, jpeg: f.JPEG, received: time.Now()})
		})
		if err != nil {
			return nil, &httpError{http.StatusBadRequest, err.Error()}
		}
	}
	log := s.log.With("cameras", append(slices.Clip(ids), vids...), "from", start)
	failed := make(chan error, 1)
	started = s.spawn(func() {
		defer s.replays.Add(-1)
		defer cancel() // a player that fails ends its stream
		var wg sync.WaitGroup
		defer wg.Wait()
		wall := time.Now()
		for _, id := range vids {
			wg.Go(func() { s.rewindVideo(ctx, js, b, id, start, wall, q.Speed, log) })
		}
		if p == nil {
			<-ctx.Done()
			return
		}
		if err := p.Run(ctx); err != nil {
			failed <- err
			log.Warn("rewind stopped", "error", err)
		}
	})
	if !started {
		return nil, &httpError{http.StatusServiceUnavailable, "the server is shutting down"}
	}
	if p == nil {
		log.Debug("rewinding")
		return b, nil
	}
	// Answer only once the hub has accepted the rewind's consumers: a
	// refusal is an error the client can read, not an empty stream.
	wait := time.NewTimer(replayCheckTimeout)
	defer wait.Stop()
	select {
	case <-p.Ready():
	case err := <-failed:
		return nil, &httpError{http.StatusServiceUnavailable, fmt.Sprintf("the hub refused the rewind: %v", err)}
	case <-wait.C:
		cancel()
		return nil, &httpError{http.StatusServiceUnavailable, "the hub did not start the rewind in time"}
	case <-ctx.Done():
		return nil, &httpError{http.StatusServiceUnavailable, "the rewind was cancelled"}
	}
	log.Debug("rewinding")
	return b, nil
}

// buffered returns those of cameras ids that have JPEG frames in the hub's
// buffer, and those that have H.264 keyframes, asking the server once for
// each.
func (s *Server) buffered(ctx context.Context, js jetstream.JetStream, ids []string) (jpegs, videos []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, replayCheckTimeout)
	defer cancel()
	st, err := js.Stream(ctx, wire.FramesStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil, &httpError{http.StatusServiceUnavailable, fmt.Sprintf("%v: the NATS server has no stream %s; is the hub running?", replay.ErrNoBuffer, wire.FramesStream)}
	}
	if err != nil {
		return nil, nil, &httpError{http.StatusBadGateway, fmt.Sprintf("reading the replay buffer: %v", err)}
	}
	for _, filter := range []string{wire.AllFrames, wire.SubjectPrefix + ".*." + wire.KindVideo + "." + wire.VideoKey} {
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
		if err != nil {
			return nil, nil, &httpError{http.StatusBadGateway, fmt.Sprintf("reading the replay buffer: %v", err)}
		}
		for _, id := range ids {
			if info.State.Subjects[wire.FramesSubject(id)] > 0 {
				jpegs = append(jpegs, id)
			} else if info.State.Subjects[wire.VideoSubject(id, true)] > 0 {
				videos = append(videos, id)
			}
		}
	}
	return jpegs, videos, nil
}

// streamError answers a stream request that failed before it started.
func streamError(w http.ResponseWriter, err error) {
	var he *httpError
	if errors.As(err, &he) {
		writeError(w, he.status, "%s", he.msg)
		return
	}
	writeError(w, http.StatusInternalServerError, "%v", err)
}

// handleMJPEG answers GET /cams/{id}/stream.mjpg[?since=10s&speed=1&fps=5]:
// the camera's frames as multipart/x-mixed-replace, as IP cameras serve
// them, for browsers, VLC, ffmpeg and Home Assistant.
func (s *Server) handleMJPEG(w http.ResponseWriter, r *http.Request) {
	id, q, ok := s.cameraRequest(w, r)
	if !ok {
		return
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary="+boundary)
		noCache(w.Header())
		return
	}
	c, done, err := s.open(w, r, []string{id}, q)
	if err != nil {
		streamError(w, err)
		return
	}
	defer done()
	h := w.Header()
	h.Set("Content-Type", "multipart/x-mixed-replace; boundary="+boundary)
	noCache(h)
	w.WriteHeader(http.StatusOK)
	if c.rc.Flush() != nil {
		return
	}
	for {
		f, wake := c.src.next(id, c.sent[id])
		if f == nil {
			if !c.wait(wake, 0) {
				return
			}
			continue
		}
		if d := c.due(f, time.Now()); d > 0 {
			if !c.wait(wake, d) {
				return
			}
			continue
		}
		c.buf = appendPartHeader(c.buf[:0], f)
		if c.write(f, c.buf, crlf) != nil || c.flush() != nil {
			return
		}
	}
}

var crlf = []byte("\r\n")

// appendPartHeader appends an MJPEG part's header for f.
func appendPartHeader(b []byte, f *frame) []byte {
	b = append(b, "--"+boundary+"\r\n"+wire.HeaderContentType+": "+wire.ContentTypeJPEG+"\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(f.jpeg)), 10)
	b = append(b, "\r\n"+wire.HeaderSeq+": "...)
	b = strconv.AppendUint(b, f.Seq, 10)
	b = append(b, "\r\n"+wire.HeaderTime+": "...)
	b = wire.AppendTime(b, f.Time)
	return append(b, "\r\n\r\n"...)
}

// handleStream answers GET /api/stream[?cams=a,b&since=10s&speed=1&fps=5]:
// the page's stream of every camera (or cams), in MuxContentType. Cameras
// that join appear in it.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.RawQuery, MaxCameras)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	lo, err := loQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	want, ok := s.wanted(w, r, q.Cams)
	if !ok {
		return
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", MuxContentType)
		noCache(w.Header())
		return
	}
	c, done, err := s.open(w, r, q.Cams, q)
	if err != nil {
		streamError(w, err)
		return
	}
	defer done()
	if q.Since <= 0 {
		c.useTiers(lo) // a rewind is main-tier only: the buffer holds no other
	}
	wantMain := c.wantMain(want)
	h := w.Header()
	h.Set("Content-Type", MuxContentType)
	noCache(h)
	w.WriteHeader(http.StatusOK)
	if c.rc.Flush() != nil {
		return
	}
	var fresh []*frame
	for {
		var wake <-chan struct{}
		fresh, wake = c.src.newer(c.sent, wantMain, fresh[:0])
		fresh = c.newerLo(want, fresh)
		now := time.Now()
		wrote := false
		var soonest time.Duration
		for i, f := range fresh {
			fresh[i] = nil
			if d := c.due(f, now); d > 0 {
				if soonest == 0 || d < soonest {
					soonest = d
				}
				continue
			}
			c.buf = appendRecordHeader(c.buf[:0], f, now)
			if c.write(f, c.buf, nil) != nil {
				return
			}
			wrote = true
		}
		if wrote {
			if c.flush() != nil {
				return
			}
			continue
		}
		if !c.wait(wake, soonest) {
			return
		}
	}
}

// appendRecordHeader appends the JSON line before a frame in the page's
// stream. Camera ids need no escaping (wire.ValidateID).
func appendRecordHeader(b []byte, f *frame, now time.Time) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, f.id...)
	b = append(b, `","seq":`...)
	b = strconv.AppendUint(b, f.Seq, 10)
	b = append(b, `,"time":"`...)
	b = wire.AppendTime(b, f.Time)
	b = append(b, `","width":`...)
	b = strconv.AppendInt(b, int64(f.Width), 10)
	b = append(b, `,"height":`...)
	b = strconv.AppendInt(b, int64(f.Height), 10)
	b = append(b, `,"age_ms":`...)
	b = strconv.AppendInt(b, max(now.Sub(f.Time), 0).Milliseconds(), 10)
	if f.lo {
		b = append(b, `,"tier":"lo"`...)
	}
	b = append(b, `,"len":`...)
	b = strconv.AppendInt(b, int64(len(f.jpeg)), 10)
	return append(b, "}\n"...)
}

// noCache keeps proxies and browsers from caching or buffering a stream.
func noCache(h http.Header) {
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: pass it on as it comes
}

// due says how long until a frame of f's camera may be sent, with a rate
// limit; 0: now.
func (c *client) due(f *frame, now time.Time) time.Duration {
	if c.fps <= 0 {
		return 0
	}
	last, ok := c.last[f.id]
	if !ok {
		return 0
	}
	return max(last.Add(time.Duration(float64(time.Second)/c.fps)).Sub(now), 0)
}

// wait waits for wake, for d if it is positive, or for the stream's end,
// and reports whether the stream goes on.
func (c *client) wait(wake <-chan struct{}, d time.Duration) bool {
	var tc <-chan time.Time
	if d > 0 {
		c.timer.Reset(d)
		tc = c.timer.C
		defer c.timer.Stop()
	}
	var idle <-chan time.Time
	if c.idleTimer != nil {
		left := c.idle - time.Since(c.lastWrite)
		if left <= 0 {
			c.s.idleCut.Add(1)
			return false
		}
		c.idleTimer.Reset(left)
		idle = c.idleTimer.C
		defer c.idleTimer.Stop()
	}
	select {
	case <-wake:
		return true
	case <-c.wakeLo: // nil without tiers: never
		return true
	case <-tc:
		return true
	case <-idle:
		c.s.idleCut.Add(1)
		return false
	case <-c.ctx.Done():
		return false
	}
}

// write writes head, f's JPEG and tail under the write deadline, and
// counts the frame and what the client skipped before it.
func (c *client) write(f *frame, head, tail []byte) error {
	c.lastWrite = time.Now()
	c.rc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
	_, err := c.w.Write(head)
	if err == nil {
		_, err = c.w.Write(f.jpeg)
	}
	if err == nil && tail != nil {
		_, err = c.w.Write(tail)
	}
	if err != nil {
		return c.failed(err)
	}
	sent := c.sent
	if f.lo {
		sent = c.sentLo
	}
	if prev := sent[f.id]; prev != 0 && f.n > prev+1 {
		c.s.skipped.Add(f.n - prev - 1)
	}
	sent[f.id] = f.n
	if c.last != nil {
		c.last[f.id] = time.Now()
	}
	c.s.sent.Add(1)
	return nil
}

// flush sends what was written.
func (c *client) flush() error {
	c.rc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
	if err := c.rc.Flush(); err != nil {
		return c.failed(err)
	}
	return nil
}

// failed counts a client cut off by the write deadline.
func (c *client) failed(err error) error {
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		c.s.dropped.Add(1)
		c.s.log.Debug("client too slow: cut off", "timeout", c.s.cfg.WriteTimeout)
	}
	return err
}

// wanted is which cameras a stream of r carries: cams (every one known,
// else a 404 is written and ok is false), or every camera; with logins,
// only those r's user may see. nil means every camera.
func (s *Server) wanted(w http.ResponseWriter, r *http.Request, cams []string) (want func(string) bool, ok bool) {
	who := viewerOf(r)
	if who != nil {
		want = who.allows
	}
	if cams != nil {
		set := make(map[string]bool, len(cams))
		for _, id := range cams {
			if !s.known(id) || !who.allows(id) {
				unknownCamera(w, id)
				return nil, false
			}
			set[id] = true
		}
		want = func(id string) bool { return set[id] }
	}
	return want, true
}
