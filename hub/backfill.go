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
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
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
	lost     uint64 // site: frames discarded before the central hub had them, this outage so far
	lostDone uint64 // site: the same, outages the central hub has resumed from
	catching bool   // central: a backfill is in progress
	since    time.Time
	peakLag  uint64
}

// backfill follows the uplink (on a site) or the site sources (on a central
// hub), logging backfills and losses and keeping their figures for /metrics.
type backfill struct {
	mu      sync.Mutex
	sites   map[string]*siteState // by site domain; on a site hub, its own
	next    time.Time
	sourced *sourcedSeqs // central: nil on a site
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
	if s.bf == nil {
		return
	}
	js, err := jetstream.New(s.nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if s.cfg.Leaf != "" && s.NumLeafNodes() == 0 {
		s.uplinkMissed(ctx, js, false)
	}
	if len(s.sites) > 0 && !time.Now().Before(s.bf.next) {
		s.bf.next = time.Now().Add(lagReportEvery)
		s.followSources(ctx, js)
	}
}

// uplinkMissed counts the frames the site discarded (its buffer full or
// too old) before its central hub had them: an outage longer than the
// site's buffer. The uplink consumer's ack floor stays where the central
// hub left it while the link is down, and the stream's first sequence
// moves past it as frames expire. It runs every second while the link is
// down, and when the central hub resumes (resumed: it asked the consumer
// to reset to its ack floor, so nothing more can be lost to this outage).
func (s *Server) uplinkMissed(ctx context.Context, js jetstream.JetStream, resumed bool) {
	st, err := js.Stream(ctx, wire.FramesStream)
	if err != nil {
		return
	}
	c, err := st.PushConsumer(ctx, UplinkConsumer)
	if err != nil {
		return
	}
	acked, first := c.CachedInfo().AckFloor.Stream, st.CachedInfo().State.FirstSeq
	var missed uint64
	if first > acked+1 && acked > 0 {
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
	missed = max(missed, prev)
	ss.lost = missed
	if resumed {
		ss.lostDone += missed
		ss.lost = 0
	}
	b.mu.Unlock()
	switch {
	case resumed && missed > 0:
		s.log.Warn("uplink resumed: the outage outlasted this site's buffer; its oldest frames were gone before the central hub had them",
			"lost_at_least", missed, "acked_seq", acked, "first_seq", first)
	case !resumed && prev == 0 && missed > 0:
		s.log.Warn("uplink down longer than this site's buffer: frames are being lost to the central buffer",
			"lost_so_far", missed, "acked_seq", acked, "first_seq", first)
	}
}

// watchUplinkResets calls uplinkMissed when the central hub's source asks
// the uplink consumer to reset (the API request crosses the leaf link,
// its domain prefix mapped to this server's $JS.API).
func (s *Server) watchUplinkResets() error {
	subj := "$JS.API.CONSUMER.RESET." + wire.FramesStream + "." + UplinkConsumer
	_, err := s.nc.Subscribe(subj, func(*nats.Msg) {
		js, err := jetstream.New(s.nc)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.uplinkMissed(ctx, js, true)
	})
	return err
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
		if err := s.watchSourced(ctx, js); err != nil {
			return err
		}
		s.log.Info("sourcing the sites' buffers: each site's frames enter this buffer once, in order, outages included",
			"sites", strings.Join(b.Sites, ","))
	}
	if s.cfg.Leaf != "" {
		if err := s.setupUplink(ctx, js); err != nil {
			return err
		}
		return s.watchUplinkResets()
	}
	return nil
}

var (
	mSiteBehind = prometheus.NewDesc("camhub_hub_site_frames_behind",
		"Frames a site's buffer holds that this central hub's buffer does not have yet (its source's lag).", []string{"site"}, nil)
	mSiteActive = prometheus.NewDesc("camhub_hub_site_source_active",
		"1 while a site's buffer is being sourced into this central hub's buffer, else 0.", []string{"site"}, nil)
	mSiteLost = prometheus.NewDesc("camhub_hub_site_lost_frames_total",
		"Frames of a site this central hub's buffer will never have: the site no longer held them when its link came back.", []string{"site"}, nil)
	mUplinkLost = prometheus.NewDesc("camhub_hub_uplink_lost_frames_total",
		"Frames this site hub discarded (its buffer full or too old) before its central hub had them, at least (the central hub counts them exactly: camhub_hub_site_lost_frames_total).", []string{"site"}, nil)
)

func (s *Server) collectBackfill(ch chan<- prometheus.Metric) {
	if s.bf == nil {
		return
	}
	if s.bf.sourced != nil {
		lost, _ := s.bf.sourced.snapshot()
		for _, d := range s.sites {
			ch <- prometheus.MustNewConstMetric(mSiteLost, prometheus.CounterValue, float64(lost[d]), d)
		}
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

// natsHash is nats-server's short hash of a name (its getHash), which it
// uses to name a stream's sources in the Nats-Stream-Source header of
// every sourced message: "CAMS:<hash of the API prefix>:C=<hash of the
// consumer> <site sequence> …". TestSiteBackfill checks it against the
// server (the central hub names the site whose frames were lost).
func natsHash(name string) string {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	sum := sha256.Sum256([]byte(name))
	b := make([]byte, 8)
	for i := range b {
		b[i] = digits[int(sum[i]%byte(len(digits)))]
	}
	return string(b)
}

// sourceName is how the Nats-Stream-Source header of a central CAMS names
// site domain's source (its first token, up to the consumer part).
func sourceName(domain string) string {
	return wire.FramesStream + ":" + natsHash("$JS."+domain+".API") + ":"
}

// sourcedSeqs follows the site sequence of every message sourced into a
// central CAMS: a jump is frames the site no longer had when its source
// resumed (an outage longer than the site's buffer), counted exactly.
type sourcedSeqs struct {
	mu    sync.Mutex
	names map[string]string // sourceName → domain
	last  map[string]uint64 // domain → the last site sequence stored
	lost  map[string]uint64 // domain → frames lost
	bad   uint64            // headers that did not parse
	stop  func()
}

// watchSourced starts following the central CAMS's sourced messages
// (headers only, from the newest stored).
func (s *Server) watchSourced(ctx context.Context, js jetstream.JetStream) error {
	w := &sourcedSeqs{names: map[string]string{}, last: map[string]uint64{}, lost: map[string]uint64{}}
	for _, d := range s.sites {
		w.names[sourceName(d)] = d
	}
	c, err := js.OrderedConsumer(ctx, wire.FramesStream, jetstream.OrderedConsumerConfig{
		HeadersOnly: true, DeliverPolicy: jetstream.DeliverLastPolicy,
	})
	if err != nil {
		return fmt.Errorf("following the sites' frames in %s: %w", wire.FramesStream, err)
	}
	cc, err := c.Consume(func(m jetstream.Msg) { s.noteSourced(w, m.Headers().Get("Nats-Stream-Source")) })
	if err != nil {
		return fmt.Errorf("following the sites' frames in %s: %w", wire.FramesStream, err)
	}
	w.stop = cc.Stop
	s.bf.sourced = w
	return nil
}

// noteSourced notes one sourced message's Nats-Stream-Source header.
func (s *Server) noteSourced(w *sourcedSeqs, hdr string) {
	name, rest, _ := strings.Cut(hdr, " ")
	seqText, _, _ := strings.Cut(rest, " ")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	w.mu.Lock()
	defer w.mu.Unlock()
	domain := ""
	if i := strings.Index(name, ":C="); i >= 0 {
		domain = w.names[name[:i+1]]
	}
	if err != nil || seq == 0 || domain == "" {
		w.bad++
		return
	}
	last := w.last[domain]
	w.last[domain] = seq
	switch {
	case last == 0: // the first since this hub started
	case seq > last+1:
		w.lost[domain] += seq - last - 1
		s.log.Warn("site frames lost: the outage outlasted the site's buffer, which no longer had them when the link came back",
			"site", domain, "lost", seq-last-1, "site_seq_from", last+1, "site_seq_to", seq-1, "lost_total", w.lost[domain])
	case seq <= last:
		s.log.Info("site buffer restarted: its sequence began again", "site", domain, "site_seq", seq, "before", last)
	}
}

func (w *sourcedSeqs) snapshot() (lost map[string]uint64, bad uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.lost), w.bad
}

// close stops following.
func (b *backfill) close() {
	if b != nil && b.sourced != nil {
		b.sourced.stop()
	}
}
