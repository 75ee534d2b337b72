package web

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"camhub/internal/gopqueue"
	"camhub/internal/mp4"
	"camhub/internal/replay"
	"camhub/internal/wire"
)

// H.264 played by the browser. GET /api/media carries every camera the
// page shows on one connection: H.264 cameras as fragmented MP4 (an init
// segment, then a fragment per run of access units) that the page feeds
// to Media Source Extensions, JPEG cameras as JPEG as in /api/stream.
// Nothing is decoded on the server, so it costs what copying bytes costs.
//
// Each client has, per H.264 camera, a gopqueue: the receiving goroutine
// pushes every access unit into the queue of every client that shows the
// camera (the payload is shared, not copied) and wakes it; the client's
// handler takes what is queued and writes it as one fragment. A client
// that falls behind loses whole GOPs (a new keyframe supersedes what was
// not yet sent; a queue past its limits waits for the next keyframe),
// counted in camhub_web_video_aus_skipped_total, never a frame whose
// dependants are sent. A client's first access unit of a camera that is
// not a keyframe fetches the camera's newest GOP from the hub's buffer
// (replay.NewestGOP), so a tile shows a picture at once.

// Limits of a client's queue of one H.264 camera: how far it may fall
// behind before it waits for the next keyframe.
const (
	mediaQueueAUs   = 300
	mediaQueueBytes = 16 << 20
)

// defaultFrameInterval is how long the last access unit of a fragment
// lasts until the camera's rate is known.
const defaultFrameInterval = time.Second / 15

// media is the server's clients of GET /api/media.
type media struct {
	mu      sync.Mutex
	clients map[*mediaClient]struct{}

	inits     atomic.Uint64 // init segments sent
	fragments atomic.Uint64 // fragments sent
	skipped   atomic.Uint64 // access units not sent to slow clients (whole GOPs)
	broken    atomic.Uint64 // access units the muxer refused (bad timestamps or bitstream)
	badLo     atomic.Uint64 // small-tier messages that were not access units (tier.go)
	switches  atomic.Uint64 // tracks restarted on a stream: a camera's tier changed (tier.go)
	keyWaits  atomic.Uint64 // tracks that waited keyWait for a first keyframe while access units came

	// under mu: when each camera's small-tier H.264 last came (tier.go)
	loSeen map[string]time.Time
}

// mediaClient is one GET /api/media stream.
type mediaClient struct {
	ctx  context.Context
	want func(string) bool   // nil: every camera
	lo   map[string]bool     // cameras read from their small tier while it is live (tier.go)
	wake chan struct{}       // signalled (not closed) when an access unit is queued
	js   jetstream.JetStream // reads the buffer: the user's own connection with logins

	mu   sync.Mutex
	cams map[camTier]*mediaCam
}

// camTier names one tier of one camera.
type camTier struct {
	id string
	lo bool
}

// mediaCam is one tier of one H.264 camera of one client.
type mediaCam struct {
	id    string
	lo    bool         // the small tier
	owner *mediaClient // nil: a rewind's (timeline.go), one tier only
	q     *gopqueue.Queue
	// retrack, set when the tier is to be sent again after the other
	// one was: the handler starts a new track at its next keyframe
	retrack atomic.Bool
	// under the client's mu: shown, the page plays this tier's track;
	// paused, the other tier's track replaced it
	shown, paused bool

	// used by the client's handler alone
	mux       *mp4.Muxer
	originPTS int64         // ticks: the track's first presentation time
	interval  time.Duration // between the camera's last two access units
	lastDTS   time.Duration // of the last access unit sent
	samples   []mp4.Sample  // reused
	skipped   uint64        // the queue's count when last read
	waitFrom  time.Time     // the track waits for a keyframe since (zero: it does not)
	waitSaid  bool          // and that was counted
}

