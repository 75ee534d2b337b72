package web

// Logins. With Config.Login the server asks everyone who they are, and the
// hub alone decides what they may see: a login is checked by connecting to
// the hub as that user with that password (nats-server checks them), and
// the user's cameras are the server's own answer to $SYS.REQ.USER.INFO on
// that connection (the cameras whose frames the user may subscribe to).
// The connection stays open while any of the user's sessions (or cached
// Basic or Bearer credentials) lives, and everything the user reads from
// the hub's buffer — snapshots, rewinds — goes through it, so NATS
// permissions decide. When the hub closes it (the user was removed, or its
// password changed), the user's sessions end at once, streams included.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/natsconn"
	"camhub/internal/wire"
)

// Login defaults and limits.
const (
	// DefaultSessionIdle ends a session unused for this long.
	DefaultSessionIdle = 24 * time.Hour
	// DefaultSessionMax ends a session this long after its login.
	DefaultSessionMax = 7 * 24 * time.Hour
	// DefaultFreeAttempts is how many wrong passwords a user, or a client
	// address, may give before it must wait.
	DefaultFreeAttempts = 5
	// DefaultLockout is the first wait; it doubles with every wrong
	// password after, up to MaxLockout.
	DefaultLockout = time.Second
	// MaxLockout bounds the wait.
	MaxLockout = 15 * time.Minute
	// DefaultCredentialCache is how long Basic and Bearer credentials the
	// hub accepted are taken without asking it again, so that a tool that
	// reconnects (an MJPEG client does, often) costs the hub one bcrypt
	// per this period, not one per request.
	DefaultCredentialCache = time.Minute

	// UserInfoSubject is where a NATS client asks the server who it is and
	// what it may do.
	UserInfoSubject = "$SYS.REQ.USER.INFO"

	maxSessions    = 10000 // sessions held at once
	maxCredentials = 1024  // Basic and Bearer credentials cached
	maxFailures    = 10000 // users and addresses whose failures are counted
	maxVerifying   = 8     // logins checked against the hub at once
	maxUserLen     = 64
	maxPasswordLen = 1024
	permsTTL       = 10 * time.Second // how long a user's cameras are taken as read
	hubTimeout     = 5 * time.Second
	sessionIDBytes = 32 // 256 bits
)

// Login configures logins: see Config.Login.
type Login struct {
	// NATS is the hub's URL (or URLs, comma-separated): each user logs
	// in by connecting to it as themselves.
	NATS string
	// TLSCA, if set, is the CA file (PEM) the hub's certificate must be
	// signed by, as for the server's own connection (--tls-ca).
	TLSCA string
	// Options are more options of the users' connections: the TLS trust
	// the server's own connection has, if given otherwise than by a file
	// (a join token's pinned CA, say).
	Options []nats.Option
	// SessionIdle and SessionMax end a session unused for SessionIdle,
	// and any session SessionMax after its login. 0: DefaultSessionIdle,
	// DefaultSessionMax.
	SessionIdle, SessionMax time.Duration
	// FreeAttempts wrong passwords of one user, or from one address, are
	// answered at once; after that each must wait Lockout, doubled with
	// every further wrong password (up to MaxLockout), and attempts while
	// waiting are refused unchecked (429). 0: DefaultFreeAttempts,
	// DefaultLockout.
	FreeAttempts int
	Lockout      time.Duration
	// CredentialCache: see DefaultCredentialCache. 0: the default.
	CredentialCache time.Duration

	now func() time.Time // the clock of sessions and lockouts; nil: time.Now (tests set it)
}

func (l *Login) validate() error {
	if l.SessionIdle < 0 || l.SessionMax < 0 || l.FreeAttempts < 0 || l.Lockout < 0 || l.CredentialCache < 0 {
		return fmt.Errorf("%w: login: negative duration or count", ErrConfig)
	}
	if l.SessionIdle == 0 {
		l.SessionIdle = DefaultSessionIdle
	}
	if l.SessionMax == 0 {
		l.SessionMax = DefaultSessionMax
	}
	if l.FreeAttempts == 0 {
		l.FreeAttempts = DefaultFreeAttempts
	}
	if l.Lockout == 0 {
		l.Lockout = DefaultLockout
	}
	if l.CredentialCache == 0 {
		l.CredentialCache = DefaultCredentialCache
	}
	return nil
}

