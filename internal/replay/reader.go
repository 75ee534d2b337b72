package replay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/wire"
)

// seekMargin is how much earlier than a requested time a consumer starts.
// JetStream seeks by the time the hub stored a frame, but the range is
// chosen by capture time (Frame-Time); a frame is stored after it was
// captured, unless the agent's clock runs ahead of the hub's. Starting a
// little earlier and skipping frames captured before the requested time
// makes the seek exact for clocks up to this far apart.
const seekMargin = 5 * time.Second

// idleCheck is how long a reader waits for a message it expects (the
// server said more were stored) before it asks the server again. Frames
// can leave the buffer (by age or size) before they are read, and then
// would never come.
const idleCheck = time.Second

// stallTimeout is how long a reader waits for messages the server says it
// holds before it gives up on its consumer and reads on through a new one
// (reader.renew).
const stallTimeout = 5 * time.Second

// consumerInactivity is how long the server keeps a reader's consumer once
// nothing pulls from it (a reader that vanished without deleting it). It
// is within what the hub's consumer guard allows (hub.MaxConsumerInactivity).
const consumerInactivity = time.Minute

// ConsumerNamePrefix returns a new name prefix for a consumer: 128 random
// bits. A viewer may use any consumer it can name but may not list them, so
// a name no one can guess keeps its consumers its own.
func ConsumerNamePrefix() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return "camhub_" + hex.EncodeToString(b[:])
}

// reader reads one camera's frames, in stream order, through an ordered
// consumer: no frame twice and none missed, even across the consumer's own
// recoveries, and new frames keep coming as they are stored.
//
// A consumer can also go quiet without an error: in a cluster that has just
// lost a node, one placed on a peer that stopped answering keeps the pull
// requests and sends nothing, while the stream says frames are waiting.
// The client's missed-heartbeat check cannot see this (next waits at most
// idleCheck at a time), so the reader watches for it itself: when nothing
// has come for stallTimeout while the server says more is stored, it reads
// on from the frame after the last one through a new consumer.
type reader struct {
	js      jetstream.JetStream
	cons    jetstream.Consumer
	it      jetstream.MessagesContext
	pending uint64 // messages stored after the last one read, as the server last said

	// what the reader was opened with, to renew it
	id, filter string
	cfg        jetstream.OrderedConsumerConfig
	pull       int

	last    uint64    // stream sequence of the last message read; 0: none yet
	waiting time.Time // since when nothing has come while more was stored; zero: not waiting
	renewed int       // consumers replaced after going quiet
}

// openReader creates an ordered consumer on the buffer for camera id, and
// iterates it holding at most pull messages in the client.
func openReader(ctx context.Context, js jetstream.JetStream, id string, cfg jetstream.OrderedConsumerConfig, pull int) (*reader, error) {
	return openFiltered(ctx, js, id, wire.FramesSubject(id), cfg, pull)
}

// openFiltered is openReader on the subject filter of the caller's choice
// (one of camera id's subjects).
func openFiltered(ctx context.Context, js jetstream.JetStream, id, filter string, cfg jetstream.OrderedConsumerConfig, pull int) (*reader, error) {
	cfg.FilterSubjects = []string{filter}
	cfg.NamePrefix = ConsumerNamePrefix()
	cfg.InactiveThreshold = consumerInactivity
	cons, err := js.OrderedConsumer(ctx, wire.FramesStream, cfg)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("camera %q: %w: stream %s is gone; is the hub running?", id, ErrNoBuffer, wire.FramesStream)
		}
		return nil, fmt.Errorf("camera %q: reading the replay buffer: %w", id, err)
	}
	r := &reader{js: js, cons: cons, id: id, filter: filter, cfg: cfg, pull: pull}
	if info := cons.CachedInfo(); info != nil {
		r.pending = info.NumPending
	}
	r.it, err = cons.Messages(jetstream.PullMaxMessages(pull))
	if err != nil {
		r.close()
		return nil, fmt.Errorf("camera %q: reading the replay buffer: %w", id, err)
	}
	return r, nil
}

// next returns the next message. If none comes within idleCheck it
// refreshes r.pending from the server and returns nil, nil: a caller that
// waits for the end of what is stored checks r.pending and calls again.
func (r *reader) next(ctx context.Context) (jetstream.Msg, error) {
	nctx, cancel := context.WithTimeout(ctx, idleCheck)
	m, err := r.it.Next(jetstream.NextContext(nctx))
	cancel()
	if err == nil {
		if meta, merr := m.Metadata(); merr == nil {
			r.pending = meta.NumPending
			r.last = meta.Sequence.Stream
		}
		r.waiting = time.Time{}
		return m, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		return nil, err
	}
	ictx, icancel := context.WithTimeout(ctx, 5*time.Second)
	info, ierr := r.cons.Info(ictx)
	icancel()
	if ierr == nil {
		r.pending = info.NumPending
	}
	// An error here (the consumer is being recreated) is not fatal:
	// try again on the next call, unless it has gone on too long.
	switch {
	case r.pending == 0:
		r.waiting = time.Time{}
	case r.waiting.IsZero():
		r.waiting = time.Now()
	case time.Since(r.waiting) >= stallTimeout:
		if err := r.renew(ctx); err != nil && ctx.Err() == nil {
			return nil, err
		}
		r.waiting = time.Now()
	}
	return nil, nil
}