// keyWait is how long a track may wait for its first keyframe, its
// camera's access units coming and skipped, before that is counted and
// logged: the page holds the camera's old picture meanwhile.
const keyWait = 10 * time.Second

// pushMedia gives access unit a of camera id's main tier (lo false) or
// small tier to every client that shows the camera at that tier.
func (s *Server) pushMedia(id string, a replay.AU, lo bool) {
	s.media.mu.Lock()
	defer s.media.mu.Unlock()
	loLive := s.media.loLive(id, a.Stored, lo)
	for c := range s.media.clients {
		if c.want != nil && !c.want(id) {
			continue
		}
		// The tier the client should read gets the access unit; the
		// other one too while the page still plays it: it goes on
		// until the new tier's first keyframe replaces it (sendVideo).
		target := lo == (c.lo[id] && loLive)
		c.mu.Lock()
		mc := c.cams[camTier{id, lo}]
		if !target && (mc == nil || !mc.shown) {
			c.mu.Unlock()
			continue
		}
		if mc == nil {
			if len(c.cams) >= 2*MaxCameras {
				c.mu.Unlock()
				continue
			}
			mc = &mediaCam{id: id, lo: lo, owner: c, q: gopqueue.New(mediaQueueAUs, mediaQueueBytes), interval: defaultFrameInterval}
			c.cams[camTier{id, lo}] = mc
		}
		if mc.paused {
			mc.paused = false
			mc.retrack.Store(true)
		}
		c.mu.Unlock()
		if mc.q.Push(a) {
			q := mc.q
			// the small tier is live only: it starts at its next keyframe
			if lo || !s.spawn(func() { s.mediaCatchUp(c.ctx, c.js, id, q, c.wake) }) {
				q.CaughtUp(nil)
			}
		}
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// mediaCatchUp reads camera id's newest GOP from the buffer into q.
func (s *Server) mediaCatchUp(ctx context.Context, js jetstream.JetStream, id string, q *gopqueue.Queue, wake chan struct{}) {
	ctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	defer cancel()
	gop, err := replay.NewestGOP(ctx, js, id)
	if err != nil && ctx.Err() == nil {
		s.warn.Warn("cannot start an H.264 camera from the replay buffer; waiting for its next keyframe", "camera", id, "error", err)
	}
	q.CaughtUp(gop)
	select {
	case wake <- struct{}{}:
	default:
	}
}

// handleMedia answers GET /api/media[?cams=a,b]: the live pictures of
// every camera (or cams) in MediaContentType. Cameras that join appear in
// it. With since or at it rewinds (handleMediaReplay).
func (s *Server) handleMedia(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.RawQuery, MaxCameras)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if q.FPS > 0 {
		writeError(w, http.StatusBadRequest, "/api/media sends every frame: limit the rate with /api/stream")
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
	if !q.live() {
		s.handleMediaReplay(w, r, q, want) // timeline.go
		return
	}
	who := viewerOf(r) // nil without logins
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", MediaContentType)
		noCache(w.Header())
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
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()
	if who != nil {
		// The user's sessions end (revoked): so does the stream.
		defer context.AfterFunc(who.ctx, cancel)()
	}

	mc := &mediaClient{ctx: ctx, want: want, lo: lo, js: s.jsOf(who), wake: make(chan struct{}, 1), cams: make(map[camTier]*mediaCam)}
	s.media.mu.Lock()
	s.media.clients[mc] = struct{}{}
	s.media.mu.Unlock()
	defer func() {
		s.media.mu.Lock()
		delete(s.media.clients, mc)
		s.media.mu.Unlock()
	}()

	h := w.Header()
	h.Set("Content-Type", MediaContentType)
	noCache(h)
	w.WriteHeader(http.StatusOK)
	c := &client{s: s, w: w, rc: http.NewResponseController(w), ctx: ctx, src: s.live,
		sent: make(map[string]uint64), buf: make([]byte, 0, 256)}
	if c.rc.Flush() != nil {
		return
	}
	c.useTiers(lo)
	// JPEG cameras come from the live board; H.264 cameras' tiles on
	// the board (pictures decoded for /api/stream) are left out.
	wantJPEG := func(id string) bool {
		if want != nil && !want(id) {
			return false
		}
		mc.mu.Lock()
		defer mc.mu.Unlock()
		return mc.cams[camTier{id, false}] == nil && mc.cams[camTier{id, true}] == nil
	}
	wantMain := c.wantMain(wantJPEG)
	var (
		fresh []*frame
		cams  []*mediaCam
	)
	for {
		var wake <-chan struct{}
		fresh, wake = c.src.newer(c.sent, wantMain, fresh[:0])
		fresh = c.newerLo(wantJPEG, fresh)
		wrote := false
		now := time.Now()
		for i, f := range fresh {
			fresh[i] = nil
			if s.isVideo(f.id) {
				c.sent[f.id] = f.n // a decoded picture of an H.264 camera
				continue
			}
			if c.sendJPEG(f, now) != nil {
				return
			}
			wrote = true
		}
		mc.mu.Lock()
		cams = cams[:0]
		for _, v := range mc.cams {
			cams = append(cams, v)
		}
		mc.mu.Unlock()
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
		case <-wake:
		case <-c.wakeLo: // nil without tiers: never
		case <-mc.wake:
		case <-ctx.Done():
			return
		}
	}
}

// sendJPEG writes frame f, a JPEG camera's, as a record of the media
// stream; now is the record's send time.
func (c *client) sendJPEG(f *frame, now time.Time) error {
	rec := MediaRecord{Kind: RecordJPEG, ID: f.id, Time: f.Time, Sent: now, Seq: f.Seq,
		Width: f.Width, Height: f.Height, Type: wire.ContentTypeJPEG}
	c.buf = appendRecordHead(c.buf[:0], &rec, len(f.jpeg))
	return c.write(f, c.buf, nil)
}

// sendVideo writes what camera v's queue holds as a fragment, preceded by
// an init segment when the track starts or changes. It reports whether it
// wrote anything; an error is the client's connection failing.
func (s *Server) sendVideo(c *client, v *mediaCam) (bool, error) {
	if v.retrack.Swap(false) {
		v.mux = nil // sent again after the other tier: a new track from a keyframe
		v.q.Restart()
	}
	aus, skipped := v.q.Take()
	d := skipped - v.skipped
	s.media.skipped.Add(d)
	v.skipped = skipped
	if len(aus) == 0 {
		if v.mux == nil && d > 0 {
			s.waitingForKey(v) // its access units come, its keyframe does not
		}
		return false, nil
	}
	if v.owner.replaced(v) {
		return false, nil // the other tier's track replaced this one
	}
	wrote := false
	if v.mux == nil && !aus[0].Key {
		// cannot happen: a queue hands out runs from a keyframe
		s.media.broken.Add(uint64(len(aus)))
		v.q.Restart()
		return false, nil
	}
	if v.mux == nil {
		if err := s.startTrack(c, v, aus[0]); err != nil {
			if errors.Is(err, errClient) {
				return wrote, err
			}
			return wrote, nil
		}
		if v.owner.shown(v) {
			s.media.switches.Add(1)
		}
		wrote = true
	}
	v.samples = v.samples[:0]
	for _, a := range aus {
		v.samples = append(v.samples, mp4.Sample{AU: a.Data, PTS: tickDuration(a.PTS), DTS: tickDuration(a.DTS)})
	}
	samples := v.samples
	defer clear(samples) // keep no access unit once sent
	// the last sample lasts the camera's last frame interval: the next
	// fragment then starts where it ends, leaving the player no gap
	prev, last := v.lastDTS, samples[len(samples)-1].DTS
	if len(samples) > 1 {
		prev = samples[len(samples)-2].DTS
	}
	if d := last - prev; d > 0 && d < time.Second {
		v.interval = d
	}
	v.lastDTS = last
	frag, err := v.mux.Fragment(samples, last+v.interval)
	if err != nil && aus[0].Key {
		// a new SPS or a clock that went back (the agent restarted):
		// a new track from this keyframe
		if err = s.startTrack(c, v, aus[0]); err != nil {
			if errors.Is(err, errClient) {
				return wrote, err
			}
			return wrote, nil
		}
		wrote = true
		frag, err = v.mux.Fragment(samples, last+v.interval)
	}
	if err != nil {
		// a damaged access unit or a timestamp out of order: start over
		// at the next keyframe, with a new track
		s.media.broken.Add(uint64(len(aus)))
		s.warn.Warn("cannot put H.264 into MP4 for the page; waiting for the next keyframe", "camera", v.id, "error", err)
		v.mux = nil
		v.q.Restart()
		return wrote, nil
	}
	newest := aus[len(aus)-1]
	rec := MediaRecord{Kind: RecordFragment, ID: v.id, Time: newest.Time, Sent: time.Now(), Seq: newest.Seq,
		MediaTime: tickDuration(newest.PTS - v.originPTS), Width: newest.Width, Height: newest.Height}
	if err := c.writeRecord(&rec, frag); err != nil {
		return wrote, err
	}
	s.media.fragments.Add(1)
	s.sent.Add(uint64(len(aus)))
	return true, nil
}

// waitingForKey notes that camera tier v's track waits for its first
// keyframe while access units come, counting and logging it once it has
// waited keyWait.
func (s *Server) waitingForKey(v *mediaCam) {
	now := time.Now()
	if v.waitFrom.IsZero() {
		v.waitFrom = now
		return
	}
	if v.waitSaid || now.Sub(v.waitFrom) < keyWait {
		return
	}
	v.waitSaid = true
	s.media.keyWaits.Add(1)
	tier := wire.TierMain
	if v.lo {
		tier = wire.TierLo
	}
	s.warn.Warn("no keyframe of a camera for the page: it holds the camera's old picture", "camera", v.id, "tier", tier, "waited", keyWait)
}

// errClient marks a failure to write to the client.
var errClient = errors.New("web: writing to the client")

// startTrack makes camera v a new track from keyframe key and writes its
// init segment.
func (s *Server) startTrack(c *client, v *mediaCam, key replay.AU) error {
	m, err := mp4.NewMuxer(key.Data)
	if err != nil {
		s.media.broken.Add(1)
		s.warn.Warn("an H.264 keyframe the page cannot be given; waiting for the next", "camera", v.id, "error", err)
		v.mux = nil
		v.q.Restart()
		return err
	}
	v.mux, v.originPTS = m, key.PTS
	v.waitFrom, v.waitSaid = time.Time{}, false
	sps := m.SPS()
	rec := MediaRecord{Kind: RecordInit, ID: v.id, Sent: time.Now(), Seq: key.Seq,
		Width: sps.Width, Height: sps.Height, Type: m.MIME()}
	if err := c.writeRecord(&rec, m.Init()); err != nil {
		return errors.Join(errClient, err)
	}
	s.media.inits.Add(1)
	return nil
}

// writeRecord writes a record of rec's fields and payload under the write
// deadline.
func (c *client) writeRecord(rec *MediaRecord, payload []byte) error {
	c.lastWrite = time.Now()
	c.rc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
	c.buf = appendRecordHead(c.buf[:0], rec, len(payload))
	_, err := c.w.Write(c.buf)
	if err == nil {
		_, err = c.w.Write(payload)
	}
	if err != nil {
		return c.failed(err)
	}
	return nil
}

// tickDuration converts a time in 90 kHz ticks to a Duration without
// overflowing for any tick count a Duration can hold.
func tickDuration(t int64) time.Duration {
	return time.Duration(t/wire.VideoClockRate)*time.Second +
		time.Duration(t%wire.VideoClockRate)*time.Second/wire.VideoClockRate
}

// mediaStats is what GET /api/media did, for the metrics.
type mediaStats struct {
	Clients                                                      int
	Inits, Fragments, Skipped, Broken, BadLo, Switches, KeyWaits uint64
}

func (s *Server) mediaStats() mediaStats {
	s.media.mu.Lock()
	n := len(s.media.clients)
	s.media.mu.Unlock()
	return mediaStats{Clients: n, Inits: s.media.inits.Load(), Fragments: s.media.fragments.Load(),
		Skipped: s.media.skipped.Load(), Broken: s.media.broken.Load(), BadLo: s.media.badLo.Load(), Switches: s.media.switches.Load(), KeyWaits: s.media.keyWaits.Load()}
}

// Metrics of GET /api/media.
var (
	mMediaClients = prometheus.NewDesc("camhub_web_media_clients",
		"Streams of GET /api/media (the page playing H.264 itself) being served.", nil, nil)
	mMediaInits = prometheus.NewDesc("camhub_web_video_inits_total",
		"MP4 init segments sent to pages: an H.264 camera's track starting or changing.", nil, nil)
	mMediaFragments = prometheus.NewDesc("camhub_web_video_fragments_total",
		"MP4 fragments of H.264 access units sent to pages.", nil, nil)
	mMediaSkipped = prometheus.NewDesc("camhub_web_video_aus_skipped_total",
		"H.264 access units not sent to pages that fell behind: whole GOPs, the newest kept.", nil, nil)
	mMediaBroken = prometheus.NewDesc("camhub_web_video_aus_unmuxable_total",
		"H.264 access units that could not be put into MP4 (damaged, or timestamps out of order); the page waits for the next keyframe.", nil, nil)
	mMediaBadLo = prometheus.NewDesc("camhub_web_video_lo_invalid_total",
		"Messages on the small tier's H.264 subjects that were not camhub access units (ignored).", nil, nil)
	mMediaKeyWaits = prometheus.NewDesc("camhub_web_video_keyframe_waits_total",
		"Tracks of H.264 cameras on pages' streams that waited 10 s for their first keyframe while the camera's access units came (the page holds the old picture).", nil, nil)
	mMediaSwitches = prometheus.NewDesc("camhub_web_video_tier_switches_total",
		"Tier switches of H.264 cameras on pages' streams: the new tier's track replaced the old one at its first keyframe.", nil, nil)
)

// mediaCollector reads GET /api/media's counts at scrape time.
type mediaCollector struct{ s *Server }

func (mediaCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mMediaClients, mMediaInits, mMediaFragments, mMediaSkipped, mMediaBroken, mMediaBadLo, mMediaSwitches, mMediaKeyWaits} {
		ch <- d
	}
}

func (c mediaCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.mediaStats()
	ch <- prometheus.MustNewConstMetric(mMediaClients, prometheus.GaugeValue, float64(st.Clients))
	ch <- prometheus.MustNewConstMetric(mMediaInits, prometheus.CounterValue, float64(st.Inits))
	ch <- prometheus.MustNewConstMetric(mMediaFragments, prometheus.CounterValue, float64(st.Fragments))
	ch <- prometheus.MustNewConstMetric(mMediaSkipped, prometheus.CounterValue, float64(st.Skipped))
	ch <- prometheus.MustNewConstMetric(mMediaBroken, prometheus.CounterValue, float64(st.Broken))
	ch <- prometheus.MustNewConstMetric(mMediaBadLo, prometheus.CounterValue, float64(st.BadLo))
	ch <- prometheus.MustNewConstMetric(mMediaSwitches, prometheus.CounterValue, float64(st.Switches))
	ch <- prometheus.MustNewConstMetric(mMediaKeyWaits, prometheus.CounterValue, float64(st.KeyWaits))
}
