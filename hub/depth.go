package hub

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The replay buffer is one stream for every camera, bounded by age
// (--replay) and by bytes (--replay-bytes), and JetStream discards the
// oldest frames first, whichever camera sent them. So every camera keeps
// the same span of time: a busy camera (a 4K stream beside 480p ones)
// shortens every camera's rewind alike, and never evicts another camera's
// recent minutes while its own older ones stay. What the busy camera costs
// the others is visible: the hub exports the span the buffer holds
// (camhub_hub_buffer_seconds) and each camera's bitrate, and warns when the
// byte bound leaves less than --replay, naming the busiest cameras.

const (
	// depthEvery is how often the hub compares the buffer's span with
	// --replay.
	depthEvery = 30 * time.Second
	// depthWarnEvery is how often the warning repeats while it holds.
	depthWarnEvery = 10 * time.Minute
	// fullFraction of --replay-bytes in use counts as full.
	fullFraction = 0.9
)

// Depth is what the replay buffer holds now.
type Depth struct {
	Span  time.Duration // from its oldest frame to now
	Bytes uint64
	Full  bool // the byte bound binds: Span is shorter than asked for
}

// depth reads the buffer's span from its stream state.
func (s *Server) depth(info *jetstream.StreamInfo, now time.Time) Depth {
	d := Depth{Bytes: info.State.Bytes}
	if info.State.Msgs > 0 && !info.State.FirstTime.IsZero() {
		d.Span = max(now.Sub(info.State.FirstTime), 0)
	}
	limit := float64(s.cfg.ReplayBytes)
	d.Full = float64(d.Bytes) >= fullFraction*limit && d.Span < time.Duration(fullFraction*float64(s.cfg.Replay))
	return d
}

// checkDepth warns, at most every depthWarnEvery, while the byte bound
// keeps the buffer shorter than --replay.
func (s *Server) checkDepth(ctx context.Context, now time.Time) {
	info, err := s.bufferInfo(ctx)
	if err != nil {
		return // the health check and metrics say so
	}
	d := s.depth(info, now)
	if !d.Full {
		return
	}
	rates := s.cams.bitrates()
	var total float64
	for _, r := range rates {
		total += r.bps
	}
	attrs := []any{"holds", d.Span.Round(time.Second), "replay", s.cfg.Replay, "replay_bytes", s.cfg.ReplayBytes}
	if total > 0 {
		need := int64(total / 8 * s.cfg.Replay.Seconds())
		attrs = append(attrs, "cameras_mbit_s", fmt.Sprintf("%.1f", total/1e6), "busiest", busiest(rates, 3),
			"replay_bytes_needed", need)
	}
	s.depthWarn.Warn("replay buffer full: it holds less than --replay of every camera (all cameras share --replay-bytes, oldest frames go first, so the busiest cameras shorten every camera's rewind); raise --replay-bytes or lower the busiest cameras' bitrate", attrs...)
}

type camRate struct {
	id  string
	bps float64
}

// busiest names the n cameras with the highest bitrate, e.g.
// "yard 16.2 Mbit/s, front 0.8 Mbit/s".
func busiest(rates []camRate, n int) string {
	slices.SortFunc(rates, func(a, b camRate) int { return cmp.Compare(b.bps, a.bps) })
	var parts []string
	for _, r := range rates[:min(n, len(rates))] {
		parts = append(parts, fmt.Sprintf("%s %.1f Mbit/s", r.id, r.bps/1e6))
	}
	return strings.Join(parts, ", ")
}
