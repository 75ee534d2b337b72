package notify

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/wire"
)

// freshFor: an event stored longer ago than this has had time to get its
// picture; the notifier does not wait for one.
const freshFor = 30 * time.Second

// picture is the event's picture: its thumbnail from CLIPS, waited for up
// to ThumbWait if the event is new; else the camera's newest JPEG frame in
// the replay buffer; else nil.
func (n *Notifier) picture(ctx context.Context, j job) []byte {
	ev := j.ev
	subj := wire.ThumbSubject(ev.ID, ev.Camera)
	// Subscribe first, so that a thumbnail stored after the look-up below
	// is not missed: it is published on its subject like any message.
	sub, err := n.nc.SubscribeSync(subj)
	if err == nil {
		defer func() { _ = sub.Unsubscribe() }()
	}
	if b := n.lastJPEG(ctx, wire.ClipsStream, subj); b != nil {
		return b
	}
	if sub != nil && n.set.ThumbWait > 0 && time.Since(j.stored) < freshFor {
		deadline := time.Now().Add(n.set.ThumbWait)
		for {
			m, err := sub.NextMsgWithContext(timeoutCtx(ctx, deadline))
			if err != nil {
				break
			}
			if wire.LooksLikeJPEG(m.Data) {
				return m.Data
			}
		}
	}
	return n.lastJPEG(ctx, wire.FramesStream, wire.FramesSubject(ev.Camera))
}

// timeoutCtx is ctx ending at deadline; its cancel is left to the deadline
// (the waits above are short).
func timeoutCtx(ctx context.Context, deadline time.Time) context.Context {
	c, cancel := context.WithDeadline(ctx, deadline)
	context.AfterFunc(c, cancel)
	return c
}

// lastJPEG is the newest message on subject in stream, if it is a JPEG.
func (n *Notifier) lastJPEG(ctx context.Context, stream, subject string) []byte {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := n.js.Stream(ctx, stream)
	if err != nil {
		return nil
	}
	m, err := st.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		if !errors.Is(err, jetstream.ErrMsgNotFound) {
			n.log.Debug("notifications: picture", "subject", subject, "error", err)
		}
		return nil
	}
	if !wire.LooksLikeJPEG(m.Data) {
		return nil
	}
	return m.Data
}
