// Package natsconn connects camhub's components to NATS: the connection
// with camhub's reconnect policy (Dial, Backoff), the user, password and TLS
// trust it logs in with (Auth), and URLs with their credentials hidden for
// logs (RedactURL).
package natsconn

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"camhub/internal/ratelog"
)

// DefaultNATS is the NATS URL camhub connects to when none is given.
const DefaultNATS = "nats://127.0.0.1:4222"

// DialOptions are the choices Dial leaves to its caller.
type DialOptions struct {
	Name string // connection name, shown by the server's monitoring
	// Retry makes Dial return at once even if no server answers yet; the
	// connection keeps trying in the background. Otherwise Dial fails if
	// no server answers within a few seconds.
	Retry bool
	// Auth is the user, password and TLS trust to connect with.
	Auth Auth
	// Extra options, applied last.
	Extra []nats.Option
}

// Dial connects to the NATS server or cluster at urls (comma-separated)
// with camhub's policy: reconnect forever, with backoff from 250 ms up to
// 5 s plus jitter, and no reconnect buffer, so nothing stale is replayed
// after an outage (newest frame wins; publishes during an outage fail fast
// and the caller counts them as dropped). Connection events are logged.
func Dial(urls string, o DialOptions, log *slog.Logger) (*nats.Conn, error) {
	if strings.TrimSpace(urls) == "" {
		urls = DefaultNATS
	}
	// A refused publish repeats with every frame: one line a second for
	// each subject is enough to tell.
	refused := ratelog.New(log, time.Second)
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(Backoff(250*time.Millisecond, 5*time.Second)),
		nats.ReconnectBufSize(-1),
		nats.Timeout(3 * time.Second),
		nats.PingInterval(10 * time.Second),
		// A write stalled this long (a dead link: the socket's buffer is
		// full) fails and the connection is reopened, dropping what the
		// socket held, instead of delivering it late when the link comes
		// back; nats.go's default is a minute.
		nats.FlusherTimeout(10 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from NATS", "error", err)
			} else {
				log.Info("disconnected from NATS")
			}
		}),
		// Called once the first connection is made, at once or (with
		// Retry) later in the background.
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("connected to NATS", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrAuthorization) && o.Auth.Name() == "" {
				log.Error("NATS refused: the hub requires a login; join it with --join-file FILE (the token of hub camera add or hub user add on the hub)", "error", err)
				return
			}
			if errors.Is(err, nats.ErrPermissionViolation) || errors.Is(err, nats.ErrAuthorization) {
				// Not transient: this user may not do this, ever.
				refused.Log(slog.LevelError, err.Error(), "NATS refused: permission denied for this user", "user", o.Auth.Name(), "error", err)
				return
			}
			if sub != nil {
				log.Warn("NATS error", "subject", sub.Subject, "error", err)
				return
			}
			log.Warn("NATS error", "error", err)
		}),
	}
	if o.Retry {
		opts = append(opts, nats.RetryOnFailedConnect(true))
	}
	auth, err := o.Auth.Options()
	if err != nil {
		return nil, err
	}
	opts = append(opts, auth...)
	opts = append(opts, o.Extra...)
	// Last: the closed handler (the caller's, if Extra set one) then says
	// that nats.go has run its last callback for the connection (Close).
	done := make(chan struct{})
	opts = append(opts, func(no *nats.Options) error {
		prev := no.ClosedCB
		no.ClosedCB = func(nc *nats.Conn) {
			if prev != nil {
				prev(nc)
			}
			close(done)
			lastCallback.Delete(nc) // however it was closed
		}
		return nil
	})
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		err = fmt.Errorf("connecting to NATS at %s: %w", RedactURL(urls), err)
		if errors.Is(err, nats.ErrAuthorization) && o.Auth.Name() == "" {
			err = fmt.Errorf("%w (the hub requires a login: join it with --join-file, the token of hub camera add or hub user add)", err)
		} else if errors.Is(err, nats.ErrSecureConnRequired) {
			err = fmt.Errorf("%w (the hub is secured: join it with --join-file, the token of hub camera add or hub user add)", err)
		}
		return nil, err
	}
	lastCallback.Store(nc, done)
	select {
	case <-done: // closed already, before the Store
		lastCallback.Delete(nc)
	default:
	}
	if !nc.IsConnected() {
		log.Info("waiting for NATS", "url", RedactURL(urls))
	}
	return nc, nil
}

// lastCallback holds, for each open connection Dial made, a channel closed
// once nats.go has run its last callback for it (which then removes it).
var lastCallback sync.Map // *nats.Conn → chan struct{}

// closeWait bounds how long Close waits for the connection's callbacks.
const closeWait = 2 * time.Second

// Close closes a connection Dial made and waits, up to 2 s, until nats.go
// has run its callbacks for it (they log): nothing is logged for the
// connection after Close returns, so a program's logs end with it.
// Callbacks run on nats.go's own goroutine, after nc.Close has returned.
func Close(nc *nats.Conn) {
	nc.Close()
	v, ok := lastCallback.LoadAndDelete(nc)
	if !ok {
		return
	}
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case <-v.(chan struct{}):
	case <-t.C:
	}
}

// Backoff returns a reconnect delay that doubles from min to max with up to
// 20 % jitter.
func Backoff(min, max time.Duration) func(attempts int) time.Duration {
	return func(attempts int) time.Duration {
		d := min
		for i := 1; i < attempts && d < max; i++ {
			d *= 2
		}
		if d > max {
			d = max
		}
		return d + time.Duration(float64(d)*0.2*rand.Float64())
	}
}

// RedactURL hides the credentials in a URL (or in each of a comma-separated
// list of URLs, or in a GStreamer pipeline) for logs and status reports:
// nats://user:secret@host and rtsp://user:secret@camera become
// nats://REDACTED@host and so on, and the values of query parameters whose
// names look like secrets (pwd, password, token, key, auth, sig, secret,
// ...: see secretParam) become REDACTED, as in
// http://cam/videostream.cgi?user=admin&pwd=REDACTED.
func RedactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		s := strings.Index(p, "://")
		if s < 0 {
			continue
		}
		authority := p[s+3:]
		if end := strings.IndexAny(authority, "/?#"); end >= 0 {
			authority = authority[:end]
		}
		if at := strings.LastIndex(authority, "@"); at >= 0 {
			parts[i] = p[:s+3] + "REDACTED" + p[s+3+at:]
		}
	}
	return queryParam.ReplaceAllStringFunc(strings.Join(parts, ","), func(m string) string {
		name, _, _ := strings.Cut(m[1:], "=")
		if !secretParam(name) {
			return m
		}
		return m[:1] + name + "=REDACTED"
	})
}

// queryParam matches a query parameter: its separator, name and value.
var queryParam = regexp.MustCompile(`[?&;][A-Za-z0-9_.\-]+=[^&#;,\s]*`)

// secretParam reports whether a query parameter's name looks like it holds
// a secret. It errs on the side of hiding.
func secretParam(name string) bool {
	n := strings.ToLower(name)
	if n == "pw" {
		return true
	}
	for _, s := range []string{"pass", "pwd", "token", "key", "auth", "sig", "secret", "session", "cred", "ticket", "code"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}