// Why a login fails.
var (
	errWrong     = errors.New("wrong user or password")
	errThrottled = errors.New("too many wrong passwords: wait before trying again")
	errNoCameras = errors.New("this user may not view cameras (the hub did not say which it may see)")
	errHub       = errors.New("cannot reach the hub to check the login")
	errBusy      = errors.New("too many logins being checked: try again")
)

// throttledError says how long to wait.
type throttledError struct{ wait time.Duration }

func (e *throttledError) Error() string { return errThrottled.Error() }
func (e *throttledError) Unwrap() error { return errThrottled }

// subjectPerm and userInfo are the parts of the server's answer to
// UserInfoSubject that say what the user may subscribe to.
type subjectPerm struct {
	Allow []string `json:"allow,omitempty"`
	Deny  []string `json:"deny,omitempty"`
}

type userInfo struct {
	Data *struct {
		User        string `json:"user"`
		Permissions *struct {
			Subscribe *subjectPerm `json:"subscribe"`
		} `json:"permissions"`
	} `json:"data"`
	Error *struct {
		Code        int    `json:"code"`
		Description string `json:"description"`
	} `json:"error"`
}

// allows reports whether p lets its user subscribe to subject; nil lets
// it subscribe to anything.
func (p *subjectPerm) allows(subject string) bool {
	if p == nil {
		return true
	}
	if len(p.Allow) > 0 {
		ok := false
		for _, a := range p.Allow {
			if subjectMatches(a, subject) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, d := range p.Deny {
		if subjectMatches(d, subject) {
			return false
		}
	}
	return true
}

// subjectMatches reports whether NATS subject pattern (with * and >)
// matches the literal subject.
func subjectMatches(pattern, subject string) bool {
	for {
		pt, prest, pmore := strings.Cut(pattern, ".")
		st, srest, smore := strings.Cut(subject, ".")
		switch {
		case pt == ">":
			return st != ""
		case pt != "*" && pt != st:
			return false
		case !pmore || !smore:
			return pmore == smore
		}
		pattern, subject = prest, srest
	}
}

// account is one user logged in: the hub connection their sessions share.
type account struct {
	name string
	nc   *nats.Conn
	js   jetstream.JetStream
	// ctx ends when the connection closes: every session and stream of
	// the user ends with it.
	ctx    context.Context
	cancel context.CancelFunc

	perms   atomic.Pointer[subjectPerm] // what the user may subscribe to; nil pointer in it: anything
	checked atomic.Int64                // when perms were read (UnixNano)
	refs    int                         // sessions and cached credentials; under gate.mu
}

// allows reports whether the user may see camera id.
func (a *account) allows(id string) bool {
	return wire.ValidateID(id) == nil && a.perms.Load().allows(wire.FramesSubject(id))
}

// all reports whether the user may see every camera.
func (a *account) all() bool {
	p := a.perms.Load()
	return p.allows(wire.FramesSubject("*")) && (p == nil || len(p.Deny) == 0)
}

// readPerms asks the hub what the user may subscribe to.
func (a *account) readPerms(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, hubTimeout)
	defer cancel()
	m, err := a.nc.RequestWithContext(ctx, UserInfoSubject, nil)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", errNoCameras, UserInfoSubject, err)
	}
	var ui userInfo
	if err := json.Unmarshal(m.Data, &ui); err != nil || ui.Data == nil || ui.Error != nil {
		return fmt.Errorf("%w: %s answered %.200q", errNoCameras, UserInfoSubject, m.Data)
	}
	p := &subjectPerm{} // zero: anything
	if ui.Data.Permissions != nil && ui.Data.Permissions.Subscribe != nil {
		p = ui.Data.Permissions.Subscribe
	}
	a.perms.Store(p)
	a.checked.Store(time.Now().UnixNano())
	return nil
}

// session is one browser's login.
type session struct {
	acc     *account
	ctx     context.Context // ends with the session
	cancel  context.CancelFunc
	created time.Time
	used    time.Time // under gate.mu
}