// renew replaces the reader's consumer, which has gone quiet, by a new one
// that starts at the frame after the last one read (or where the reader
// started, if it read none).
func (r *reader) renew(ctx context.Context) error {
	cfg := r.cfg
	if r.last > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = jetstream.DeliverByStartSequencePolicy, r.last+1, nil
	}
	octx, cancel := context.WithTimeout(ctx, stallTimeout)
	defer cancel()
	n, err := openFiltered(octx, r.js, r.id, r.filter, cfg, r.pull)
	if err != nil {
		if errors.Is(err, ErrNoBuffer) {
			return err
		}
		return nil // the hub is busy or away: again after stallTimeout
	}
	old := *r
	r.cons, r.it, r.pending, r.renewed = n.cons, n.it, n.pending, r.renewed+1
	old.close()
	return nil
}

// firstOn returns the oldest message on subject filter (one camera's) in
// the buffer, or nil if it holds none. It reads it through a consumer
// filtered to the subject, not a get by sequence: such a get names its
// subject in the request's body, where NATS permissions cannot see it, so
// a viewer limited to some cameras may not make it, while it may create
// consumers filtered to its cameras.
func firstOn(ctx context.Context, st jetstream.Stream, filter string) (jetstream.Msg, error) {
	// Right after a cluster has lost a node, a new consumer can exist
	// before anything answers its pulls ("no responders"); the ordered
	// consumer's own Messages recovers from this by recreating it, and
	// so does this, for as long as firstRetries allow.
	wait := firstRetryWait
	for attempt := 1; ; attempt++ {
		m, err := firstOnce(ctx, st, filter)
		if !errors.Is(err, nats.ErrNoResponders) || attempt == firstRetries {
			return m, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// firstRetries and firstRetryWait bound firstOn's retries: 100 ms doubling
// to 3.2 s, 6.3 s in all, the time a cluster takes to elect the leaders of
// a lost node's streams.
const (
	firstRetries   = 7
	firstRetryWait = 100 * time.Millisecond
)

// firstOnce is one try of firstOn.
func firstOnce(ctx context.Context, st jetstream.Stream, filter string) (jetstream.Msg, error) {
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter}, NamePrefix: ConsumerNamePrefix(), InactiveThreshold: consumerInactivity,
	})
	if err != nil {
		return nil, err
	}
	batch, err := cons.FetchNoWait(1)
	defer func() {
		if info := cons.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = st.DeleteConsumer(dctx, info.Name) // best effort: it expires anyway
			cancel()
		}
	}()
	if err != nil {
		return nil, err
	}
	var first jetstream.Msg
	for m := range batch.Messages() {
		if first == nil {
			first = m
		}
	}
	if first == nil {
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, err
		}
	}
	return first, nil
}

// close stops the iterator and deletes the consumer on the server (which
// would otherwise linger until its inactivity threshold).
func (r *reader) close() {
	if r.it != nil {
		r.it.Stop()
	}
	info := r.cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = r.js.DeleteConsumer(ctx, wire.FramesStream, info.Name) // best effort
}

// Cursor reads one camera's frames from the buffer in stream order, through
// to the newest frame stored: no frame twice and none missed. Messages on
// the camera's subject that are not camhub frames are skipped.
type Cursor struct{ r *reader }

// CursorOptions says where a Cursor starts and what it reads.
type CursorOptions struct {
	// StartSeq, if set, is the stream sequence of the first frame read.
	StartSeq uint64
	// Otherwise StartTime, if set, is a capture time: the cursor starts a
	// few seconds before the frames stored at that time (the hub's and the
	// agent's clocks may differ), so the caller skips frames captured
	// earlier. Neither set starts at the oldest frame.
	StartTime time.Time
	// HeadersOnly reads the frames' headers without their JPEGs.
	HeadersOnly bool
	// Pull is how many messages the client holds at once (default 1).
	Pull int
}

// OpenCursor opens a cursor on camera id's frames in the buffer. Close it.
func OpenCursor(ctx context.Context, js jetstream.JetStream, id string, o CursorOptions) (*Cursor, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	cfg := jetstream.OrderedConsumerConfig{HeadersOnly: o.HeadersOnly}
	switch {
	case o.StartSeq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, o.StartSeq
	case !o.StartTime.IsZero():
		seek := o.StartTime.Add(-seekMargin)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &seek
	}
	r, err := openReader(ctx, js, id, cfg, max(o.Pull, 1))
	if err != nil {
		return nil, err
	}
	return &Cursor{r: r}, nil
}

// Next returns the next frame. ok is false, with no error, when the
// frames the server last said were stored have all been read.
func (c *Cursor) Next(ctx context.Context) (f Frame, ok bool, err error) {
	for c.r.pending > 0 {
		m, err := c.r.next(ctx)
		if err != nil {
			return Frame{}, false, err
		}
		if m == nil {
			continue
		}
		f, _, err := consumedFrame(m)
		if errors.Is(err, errNotFrame) {
			continue
		}
		if err != nil {
			return Frame{}, false, err
		}
		return f, true, nil
	}
	return Frame{}, false, nil
}

// Close stops reading and deletes the consumer on the server.
func (c *Cursor) Close() { c.r.close() }
