package hub

// Backfill: a central hub's buffer gets every frame of its sites, once and
// in order, outages included, through JetStream stream sourcing across
// JetStream domains.
//
// A site hub (--leaf, --domain garden) keeps a durable push consumer on its
// own CAMS, UplinkConsumer, delivering to UplinkSubject("garden") with flow
// control and, if set, a rate limit. A central hub that knows its sites
// (--sites garden,shed) makes its CAMS a stream with no subjects of its own
// that sources each site's CAMS through that consumer ($JS.garden.API):
// every site frame enters the central buffer exactly once, in the site's
// order. After an outage the source resumes from the last sequence it
// stored, so the central buffer gets the outage's frames first and then
// catches up with the present; live subscribers on the central side keep
// getting the site's frames over the leaf link by interest, as before,
// unaffected by the backfill queue (different subjects, and the backfill's
// in-flight frames are bounded by the consumer's MaxAckPending).

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"camhub/internal/wire"
)

// UplinkConsumer is the durable consumer of a site's CAMS that its central
// hub sources from.
const UplinkConsumer = "CAMHUB_UPLINK"

// uplinkMaxAckPending bounds the frames the uplink consumer has in flight
// (sent, not yet acknowledged through flow control): the most backfill
// queued in the leaf link ahead of a live frame.
const uplinkMaxAckPending = 64

// lagReportEvery is how often the central hub reads its sources' lag.
const lagReportEvery = 2 * time.Second

// UplinkSubject is the subject a site's uplink consumer delivers to.
func UplinkSubject(domain string) string { return "camhub.uplink." + domain }

// UplinkConsumerConfig is the site's uplink consumer: every frame of the
// site's CAMS from the first, flow-controlled as JetStream's durable
// sourcing needs, at most rateBps bits a second (0: no limit).
func UplinkConsumerConfig(domain string, rateBps uint64) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        UplinkConsumer,
		Description:    "camhub uplink: the central hub's buffer sources this site's frames through it",
		DeliverSubject: UplinkSubject(domain),
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckFlowControlPolicy,
		FlowControl:    true,
		IdleHeartbeat:  time.Second, // the only heartbeat durable sourcing accepts
		MaxAckPending:  uplinkMaxAckPending,
		RateLimit:      rateBps,
	}
}

// SiteSource is the source of a central CAMS that reads site domain's CAMS
// through its uplink consumer.
func SiteSource(domain string) *jetstream.StreamSource {
	return &jetstream.StreamSource{
		Name:     wire.FramesStream,
		External: &jetstream.ExternalStream{APIPrefix: "$JS." + domain + ".API"},
		Consumer: &jetstream.StreamConsumerSource{Name: UplinkConsumer, DeliverSubject: UplinkSubject(domain)},
	}
}

// ParseSites parses a comma-separated list of site domains.
func ParseSites(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if err := validDomain(p); err != nil {
			return nil, fmt.Errorf("sites: %w", err)
		}
		if seen[p] {
			return nil, fmt.Errorf("sites: %q is listed twice", p)
		}
		seen[p] = true
		out = append(out, p)
	}
	return out, nil
}

// validDomain checks a JetStream domain name as camhub uses it: in subjects
// and stream names, so a token of letters, digits, - and _.
func validDomain(d string) error {
	if d == "" || len(d) > 64 {
		return fmt.Errorf("domain %q: 1 to 64 characters", d)
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("domain %q: only A-Z a-z 0-9 - _", d)
		}
	}
	return nil
}

// ErrRate is wrapped by ParseRate's errors.
var ErrRate = errors.New("bad rate")