// credential is cached Basic or Bearer credentials the hub accepted.
type credential struct {
	acc     *account
	expires time.Time
}

// failures counts one user's, or one address's, wrong passwords.
type failures struct {
	n     int
	until time.Time // no attempt is checked before this
	last  time.Time
}

// gate checks logins and keeps sessions.
type gate struct {
	cfg Login
	log *slog.Logger
	now func() time.Time // the clock of expiry and lockouts; tests move it
	key []byte           // HMAC key of the credential cache

	verifying chan struct{} // one token per login being checked

	mu       sync.Mutex
	closed   bool
	accounts map[string]*account
	sessions map[string]*session
	creds    map[[32]byte]*credential
	fails    map[string]*failures

	// counts, by result
	loginsOK, loginsWrong, loginsThrottled, loginsFailed atomic.Uint64
	sessionsEnded                                        atomic.Uint64 // by the hub closing the user's connection
}

func newGate(cfg Login, log *slog.Logger) (*gate, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	now := cfg.now
	if now == nil {
		now = time.Now
	}
	return &gate{
		cfg: cfg, log: log, now: now, key: key,
		verifying: make(chan struct{}, maxVerifying),
		accounts:  make(map[string]*account),
		sessions:  make(map[string]*session),
		creds:     make(map[[32]byte]*credential),
		fails:     make(map[string]*failures),
	}, nil
}

// verify checks user's password with the hub, from addr, and returns the
// user's account, holding one reference for the caller.
func (g *gate) verify(ctx context.Context, user, password, addr string) (*account, error) {
	keys := []string{"a:" + addr}
	if wire.ValidateID(user) == nil && len(user) <= maxUserLen {
		keys = append(keys, "u:"+user)
	}
	if wait := g.blocked(keys); wait > 0 {
		g.loginsThrottled.Add(1)
		return nil, &throttledError{wait}
	}
	if len(keys) == 1 || password == "" || len(password) > maxPasswordLen {
		g.failed(keys)
		return nil, errWrong
	}
	select {
	case g.verifying <- struct{}{}:
		defer func() { <-g.verifying }()
	default:
		g.loginsFailed.Add(1)
		return nil, errBusy
	}
	acc, err := g.dial(ctx, user, password)
	switch {
	case errors.Is(err, nats.ErrAuthorization):
		g.failed(keys)
		// not the user: people type their password there
		g.log.Info("login refused: wrong user or password", "client", addr)
		return nil, errWrong
	case err != nil:
		g.loginsFailed.Add(1)
		g.log.Warn("login failed", "client", addr, "error", err)
		return nil, err
	}
	g.succeeded(keys)
	return acc, nil
}

// dial connects to the hub as user and reads what it may see. If the user
// is logged in already, their account is used and the new connection
// closed.
func (g *gate) dial(ctx context.Context, user, password string) (*account, error) {
	acc := &account{name: user}
	acc.ctx, acc.cancel = context.WithCancel(context.Background())
	log := g.log.With("user", user)
	nc, err := natsconn.Dial(g.cfg.NATS, natsconn.DialOptions{
		Name: "camhub-web-user-" + user,
		Auth: natsconn.Auth{TLSCA: g.cfg.TLSCA},
		Extra: append(slices.Clip(g.cfg.Options),
			nats.UserInfo(user, password),
			nats.CustomInboxPrefix(wire.InboxPrefix(user)),
			// The hub refusing the user (removed, or its password
			// changed) ends its sessions at once, without waiting
			// for nats.go to give up reconnecting.
			nats.ErrorHandler(func(nc *nats.Conn, _ *nats.Subscription, err error) {
				if isAuthError(err) {
					log.Info("the hub refused the user: ending its sessions", "error", err)
					nc.Close() // the closed handler runs after this one
				}
			}),
			nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
				if isAuthError(err) {
					nc.Close()
				}
			}),
			nats.ClosedHandler(func(*nats.Conn) { g.drop(acc) }),
		),
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		acc.cancel()
		if isAuthError(err) {
			return nil, nats.ErrAuthorization
		}
		return nil, fmt.Errorf("%w: %v", errHub, err)
	}
	acc.nc = nc
	if acc.js, err = jetstream.New(nc); err == nil {
		err = acc.readPerms(ctx)
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		nc.Close()
		return nil, errHub
	}
	if old := g.accounts[user]; old != nil && old.ctx.Err() == nil {
		old.perms.Store(acc.perms.Load())
		old.checked.Store(acc.checked.Load())
		old.refs++
		g.mu.Unlock()
		acc.nc.Close() // its ClosedHandler drops acc, which is in no map
		return old, nil
	}
	g.accounts[user] = acc
	acc.refs = 1
	g.mu.Unlock()
	log.Info("user logged in")
	return acc, nil
}

