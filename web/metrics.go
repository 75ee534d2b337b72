package web

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"camhub/internal/camlist"
)

// Metrics, per camera (label "camera") and of the server. The counters are
// read from the board at scrape time, so a frame costs nothing extra.
var (
	mFrames = prometheus.NewDesc("camhub_web_camera_frames_total",
		"Frames received from the camera.", []string{"camera"}, nil)
	mBytes = prometheus.NewDesc("camhub_web_camera_bytes_total",
		"JPEG bytes received from the camera.", []string{"camera"}, nil)
	mDrops = prometheus.NewDesc("camhub_web_camera_frames_missed_total",
		"Frames missing from the camera's Frame-Seq sequence: dropped by the agent or on the way.", []string{"camera"}, nil)
	mInvalid = prometheus.NewDesc("camhub_web_camera_invalid_total",
		"Messages on the camera's frames subject that were not camhub frames: bad headers, or a payload that is not a whole JPEG.", []string{"camera"}, nil)
	mStatusInvalid = prometheus.NewDesc("camhub_web_status_invalid_total",
		"Messages on status subjects that were not camhub status reports.", nil, nil)
	mFPS = prometheus.NewDesc("camhub_web_camera_fps",
		"Frames received from the camera per second, recently.", []string{"camera"}, nil)
	mAge = prometheus.NewDesc("camhub_web_camera_frame_age_seconds",
		"Now minus the capture time (Frame-Time) of the camera's newest frame.", []string{"camera"}, nil)
	mUp = prometheus.NewDesc("camhub_web_camera_up",
		"1 if the camera is live (online and streaming), else 0.", []string{"camera"}, nil)
	mClients = prometheus.NewDesc("camhub_web_clients",
		"Streams being served.", nil, nil)
	mReplays = prometheus.NewDesc("camhub_web_replays",
		"Rewinding streams being served.", nil, nil)
	mSent = prometheus.NewDesc("camhub_web_frames_sent_total",
		"Frames written to clients.", nil, nil)
	mSkipped = prometheus.NewDesc("camhub_web_frames_skipped_total",
		"Frames clients skipped because they were slower than the camera.", nil, nil)
	mDropped = prometheus.NewDesc("camhub_web_clients_dropped_total",
		"Clients cut off because they took longer than the write timeout to accept a frame.", nil, nil)
	mRefused = prometheus.NewDesc("camhub_web_clients_refused_total",
		"Streams refused because the server served as many as it may.", nil, nil)
	mIdleCut = prometheus.NewDesc("camhub_web_replays_idle_ended_total",
		"Rewinding streams ended because they had nothing to send for the replay idle time.", nil, nil)
	mIgnored = prometheus.NewDesc("camhub_web_frames_ignored_total",
		"Frames ignored because they came from more cameras than the server shows.", nil, nil)
)

// Metrics of logins, with Config.Login.
var (
	mLogins = prometheus.NewDesc("camhub_web_logins_total",
		"Logins (forms, JSON, and Basic or Bearer credentials checked with the hub) by result: ok; wrong (user or password); throttled (refused unchecked: too many wrong passwords from that user or address); failed (the hub could not be asked, or the user may see no cameras).",
		[]string{"result"}, nil)
	mSessions = prometheus.NewDesc("camhub_web_sessions",
		"Browser sessions logged in.", nil, nil)
	mUsers = prometheus.NewDesc("camhub_web_users",
		"Users logged in: each holds one connection to the hub.", nil, nil)
	mRevoked = prometheus.NewDesc("camhub_web_sessions_revoked_total",
		"Sessions ended because the hub closed their user's connection (the user was removed, or its password changed).", nil, nil)
)

