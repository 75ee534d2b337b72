// Package notify tells people about events: for each event in the stream
// EVENTS it POSTs the event as JSON to webhooks and sends a message with the
// event's picture to ntfy topics (https://ntfy.sh or a server of one's own).
//
// It reads EVENTS through a durable consumer (DurableName), so every event
// start is notified once: a hub that restarts carries on after the last
// event it read, without notifying any again, and events stored while it
// was down are notified when it is back unless they are older than
// Settings.MaxAge. Hubs of one cluster share the consumer, so one of them
// notifies each event.
//
// Each target has its own bounded queue and sender: a slow or failing
// endpoint is tried again with exponential backoff, each request within a
// time limit, and when its queue is full the oldest notification waiting
// is dropped (counted). Nothing here ever slows down detection, which only
// publishes to NATS. The package needs no cgo: the hub runs it.
package notify

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/version"
	"camhub/internal/wire"
)

// DurableName is the consumer on EVENTS that notifiers read.
const DurableName = "CAMHUB_NOTIFY"

// Stats counts what a notifier did.
type Stats struct {
	Events uint64 // event documents read
	Stale  uint64 // not notified: older than MaxAge when read
	Bad    uint64 // not an event document
}

// TargetStats counts one target's notifications.
type TargetStats struct {
	Name    string // "webhook-1", "ntfy-2": the kind and its place in the settings
	Sent    uint64 // delivered (a 2xx answer)
	Failed  uint64 // given up on after every try, or refused (4xx)
	Dropped uint64 // dropped from a full queue
	Retries uint64 // tries after a failed one
}

// Notifier is a running notifier.
type Notifier struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	log     *slog.Logger
	set     Settings
	client  *http.Client
	targets []*target

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	cc     jetstream.ConsumeContext

	events, stale, bad atomic.Uint64
	closeOnce          sync.Once
}

// target is one webhook or ntfy topic.
type target struct {
	name     string
	ntfy     bool
	url      string
	host     string // for logs: the URL itself may hold a secret (an ntfy topic)
	cams     map[string]bool
	end      bool
	headers  http.Header // a webhook's headers from its secret file
	token    string      // an ntfy topic's access token
	priority int
	tags     []string

	q                              *queue
	sent, failed, dropped, retries atomic.Uint64
}

func (t *target) wants(cam string, end bool) bool {
	return (len(t.cams) == 0 || t.cams[cam]) && (!end || t.end)
}

// New returns a notifier reading events through nc, which it does not
// close. It reads the targets' secrets now: a missing one is an error.
func New(nc *nats.Conn, cfg Config, log *slog.Logger) (*Notifier, error) {
	if err := cfg.Targets.validate(); err != nil {
		return nil, err
	}
	if err := cfg.Settings.Validate(); err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	n := &Notifier{nc: nc, js: js, log: log, set: cfg.Settings, client: &http.Client{
		// Each request's context bounds it; the client refuses to follow
		// redirects to other schemes than http(s) by itself.
		Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute,
			TLSHandshakeTimeout: cfg.Settings.Timeout, ResponseHeaderTimeout: cfg.Settings.Timeout},
	}}
	newTarget := func(kind string, i int, raw string, cams []string, end *bool) *target {
		u, _ := url.Parse(raw) // checked by validate
		t := &target{name: kind + "-" + strconv.Itoa(i+1), url: raw, host: u.Host, end: cfg.Settings.End,
			q: newQueue(cfg.Settings.Queue)}
		if end != nil {
			t.end = *end
		}
		if len(cams) > 0 {
			t.cams = map[string]bool{}
			for _, c := range cams {
				t.cams[c] = true
			}
		}
		return t
	}
	for i, w := range cfg.Targets.Webhooks {
		t := newTarget("webhook", i, w.URL, w.Cams, w.End)
		if t.headers, err = readHeaders(w.HeaderFile, w.HeaderEnv); err != nil {
			return nil, fmt.Errorf("%w: webhook %d: %w", ErrConfig, i+1, err)
		}
		n.targets = append(n.targets, t)
	}
	for i, c := range cfg.Targets.Ntfy {
		t := newTarget("ntfy", i, c.URL, c.Cams, c.End)
		t.ntfy, t.priority, t.tags = true, c.Priority, c.Tags
		if t.token, err = readSecret(c.TokenFile, c.TokenEnv); err != nil {
			return nil, fmt.Errorf("%w: ntfy %d: %w", ErrConfig, i+1, err)
		}
		n.targets = append(n.targets, t)
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n, nil
}

