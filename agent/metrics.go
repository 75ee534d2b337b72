package agent

import (
	"github.com/prometheus/client_golang/prometheus"

	"camhub/internal/wire"
)

// Health is what an agent's /healthz reports.
type Health struct {
	Camera    string `json:"camera"`
	State     string `json:"state"`
	Error     string `json:"error,omitempty"`
	Connected bool   `json:"connected"`
}

// Health reports whether the agent is well: streaming, and connected to
// NATS.
func (a *Agent) Health() (ok bool, h Health) {
	a.mu.Lock()
	h = Health{Camera: a.cfg.ID, State: a.state, Error: a.err}
	a.mu.Unlock()
	// not a.nc.IsConnected(): it waits for the connection's lock, which a
	// publish stalled on a dead link or a reconnect's dial holds
	h.Connected = a.connected.Load()
	return h.State == wire.StateStreaming && h.Connected, h
}

var (
	mCounters = []struct {
		desc *prometheus.Desc
		get  func(Stats) uint64
	}{
		{metric("frames_captured_total", "Frames read from the source (or drawn), due or not."), func(s Stats) uint64 { return s.Captured }},
		{metric("frames_total", "Frames due under --fps, each given a Frame-Seq."), func(s Stats) uint64 { return s.Frames }},
		{metric("frames_sent_total", "Frames published."), func(s Stats) uint64 { return s.Sent }},
		{metric("bytes_sent_total", "JPEG or H.264 bytes published."), func(s Stats) uint64 { return s.Bytes }},
		{metric("frames_dropped_total", "Frames given a Frame-Seq but not published (newest frame wins, disconnected, too large)."), func(s Stats) uint64 { return s.Dropped }},
		{metric("frames_oversize_total", "Frames sent at a lower quality or size to fit the server's maximum payload."), func(s Stats) uint64 { return s.Oversize }},
		{metric("gops_dropped_total", "H.264: times the rest of a GOP was dropped (publisher behind, publish failed); its frames count in frames_dropped_total."), func(s Stats) uint64 { return s.GOPsDropped }},
		{metric("source_errors_total", "Times the source failed to open or stopped giving frames."), func(s Stats) uint64 { return s.SourceErrors }},
	}
	// the small tier's, present only when the agent has one
	mLoCounters = []struct {
		desc *prometheus.Desc
		get  func(LoStats) uint64
	}{
		{metric("lo_frames_sent_total", "Small tier: frames published (cams.<id>.lo.*)."), func(s LoStats) uint64 { return s.Sent }},
		{metric("lo_bytes_sent_total", "Small tier: bytes published."), func(s LoStats) uint64 { return s.Bytes }},
		{metric("lo_frames_dropped_total", "Small tier: frames given a small-tier Frame-Seq but not published."), func(s LoStats) uint64 { return s.Dropped }},
	}
	mLoEncode  = metric("lo_encode_seconds_total", "Small tier: time the capture goroutine spent scaling and encoding it.")
	mUp        = metric("up", "1 while the agent is streaming, else 0.")
	mConnected = metric("nats_connected", "1 while connected to NATS, else 0.")
)

func metric(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("camhub_agent_"+name, help, []string{"camera"}, nil)
}

// Collector returns a Prometheus collector of the agent's counters, read
// at scrape time, labelled with the camera id.
func (a *Agent) Collector() prometheus.Collector { return collector{a} }

type collector struct{ a *Agent }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range mCounters {
		ch <- c.desc
	}
	for _, c := range mLoCounters {
		ch <- c.desc
	}
	ch <- mLoEncode
	ch <- mUp
	ch <- mConnected
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	id := c.a.cfg.ID
	st := c.a.Stats()
	for _, m := range mCounters {
		ch <- prometheus.MustNewConstMetric(m.desc, prometheus.CounterValue, float64(m.get(st)), id)
	}
	if c.a.lo != nil {
		lo := c.a.LoStats()
		for _, m := range mLoCounters {
			ch <- prometheus.MustNewConstMetric(m.desc, prometheus.CounterValue, float64(m.get(lo)), id)
		}
		ch <- prometheus.MustNewConstMetric(mLoEncode, prometheus.CounterValue, lo.Encode.Seconds(), id)
	}
	ok, h := c.a.Health()
	ch <- prometheus.MustNewConstMetric(mUp, prometheus.GaugeValue, b2f(ok), id)
	ch <- prometheus.MustNewConstMetric(mConnected, prometheus.GaugeValue, b2f(h.Connected), id)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