// ParseRate parses a bit rate: a number with an optional unit, bit/s,
// kbit, Mbit or Gbit (or bps, kbps…; decimal, as links are sold), e.g. "20Mbit",
// "500kbit", "0" (no limit).
func ParseRate(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	low := strings.ToLower(t)
	low = strings.TrimSuffix(low, "/s")
	mult := 1.0
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"gbit", 1e9}, {"gbps", 1e9}, {"mbit", 1e6}, {"mbps", 1e6}, {"kbit", 1e3}, {"kbps", 1e3}, {"bit", 1}, {"bps", 1},
		{"g", 1e9}, {"m", 1e6}, {"k", 1e3}} {
		if strings.HasSuffix(low, u.suffix) {
			low, mult = strings.TrimSpace(strings.TrimSuffix(low, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(low, 64)
	if err != nil || math.IsNaN(v) || v < 0 || v*mult > 1e12 {
		return 0, fmt.Errorf("%w %q: want bits a second such as 20Mbit, 500kbit or 0 (no limit), at most 1000Gbit", ErrRate, s)
	}
	return uint64(v * mult), nil
}

// formatRate writes bps for logs.
func formatRate(bps uint64) string {
	if bps == 0 {
		return "unlimited"
	}
	return strconv.FormatFloat(float64(bps)/1e6, 'f', -1, 64) + "Mbit/s"
}

// setupUplink creates or updates the site's uplink consumer.
func (s *Server) setupUplink(ctx context.Context, js jetstream.JetStream) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdatePushConsumer(cctx, wire.FramesStream, UplinkConsumerConfig(s.cfg.Domain, s.cfg.UplinkRate)); err != nil {
		return fmt.Errorf("creating the uplink consumer %s: %w", UplinkConsumer, err)
	}
	s.log.Info("uplink ready: the central hub can source this site's buffer", "consumer", UplinkConsumer,
		"subject", UplinkSubject(s.cfg.Domain), "rate", formatRate(s.cfg.UplinkRate))
	return nil
}

// siteState is what the hub last saw of one site's uplink.
type siteState struct {
	lag      uint64 // central: frames the site holds that the central buffer has not
	active   bool   // central: the source is delivering
	lost     uint64 // site: frames discarded before the central hub had them, this outage
	lostDone uint64 // site: the same, outages before this one
	catching bool   // central: a backfill is in progress
	since    time.Time
	peakLag  uint64
}

// backfill follows the uplink (on a site) or the site sources (on a central
// hub), logging backfills and losses and keeping their figures for /metrics.
type backfill struct {
	mu    sync.Mutex
	sites map[string]*siteState // by site domain; on a site hub, its own
	next  time.Time
}

func (b *backfill) snapshot() map[string]siteState {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]siteState, len(b.sites))
	for k, v := range b.sites {
		out[k] = *v
	}
	return out
}

