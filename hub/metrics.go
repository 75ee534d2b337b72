package hub

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"camhub/internal/wire"
)

// Health is what the hub's /healthz reports.
type Health struct {
	Connected     bool     `json:"connected"`
	Buffer        bool     `json:"buffer"` // the CAMS stream answers
	BufferFrames  uint64   `json:"buffer_frames"`
	BufferBytes   uint64   `json:"buffer_bytes"`
	CamerasOnline []string `json:"cameras_online"`
	Error         string   `json:"error,omitempty"`
}

// Health reports whether the hub is well: connected, with its replay
// buffer answering.
func (s *Server) Health(ctx context.Context) (ok bool, h Health) {
	h.Connected = s.nc.IsConnected()
	h.CamerasOnline = s.Online()
	if h.CamerasOnline == nil {
		h.CamerasOnline = []string{}
	}
	info, err := s.bufferInfo(ctx)
	if err != nil {
		h.Error = err.Error()
		return false, h
	}
	h.Buffer, h.BufferFrames, h.BufferBytes = true, info.State.Msgs, info.State.Bytes
	return h.Connected, h
}

func (s *Server) bufferInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	js, err := jetstream.New(s.nc)
	if err != nil {
		return nil, err
	}
	st, err := js.Stream(ctx, wire.FramesStream)
	if err != nil {
		return nil, err
	}
	return st.CachedInfo(), nil
}

var (
	mCamUp         = prometheus.NewDesc("camhub_hub_camera_up", "1 while the camera reports, else 0.", []string{"camera"}, nil)
	mCamFPS        = prometheus.NewDesc("camhub_hub_camera_fps", "Frames per second the camera's agent last reported sending.", []string{"camera"}, nil)
	mCamSent       = prometheus.NewDesc("camhub_hub_camera_frames_sent_total", "Frames the camera's agent reported sending since it started.", []string{"camera"}, nil)
	mCamDropped    = prometheus.NewDesc("camhub_hub_camera_frames_dropped_total", "Frames the camera's agent reported dropping since it started.", []string{"camera"}, nil)
	mBufFrames     = prometheus.NewDesc("camhub_hub_buffer_frames", "Frames in the replay buffer (stream CAMS).", nil, nil)
	mBufBytes      = prometheus.NewDesc("camhub_hub_buffer_bytes", "Bytes in the replay buffer (stream CAMS).", nil, nil)
	mBufLimit      = prometheus.NewDesc("camhub_hub_buffer_limit_bytes", "The replay buffer's byte limit.", nil, nil)
	mBufSeconds    = prometheus.NewDesc("camhub_hub_buffer_seconds", "How far back the replay buffer reaches: from its oldest frame to now (the same for every camera).", nil, nil)
	mBufFull       = prometheus.NewDesc("camhub_hub_buffer_full", "1 while the byte limit keeps the replay buffer shorter than --replay.", nil, nil)
	mCamBitrate    = prometheus.NewDesc("camhub_hub_camera_bitrate_bits", "Bits per second the camera's agent last reported sending (its status reports' bytes_sent).", []string{"camera"}, nil)
	mConnected     = prometheus.NewDesc("camhub_hub_nats_connected", "1 while the hub's own NATS connection is up.", nil, nil)
	mStatusInvalid = prometheus.NewDesc("camhub_hub_status_invalid_total",
		"Messages on status subjects that were not an agent's report (bad JSON, or delivered with a reply subject).", nil, nil)
	// Only with users (--auth): see ConsumerPolicy.
	mGuardDeleted = prometheus.NewDesc("camhub_hub_consumers_deleted_total",
		"Consumers on the replay buffer the hub deleted because their creator may not have them, by reason.", []string{"reason"}, nil)
)

// Collector returns a Prometheus collector of the cameras the hub follows
// and of its replay buffer, read at scrape time, and of what was added with
// AddCollector.
func (s *Server) Collector() prometheus.Collector { return collector{s} }

// AddCollector adds c to the hub's /metrics: for components that run in
// the hub's process (notifications). Call it before Run.
func (s *Server) AddCollector(c prometheus.Collector) {
	s.extraMu.Lock()
	s.extra = append(s.extra, c)
	s.extraMu.Unlock()
}

func (s *Server) extras() []prometheus.Collector {
	s.extraMu.Lock()
	defer s.extraMu.Unlock()
	return s.extra
}

type collector struct{ s *Server }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, e := range c.s.extras() {
		e.Describe(ch)
	}
	for _, d := range []*prometheus.Desc{mCamUp, mCamFPS, mCamSent, mCamDropped, mCamBitrate, mBufFrames, mBufBytes, mBufLimit, mBufSeconds, mBufFull, mConnected, mGuardDeleted, mStatusInvalid,
		mSiteBehind, mSiteActive, mSiteLost, mUplinkLost} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	for _, e := range s.extras() {
		e.Collect(ch)
	}
	s.cams.mu.Lock()
	for id, cam := range s.cams.cams {
		up := 0.0
		if cam.online {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(mCamUp, prometheus.GaugeValue, up, id)
		ch <- prometheus.MustNewConstMetric(mCamFPS, prometheus.GaugeValue, cam.status.FPS, id)
		ch <- prometheus.MustNewConstMetric(mCamSent, prometheus.CounterValue, float64(cam.status.FramesSent), id)
		ch <- prometheus.MustNewConstMetric(mCamDropped, prometheus.CounterValue, float64(cam.status.FramesDropped), id)
		ch <- prometheus.MustNewConstMetric(mCamBitrate, prometheus.GaugeValue, cam.bps, id)
	}
	s.cams.mu.Unlock()
	connected := 0.0
	if s.nc.IsConnected() {
		connected = 1
	}
	ch <- prometheus.MustNewConstMetric(mConnected, prometheus.GaugeValue, connected)
	ch <- prometheus.MustNewConstMetric(mStatusInvalid, prometheus.CounterValue, float64(s.cams.invalid.Load()))
	if s.guard != nil {
		for reason, n := range s.guard.counts() {
			ch <- prometheus.MustNewConstMetric(mGuardDeleted, prometheus.CounterValue, float64(n), reason)
		}
	}
	s.collectBackfill(ch)
	ch <- prometheus.MustNewConstMetric(mBufLimit, prometheus.GaugeValue, float64(s.cfg.ReplayBytes))
	if info, err := s.bufferInfo(context.Background()); err == nil {
		ch <- prometheus.MustNewConstMetric(mBufFrames, prometheus.GaugeValue, float64(info.State.Msgs))
		ch <- prometheus.MustNewConstMetric(mBufBytes, prometheus.GaugeValue, float64(info.State.Bytes))
		d := s.depth(info, time.Now())
		full := 0.0
		if d.Full {
			full = 1
		}
		ch <- prometheus.MustNewConstMetric(mBufSeconds, prometheus.GaugeValue, d.Span.Seconds())
		ch <- prometheus.MustNewConstMetric(mBufFull, prometheus.GaugeValue, full)
	}
}