// collector reads the server's counts at scrape time. allows, if set,
// says which cameras' series to give.
type collector struct {
	s      *Server
	allows func(string) bool
}

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mFrames, mBytes, mDrops, mInvalid, mFPS, mAge, mUp,
		mClients, mReplays, mSent, mSkipped, mDropped, mRefused, mIgnored, mStatusInvalid, mIdleCut,
		mLogins, mSessions, mUsers, mRevoked} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	now := time.Now()
	emit := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		// Camera ids are valid label values (wire.ValidateID), so this
		// does not fail; if it did, the metric is left out.
		if m, err := prometheus.NewConstMetric(d, t, v, labels...); err == nil {
			ch <- m
		}
	}
	for _, cam := range s.cameras(now) {
		id := cam.ID
		if c.allows != nil && !c.allows(id) {
			continue
		}
		emit(mFrames, prometheus.CounterValue, float64(cam.Frames), id)
		emit(mBytes, prometheus.CounterValue, float64(cam.Bytes), id)
		emit(mDrops, prometheus.CounterValue, float64(cam.Drops), id)
		emit(mFPS, prometheus.GaugeValue, cam.RxFPS, id)
		if cam.FrameAgeMS != nil {
			emit(mAge, prometheus.GaugeValue, float64(*cam.FrameAgeMS)/1000, id)
		}
		up := 0.0
		if cam.State == camlist.StateLive {
			up = 1
		}
		emit(mUp, prometheus.GaugeValue, up, id)
	}
	for _, st := range s.live.stats(now) {
		if c.allows != nil && !c.allows(st.ID) {
			continue
		}
		emit(mInvalid, prometheus.CounterValue, float64(st.Invalid), st.ID)
	}
	emit(mClients, prometheus.GaugeValue, float64(s.clients.Load()))
	emit(mReplays, prometheus.GaugeValue, float64(s.replays.Load()))
	emit(mSent, prometheus.CounterValue, float64(s.sent.Load()))
	emit(mSkipped, prometheus.CounterValue, float64(s.skipped.Load()))
	emit(mDropped, prometheus.CounterValue, float64(s.dropped.Load()))
	emit(mRefused, prometheus.CounterValue, float64(s.refused.Load()))
	emit(mIgnored, prometheus.CounterValue, float64(s.ignored.Load()))
	emit(mIdleCut, prometheus.CounterValue, float64(s.idleCut.Load()))
	emit(mStatusInvalid, prometheus.CounterValue, float64(s.dir.invalid.Load()))
	if g := s.gate; g != nil {
		emit(mLogins, prometheus.CounterValue, float64(g.loginsOK.Load()), "ok")
		emit(mLogins, prometheus.CounterValue, float64(g.loginsWrong.Load()), "wrong")
		emit(mLogins, prometheus.CounterValue, float64(g.loginsThrottled.Load()), "throttled")
		emit(mLogins, prometheus.CounterValue, float64(g.loginsFailed.Load()), "failed")
		sessions, users := g.counts()
		emit(mSessions, prometheus.GaugeValue, float64(sessions))
		emit(mUsers, prometheus.GaugeValue, float64(users))
		emit(mRevoked, prometheus.CounterValue, float64(g.sessionsEnded.Load()))
	}
}

// filteredMetrics serves GET /metrics: all of them to a user who may see
// every camera (or without logins), and to others only the series of
// their cameras.
func (s *Server) filteredMetrics(all http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := viewerOf(r)
		if id == nil || id.acc.all() {
			all.ServeHTTP(w, r)
			return
		}
		reg := prometheus.NewRegistry()
		if err := reg.Register(collector{s: s, allows: id.allows}); err != nil {
			writeError(w, http.StatusInternalServerError, "%v", err)
			return
		}
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}).ServeHTTP(w, r)
	})
}

// metricsHandler builds the server's own registry (never the global one, so
// that two servers in a process do not collide) with the camhub metrics
// and the Go runtime's and process's, and the handler of GET /metrics.
func (s *Server) metricsHandler() (http.Handler, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collector{s: s},
		mediaCollector{s}, // mse.go
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	s.metrics = reg
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}), nil
}