// followBackfill runs on the hub's tick.
func (s *Server) followBackfill(ctx context.Context) {
	if s.bf == nil || time.Now().Before(s.bf.next) {
		return
	}
	s.bf.next = time.Now().Add(lagReportEvery)
	js, err := jetstream.New(s.nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if s.cfg.Leaf != "" {
		s.followUplink(ctx, js)
	}
	if len(s.sites) > 0 {
		s.followSources(ctx, js)
	}
}

// followUplink notes frames the site discarded (its buffer full or too old)
// before its central hub had them: a longer outage than the site's buffer.
func (s *Server) followUplink(ctx context.Context, js jetstream.JetStream) {
	st, err := js.Stream(ctx, wire.FramesStream)
	if err != nil {
		return
	}
	c, err := st.PushConsumer(ctx, UplinkConsumer)
	if err != nil {
		return
	}
	info := c.CachedInfo()
	first := st.CachedInfo().State.FirstSeq
	var missed uint64
	if acked := info.AckFloor.Stream; first > acked+1 && acked > 0 {
		missed = first - acked - 1
	}
	b := s.bf
	b.mu.Lock()
	ss := b.sites[s.cfg.Domain]
	if ss == nil {
		ss = &siteState{}
		b.sites[s.cfg.Domain] = ss
	}
	prev := ss.lost
	if missed < prev { // the central hub moved past them: that outage is over
		ss.lostDone += prev
	}
	ss.lost = missed
	b.mu.Unlock()
	if missed > prev {
		s.log.Warn("uplink: frames older than this site's buffer are gone before the central hub had them",
			"lost", missed, "acked_seq", info.AckFloor.Stream, "first_seq", first)
	}
}

// followSources logs each site's backfill: when its source falls behind
// (the link came back after an outage), how far, and when it has caught
// up.
func (s *Server) followSources(ctx context.Context, js jetstream.JetStream) {
	st, err := js.Stream(ctx, wire.FramesStream)
	if err != nil {
		return
	}
	byDomain := map[string]*jetstream.StreamSourceInfo{}
	for _, si := range st.CachedInfo().Sources {
		if si.External != nil {
			d := strings.TrimSuffix(strings.TrimPrefix(si.External.APIPrefix, "$JS."), ".API")
			byDomain[d] = si
		}
	}
	b := s.bf
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range s.sites {
		ss := b.sites[d]
		if ss == nil {
			ss = &siteState{}
			b.sites[d] = ss
		}
		si := byDomain[d]
		if si == nil {
			continue
		}
		ss.lag = si.Lag
		ss.active = si.Active >= 0 && si.Active < 5*time.Second
		switch {
		case !ss.catching && si.Lag > uplinkMaxAckPending:
			ss.catching, ss.since, ss.peakLag = true, time.Now(), si.Lag
			s.log.Info("site backfill: the central buffer is behind the site's", "site", d, "frames_behind", si.Lag)
		case ss.catching && si.Lag <= uplinkMaxAckPending:
			ss.catching = false
			s.log.Info("site backfill done: the central buffer has the site's frames", "site", d,
				"took", time.Since(ss.since).Round(100*time.Millisecond), "frames_behind_at_most", ss.peakLag)
		case ss.catching:
			ss.peakLag = max(ss.peakLag, si.Lag)
		}
	}
}

// validateSites checks the sites and uplink settings of c.
func (c *Config) validateSites() error {
	sites, err := ParseSites(c.Sites)
	if err != nil {
		return err
	}
	if len(sites) == 0 {
		return nil
	}
	if c.NATS == "" && c.LeafListen == "" {
		return errors.New("sites needs --leaf-listen, the host:port the sites' hubs connect to (or --nats with a NATS server that has leaf nodes)")
	}
	for _, d := range sites {
		if d == c.Domain {
			return fmt.Errorf("sites: %q is this hub's own domain", d)
		}
	}
	return nil
}

// startBackfill sets up the site's uplink consumer, on a site hub, and
// notes the sites a central hub sources.
func (s *Server) startBackfill(ctx context.Context, js jetstream.JetStream, b BufferConfig) error {
	if s.cfg.Leaf == "" && len(b.Sites) == 0 {
		return nil
	}
	s.bf = &backfill{sites: map[string]*siteState{}}
	s.sites = b.Sites
	if len(b.Sites) > 0 {
		s.log.Info("sourcing the sites' buffers: each site's frames enter this buffer once, in order, outages included",
			"sites", strings.Join(b.Sites, ","))
	}
	if s.cfg.Leaf != "" {
		return s.setupUplink(ctx, js)
	}
	return nil
}

var (
	mSiteBehind = prometheus.NewDesc("camhub_hub_site_frames_behind",
		"Frames a site's buffer holds that this central hub's buffer does not have yet (its source's lag).", []string{"site"}, nil)
	mSiteActive = prometheus.NewDesc("camhub_hub_site_source_active",
		"1 while a site's buffer is being sourced into this central hub's buffer, else 0.", []string{"site"}, nil)
	mUplinkLost = prometheus.NewDesc("camhub_hub_uplink_lost_frames_total",
		"Frames this site hub discarded (its buffer full or too old) before its central hub had them.", []string{"site"}, nil)
)

func (s *Server) collectBackfill(ch chan<- prometheus.Metric) {
	if s.bf == nil {
		return
	}
	for d, ss := range s.bf.snapshot() {
		if d == s.cfg.Domain && s.cfg.Leaf != "" {
			ch <- prometheus.MustNewConstMetric(mUplinkLost, prometheus.CounterValue, float64(ss.lost+ss.lostDone), d)
			continue
		}
		active := 0.0
		if ss.active {
			active = 1
		}
		ch <- prometheus.MustNewConstMetric(mSiteBehind, prometheus.GaugeValue, float64(ss.lag), d)
		ch <- prometheus.MustNewConstMetric(mSiteActive, prometheus.GaugeValue, active, d)
	}
}
