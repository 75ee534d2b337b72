package replay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/wire"
)

// Events and clips: the streams EVENTS and CLIPS that a motion detector
// (package detector) keeps; see docs/PROTOCOL.md.

// ErrNoEvents: the NATS server has no EVENTS or CLIPS stream (a hub
// older than events, or none provisioned them).
var ErrNoEvents = errors.New("no events stream")

// MaxEvents bounds how many event documents Events reads.
const MaxEvents = 100000

func eventsErr(stream string, err error) error {
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("%w: the NATS server has no stream %s; is the hub running, and new enough to keep events?", ErrNoEvents, stream)
	}
	return fmt.Errorf("reading %s: %w", stream, err)
}

// LastEvent returns the newest document of camera id in EVENTS: its
// newest event, open or ended; nil if it has none.
func LastEvent(ctx context.Context, js jetstream.JetStream, id string) (*wire.Event, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	st, err := js.Stream(ctx, wire.EventsStream)
	if err != nil {
		return nil, eventsErr(wire.EventsStream, err)
	}
	m, err := st.GetLastMsgForSubject(ctx, wire.EventsSubject(id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, eventsErr(wire.EventsStream, err)
	}
	return wire.ParseEvent(m.Subject, m.Data)
}

// Events returns the events stored since since (of camera id, or of every
// camera if id is empty), oldest first: for each event id its newest
// document. Documents that do not parse are skipped and counted in bad.
func Events(ctx context.Context, js jetstream.JetStream, id string, since time.Time) (evs []wire.Event, bad int, err error) {
	filter := wire.AllEvents
	if id != "" {
		if err := validID(id); err != nil {
			return nil, 0, err
		}
		filter = wire.EventsSubject(id)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, NamePrefix: ConsumerNamePrefix(), InactiveThreshold: consumerInactivity}
	if !since.IsZero() {
		// stored after it started: a margin for the event's start
		seek := since.Add(-seekMargin)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &seek
	}
	byID := map[string]int{}
	err = readAll(ctx, js, wire.EventsStream, cfg, func(m jetstream.Msg) error {
		e, err := wire.ParseEvent(m.Subject(), m.Data())
		if err != nil {
			bad++
			return nil
		}
		if i, ok := byID[e.ID]; ok {
			evs[i] = *e
			return nil
		}
		if len(evs) == MaxEvents {
			return fmt.Errorf("more than %d events: narrow it down (a camera, a shorter time)", MaxEvents)
		}
		byID[e.ID] = len(evs)
		evs = append(evs, *e)
		return nil
	})
	// events that ended before since are left out (their documents were
	// stored later than their start)
	evs = slices.DeleteFunc(evs, func(e wire.Event) bool { return !e.Open() && e.End.Before(since) })
	slices.SortStableFunc(evs, func(a, b wire.Event) int { return cmp.Compare(a.Start.UnixNano(), b.Start.UnixNano()) })
	return evs, bad, err
}

// ReadClip reads every message of event eid's clip in CLIPS, in order, and
// hands each with its frame headers to fn (headersOnly: without payload;
// then the Nats-Msg-Size header says its size). Messages that are not
// camhub frames are skipped.
func ReadClip(ctx context.Context, js jetstream.JetStream, eid string, headersOnly bool, fn func(jetstream.Msg, wire.Frame) error) error {
	if err := wire.ValidateEventID(eid); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	filter := wire.ClipsPrefix + "." + eid + ".>"
	if id, ok := wire.EventCamera(eid); ok {
		filter = wire.ClipFilter(eid, id)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, HeadersOnly: headersOnly,
		NamePrefix: ConsumerNamePrefix(), InactiveThreshold: consumerInactivity}
	return readAll(ctx, js, wire.ClipsStream, cfg, func(m jetstream.Msg) error {
		var f wire.Frame
		if v, err := wire.ParseVideo(m.Headers()); err == nil {
			f = v.Frame
		} else if f, err = wire.ParseFrame(m.Headers()); err != nil {
			return nil
		}
		return fn(m, f)
	})
}

// readAll hands every message stream holds under cfg, up to the newest
// when it started, to fn.
func readAll(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.OrderedConsumerConfig, fn func(jetstream.Msg) error) error {
	cons, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return eventsErr(stream, err)
	}
	defer func() {
		if info := cons.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = js.DeleteConsumer(dctx, stream, info.Name)
			cancel()
		}
	}()
	info := cons.CachedInfo()
	if info == nil || info.NumPending == 0 {
		return nil
	}
	pending := info.NumPending
	it, err := cons.Messages(jetstream.PullMaxMessages(64))
	if err != nil {
		return eventsErr(stream, err)
	}
	defer it.Stop()
	for pending > 0 {
		nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := it.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return eventsErr(stream, err)
		}
		if meta, err := m.Metadata(); err == nil {
			pending = meta.NumPending
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

// MsgSize is the payload size of a message read headers-only.
func MsgSize(m jetstream.Msg) string { return m.Headers().Get(nats.MsgSize) }
