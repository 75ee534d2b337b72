package hub

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/ratelog"
	"camhub/internal/wire"
)

// ConsumerPolicy is what a restricted user (an agent or a viewer) may
// create on the replay buffer beyond what NATS permissions can say, which
// the hub's consumer guard enforces: JetStream reads a consumer's
// durability, deliver subject and lifetime from the request's body, which
// permissions do not see.
//
//   - no durable consumer (durables never expire and survive restarts);
//   - a push consumer only if it delivers into the creator's own inbox
//     (wire.InboxPrefix): nats-server does not check a deliver subject
//     against its creator's publish permissions, so any other would let a
//     viewer publish the stream's frames wherever it likes;
//   - an inactivity threshold of at most MaxConsumerInactivity;
//   - at most MaxUserConsumers consumers per user at a time.
//
// The guard deletes an offending consumer as soon as the server's audit
// advisory of its creation arrives (a few milliseconds), logs it (at most
// once a second) and counts it. Messages a push consumer delivers in that
// moment carry a reply subject, which camhub's readers of live subjects
// refuse (wire.CheckLive).
const (
	MaxConsumerInactivity = 5 * time.Minute
	MaxUserConsumers      = 256
)

// Reasons the guard deletes a consumer, the label of its metric.
const (
	refusedDurable  = "durable"
	refusedDeliver  = "deliver_subject"
	refusedLifetime = "inactive_threshold"
	refusedLimit    = "per_user_limit"
)

// guard deletes consumers restricted users may not have.
type guard struct {
	log *slog.Logger
	js  jetstream.JetStream
	mu  sync.Mutex
	// restricted maps what the server knows each user the policy applies
	// to by (its name, or its nkey) to its name.
	restricted map[string]string
	owned      map[string]map[string]bool // user -> consumer names it created
	refused    map[string]*atomic.Uint64  // reason -> consumers deleted
	// warn logs a deletion at most once a second for each reason; the
	// rest are counted.
	warn *ratelog.Logger
}

func newGuard(log *slog.Logger, js jetstream.JetStream, restricted map[string]string) *guard {
	g := &guard{
		log: log, js: js, restricted: restricted,
		owned: make(map[string]map[string]bool), refused: make(map[string]*atomic.Uint64),
		warn: ratelog.New(log, time.Second),
	}
	for _, r := range []string{refusedDurable, refusedDeliver, refusedLifetime, refusedLimit} {
		g.refused[r] = new(atomic.Uint64)
	}
	return g
}

// audit is the part of JetStream's API audit advisory the guard reads.
type audit struct {
	Client *struct {
		User string `json:"user"`
	} `json:"client"`
	Subject  string `json:"subject"`
	Request  string `json:"request"`
	Response string `json:"response"`
}

type consumerRequest struct {
	Config struct {
		Durable           string        `json:"durable_name"`
		DeliverSubject    string        `json:"deliver_subject"`
		InactiveThreshold time.Duration `json:"inactive_threshold"`
	} `json:"config"`
}

type consumerResponse struct {
	Error *struct {
		Description string `json:"description"`
	} `json:"error"`
	Name   string `json:"name"`
	Stream string `json:"stream_name"`
}

// handle reads one audit advisory ($JS.EVENT.ADVISORY.API).
func (g *guard) handle(m *nats.Msg) {
	var a audit
	if err := json.Unmarshal(m.Data, &a); err != nil || a.Client == nil {
		return
	}
	g.mu.Lock()
	user, ok := g.restricted[a.Client.User]
	g.mu.Unlock()
	if !ok {
		return
	}
	if !strings.HasPrefix(a.Subject, "$JS.API.CONSUMER.CREATE.") && !strings.HasPrefix(a.Subject, "$JS.API.CONSUMER.DURABLE.CREATE.") {
		return
	}
	var resp consumerResponse
	if err := json.Unmarshal([]byte(a.Response), &resp); err != nil || resp.Error != nil || resp.Name == "" {
		return // not created
	}
	var req consumerRequest
	if err := json.Unmarshal([]byte(a.Request), &req); err != nil {
		g.remove(user, resp, refusedDurable) // unreadable: not what camhub sends
		return
	}
	c := req.Config
	switch {
	case c.Durable != "":
		g.remove(user, resp, refusedDurable)
	case c.DeliverSubject != "" && !strings.HasPrefix(c.DeliverSubject, wire.InboxPrefix(user)+"."):
		g.remove(user, resp, refusedDeliver)
	case c.InactiveThreshold > MaxConsumerInactivity:
		g.remove(user, resp, refusedLifetime)
	case !g.admit(user, resp):
		g.remove(user, resp, refusedLimit)
	}
}

// admit records that user created consumer resp.Name, unless the user
// already has MaxUserConsumers.
func (g *guard) admit(user string, resp consumerResponse) bool {
	g.mu.Lock()
	own := g.owned[user]
	if own == nil {
		own = make(map[string]bool)
		g.owned[user] = own
	}
	full := len(own) >= MaxUserConsumers
	g.mu.Unlock()
	if full {
		// Forget the consumers that are gone (deleted, or expired).
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		live := make(map[string]bool)
		st, err := g.js.Stream(ctx, resp.Stream)
		if err == nil {
			names := st.ConsumerNames(ctx)
			for n := range names.Name() {
				live[n] = true
			}
			err = names.Err()
		}
		if err != nil {
			g.log.Warn("consumer guard: cannot list consumers", "stream", resp.Stream, "error", err)
			return true // do not delete what cannot be checked
		}
		g.mu.Lock()
		for n := range own {
			if !live[n] {
				delete(own, n)
			}
		}
		full = len(own) >= MaxUserConsumers
		g.mu.Unlock()
	}
	if full {
		return false
	}
	g.mu.Lock()
	own[resp.Name] = true
	g.mu.Unlock()
	return true
}

// remove deletes consumer resp.Name, counted under reason.
func (g *guard) remove(user string, resp consumerResponse, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := g.js.DeleteConsumer(ctx, resp.Stream, resp.Name)
	g.refused[reason].Add(1)
	attrs := []any{"user", user, "stream", resp.Stream, "consumer", resp.Name, "reason", reason}
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		attrs = append(attrs, "error", err)
	}
	g.warn.Log(slog.LevelWarn, reason, "consumer guard: deleted a consumer this user may not have", attrs...)
}

// counts returns the consumers deleted so far, by reason.
func (g *guard) counts() map[string]uint64 {
	out := make(map[string]uint64, len(g.refused))
	for r, n := range g.refused {
		out[r] = n.Load()
	}
	return out
}

// setRestricted replaces the users the policy applies to (see
// Auth.Restricted).
func (g *guard) setRestricted(restricted map[string]string) {
	g.mu.Lock()
	g.restricted = restricted
	g.mu.Unlock()
}

// watchConsumers starts the consumer guard for the restricted users (see
// Auth.Restricted) on the hub's own connection; its subscription ends when
// the connection closes.
func (s *Server) watchConsumers(restricted map[string]string) error {
	js, err := jetstream.New(s.nc)
	if err != nil {
		return err
	}
	s.guard = newGuard(s.log.With("component", "guard"), js, restricted)
	// Deleting a consumer is a request: handle advisories off the
	// connection's delivery goroutine, one at a time, in order.
	_, err = s.nc.Subscribe(server.JSAuditAdvisory, s.guard.handle)
	if err != nil {
		return err
	}
	return s.nc.Flush()
}