// isAuthError reports whether err is the hub refusing a user's
// credentials.
func isAuthError(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) ||
		(err != nil && strings.Contains(strings.ToLower(err.Error()), "authorization violation"))
}

// drop ends every session of acc, whose connection closed.
func (g *gate) drop(acc *account) {
	acc.cancel()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.accounts[acc.name] == acc {
		delete(g.accounts, acc.name)
	}
	n := 0
	for id, s := range g.sessions {
		if s.acc == acc {
			s.cancel()
			delete(g.sessions, id)
			n++
		}
	}
	for k, c := range g.creds {
		if c.acc == acc {
			delete(g.creds, k)
		}
	}
	if n > 0 && !g.closed {
		g.sessionsEnded.Add(uint64(n))
		g.log.Info("the hub closed the user's connection: its sessions ended", "user", acc.name, "sessions", n)
	}
}

// release gives back a reference to acc; the last closes its connection.
// g.mu is held.
func (g *gate) releaseLocked(acc *account) {
	acc.refs--
	if acc.refs <= 0 {
		if g.accounts[acc.name] == acc {
			delete(g.accounts, acc.name)
		}
		// Close does not wait for the closed handler (which takes
		// g.mu): nats.go runs it later, on its own goroutine.
		acc.nc.Close()
	}
}

func (g *gate) release(acc *account) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.releaseLocked(acc)
}

// blocked returns how long any of keys must still wait.
func (g *gate) blocked(keys []string) time.Duration {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		if f := g.fails[k]; f != nil && f.until.After(now) {
			wait = max(wait, f.until.Sub(now))
		}
	}
	return wait
}

// failed counts a wrong password against keys.
func (g *gate) failed(keys []string) {
	g.loginsWrong.Add(1)
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, k := range keys {
		f := g.fails[k]
		if f == nil {
			if len(g.fails) >= maxFailures {
				g.forgetFailure(now)
			}
			f = &failures{}
			g.fails[k] = f
		}
		f.n++
		f.last = now
		if over := f.n - g.cfg.FreeAttempts; over >= 0 {
			wait := g.cfg.Lockout
			for i := 0; i < over && wait < MaxLockout; i++ {
				wait *= 2
			}
			f.until = now.Add(min(wait, MaxLockout))
		}
	}
}

// forgetFailure makes room by forgetting the failures counted longest
// ago. g.mu is held.
func (g *gate) forgetFailure(now time.Time) {
	var oldest string
	var at time.Time
	for k, f := range g.fails {
		if oldest == "" || f.last.Before(at) {
			oldest, at = k, f.last
		}
	}
	delete(g.fails, oldest)
}

// succeeded forgets keys' failures.
func (g *gate) succeeded(keys []string) {
	g.loginsOK.Add(1)
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, k := range keys {
		delete(g.fails, k)
	}
}

// newSession starts a session of acc, taking over the caller's reference,
// and returns its id.
func (g *gate) newSession(acc *account) (string, error) {
	b := make([]byte, sessionIDBytes)
	if _, err := rand.Read(b); err != nil {
		g.release(acc)
		return "", err
	}
	id := hex.EncodeToString(b)
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.sessions) >= maxSessions {
		g.sweepLocked(now)
	}
	if len(g.sessions) >= maxSessions || acc.ctx.Err() != nil || g.closed {
		g.releaseLocked(acc)
		return "", errBusy
	}
	s := &session{acc: acc, created: now, used: now}
	s.ctx, s.cancel = context.WithCancel(acc.ctx)
	g.sessions[id] = s
	return id, nil
}