// Start reads events from now on (or from where the durable consumer
// stopped) and notifies them until Close. It waits up to a minute for the
// stream EVENTS (a hub starting).
func (n *Notifier) Start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var cons jetstream.Consumer
	var err error
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		cons, err = n.js.CreateOrUpdateConsumer(ctx, wire.EventsStream, jetstream.ConsumerConfig{
			Durable:       DurableName,
			Description:   "camhub notifications: the events notified so far",
			FilterSubject: wire.AllEvents,
			DeliverPolicy: jetstream.DeliverNewPolicy,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       30 * time.Second,
			MaxAckPending: 256,
		})
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("notifications: reading %s: %w", wire.EventsStream, err)
		case <-time.After(wait):
		}
	}
	for _, t := range n.targets {
		n.wg.Go(func() { n.work(t) })
	}
	n.cc, err = cons.Consume(n.onMsg, jetstream.PullMaxMessages(64),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			n.log.Debug("notifications: reading events", "error", err)
		}))
	if err != nil {
		n.Close()
		return fmt.Errorf("notifications: reading %s: %w", wire.EventsStream, err)
	}
	var names []string
	for _, t := range n.targets {
		names = append(names, t.name+" ("+t.host+")")
	}
	n.log.Info("notifications on", "targets", names, "retries", n.set.Retries, "timeout", n.set.Timeout, "queue", n.set.Queue)
	return nil
}

// Close stops reading events and the senders, and waits for them; what is
// still queued is not sent. It may be called more than once.
func (n *Notifier) Close() {
	n.closeOnce.Do(func() {
		if n.cc != nil {
			n.cc.Stop()
		}
		n.cancel()
		n.wg.Wait()
		n.client.CloseIdleConnections()
	})
}

// Stats returns the notifier's counters.
func (n *Notifier) Stats() Stats {
	return Stats{Events: n.events.Load(), Stale: n.stale.Load(), Bad: n.bad.Load()}
}

// TargetStats returns every target's counters, in the order of the
// settings (webhooks first).
func (n *Notifier) TargetStats() []TargetStats {
	out := make([]TargetStats, len(n.targets))
	for i, t := range n.targets {
		out[i] = TargetStats{Name: t.name, Sent: t.sent.Load(), Failed: t.failed.Load(), Dropped: t.dropped.Load(), Retries: t.retries.Load()}
	}
	return out
}

// job is one notification to send.
type job struct {
	ev     wire.Event
	end    bool
	stored time.Time // when EVENTS stored the document
}

// onMsg takes one event document and queues its notifications. It never
// waits on a target.
func (n *Notifier) onMsg(m jetstream.Msg) {
	defer func() {
		// acknowledged for sure before the next: a restarted hub does
		// not notify it again
		ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
		defer cancel()
		if err := m.DoubleAck(ctx); err != nil {
			n.log.Debug("notifications: acknowledging an event", "error", err)
		}
	}()
	ev, err := wire.ParseEvent(m.Subject(), m.Data())
	if err != nil {
		n.bad.Add(1)
		n.log.Debug("notifications: not an event", "subject", m.Subject(), "error", err)
		return
	}
	n.events.Add(1)
	stored := time.Now()
	if md, err := m.Metadata(); err == nil {
		stored = md.Timestamp
	}
	if time.Since(stored) > n.set.MaxAge {
		n.stale.Add(1)
		return
	}
	end := !ev.Open()
	for _, t := range n.targets {
		if t.wants(ev.Camera, end) {
			if t.q.push(job{ev: *ev, end: end, stored: stored}) {
				t.dropped.Add(1)
			}
		}
	}
}

// work sends t's notifications until the notifier closes.
func (n *Notifier) work(t *target) {
	for {
		j, ok := t.q.pop(n.ctx)
		if !ok {
			return
		}
		n.deliver(t, j)
	}
}

// deliver sends one notification, trying again with backoff.
func (n *Notifier) deliver(t *target, j job) {
	var pic []byte
	if t.ntfy && !j.end {
		pic = n.picture(n.ctx, j)
	}
	log := n.log.With("target", t.name, "host", t.host, "camera", j.ev.Camera, "event", j.ev.ID)
	wait := n.set.Backoff
	for attempt := 0; ; attempt++ {
		status, err := n.send(t, j, pic)
		if err == nil {
			t.sent.Add(1)
			log.Debug("notified", "tries", attempt+1)
			return
		}
		refused := status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests
		if refused || attempt >= n.set.Retries || n.ctx.Err() != nil {
			t.failed.Add(1)
			log.Warn("notification failed", "tries", attempt+1, "error", err)
			return
		}
		t.retries.Add(1)
		select {
		case <-n.ctx.Done():
			t.failed.Add(1)
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, maxBackoff)
	}
}

// send makes one request; status is the HTTP status, if there was one.
func (n *Notifier) send(t *target, j job, pic []byte) (status int, err error) {
	ctx, cancel := context.WithTimeout(n.ctx, n.set.Timeout)
	defer cancel()
	var req *http.Request
	if t.ntfy {
		req, err = ntfyRequest(ctx, t, j, pic)
	} else {
		req, err = webhookRequest(ctx, t, j)
	}
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", "camhub/"+version.String())
	resp, err := n.client.Do(req)
	if err != nil {
		return 0, redactErr(err, t)
	}
	defer resp.Body.Close()
	drain(resp)
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}

// redactErr keeps a target's URL, which may hold a secret (an ntfy topic's
// name), out of an error.
func redactErr(err error, t *target) error {
	if ue, ok := err.(*url.Error); ok {
		return fmt.Errorf("%s %s: %w", ue.Op, t.host, ue.Err)
	}
	return err
}