// session returns the live session id, marking it used.
func (g *gate) session(id string) *session {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.sessions[id]
	if s == nil {
		return nil
	}
	if g.expired(s, now) {
		g.endLocked(id, s)
		return nil
	}
	s.used = now
	return s
}

func (g *gate) expired(s *session, now time.Time) bool {
	return s.ctx.Err() != nil || now.Sub(s.used) >= g.cfg.SessionIdle || now.Sub(s.created) >= g.cfg.SessionMax
}

// endLocked ends session id. g.mu is held.
func (g *gate) endLocked(id string, s *session) {
	delete(g.sessions, id)
	s.cancel()
	g.releaseLocked(s.acc)
}

// logout ends session id, if it lives.
func (g *gate) logout(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s := g.sessions[id]; s != nil {
		g.endLocked(id, s)
	}
}

// credKey is the cache key of user's password: keyed by a secret made at
// start, so the cache holds nothing a password could be guessed from
// offline.
func (g *gate) credKey(user, password string) [32]byte {
	m := hmac.New(sha256.New, g.key)
	m.Write([]byte(user))
	m.Write([]byte{0})
	m.Write([]byte(password))
	var k [32]byte
	m.Sum(k[:0])
	return k
}

// credentials returns the account of a Basic or Bearer login, from the
// cache or else checked with the hub, holding a reference for the caller
// (a stream outlives the cache entry): the caller releases it.
func (g *gate) credentials(ctx context.Context, user, password, addr string) (*account, error) {
	k := g.credKey(user, password)
	now := g.now()
	g.mu.Lock()
	if c := g.creds[k]; c != nil {
		if c.expires.After(now) && c.acc.ctx.Err() == nil {
			c.acc.refs++
			g.mu.Unlock()
			return c.acc, nil
		}
		delete(g.creds, k)
		g.releaseLocked(c.acc)
	}
	g.mu.Unlock()
	acc, err := g.verify(ctx, user, password, addr) // the caller's reference
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if old := g.creds[k]; old != nil { // a concurrent request cached it
		delete(g.creds, k)
		g.releaseLocked(old.acc)
	}
	if len(g.creds) >= maxCredentials {
		g.sweepLocked(now)
	}
	if len(g.creds) < maxCredentials && !g.closed && acc.ctx.Err() == nil {
		acc.refs++ // the cache's
		g.creds[k] = &credential{acc: acc, expires: now.Add(g.cfg.CredentialCache)}
	}
	return acc, nil
}

// sweep ends expired sessions and cached credentials, and forgets
// failures whose lockout is long over.
func (g *gate) sweep() {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sweepLocked(now)
}

func (g *gate) sweepLocked(now time.Time) {
	for id, s := range g.sessions {
		if g.expired(s, now) {
			g.endLocked(id, s)
		}
	}
	for k, c := range g.creds {
		if !c.expires.After(now) || c.acc.ctx.Err() != nil {
			delete(g.creds, k)
			g.releaseLocked(c.acc)
		}
	}
	for k, f := range g.fails {
		if now.Sub(f.until) > MaxLockout && now.Sub(f.last) > MaxLockout {
			delete(g.fails, k)
		}
	}
}

// refresh reads acc's cameras again if they were read over permsTTL ago.
func (g *gate) refresh(ctx context.Context, acc *account) error {
	if time.Since(time.Unix(0, acc.checked.Load())) < permsTTL {
		return nil
	}
	return acc.readPerms(ctx)
}

// counts returns the sessions and users logged in.
func (g *gate) counts() (sessions, users int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.sessions), len(g.accounts)
}

// close ends every session and closes every user's connection.
func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	var conns []*nats.Conn
	for _, a := range g.accounts {
		conns = append(conns, a.nc)
	}
	for id, s := range g.sessions {
		s.cancel()
		delete(g.sessions, id)
	}
	clear(g.creds)
	g.mu.Unlock()
	for _, nc := range conns {
		nc.Close()
	}
}
