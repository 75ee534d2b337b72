// Package ratelog logs what may happen per frame or per message without
// flooding the log: at most one line per key per interval, and the next
// line of a key says how many were suppressed. The counters a component
// keeps tell every event; the log tells that it happens.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// maxKeys bounds the keys remembered; past it the key logged longest ago
// is forgotten (its next line logs at once).
const maxKeys = 64

// Logger writes to an slog.Logger, rate-limited per key. It is safe for
// concurrent use. A nil *Logger logs nothing.
type Logger struct {
	log   *slog.Logger
	every time.Duration
	gap   time.Duration
	now   func() time.Time

	mu   sync.Mutex
	last time.Time // the last line of any key
	keys map[string]*key
}

type key struct {
	at         time.Time // the key's last line
	suppressed uint64    // lines of the key not logged since
}

// Option configures a Logger.
type Option func(*Logger)

// Gap makes lines of different keys at least d apart as well: a source that
// fails with a new error each time then logs once per d, not once per
// failure.
func Gap(d time.Duration) Option { return func(l *Logger) { l.gap = d } }

// New returns a logger that writes at most one line per key every interval
// to log.
func New(log *slog.Logger, every time.Duration, opts ...Option) *Logger {
	l := &Logger{log: log, every: every, now: time.Now, keys: make(map[string]*key)}
	for _, o := range opts {
		o(l)
	}
	return l
}

// Log writes msg with args at level unless a line of k was written less
// than the interval ago; then it only counts it. The line says how many of
// k's lines were suppressed before it ("suppressed", left out if none). It
// reports whether it wrote the line.
func (l *Logger) Log(level slog.Level, k, msg string, args ...any) bool {
	if l == nil {
		return false
	}
	n, ok := l.allow(k)
	if !ok {
		return false
	}
	if n > 0 {
		args = append(args[:len(args):len(args)], "suppressed", n)
	}
	l.log.Log(context.Background(), level, msg, args...)
	return true
}

// Warn is Log at slog.LevelWarn with msg as the key.
func (l *Logger) Warn(msg string, args ...any) bool {
	return l.Log(slog.LevelWarn, msg, msg, args...)
}

// allow reports whether a line of k may be written now, and how many were
// suppressed before it.
func (l *Logger) allow(k string) (uint64, bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.keys[k]
	if e != nil && now.Sub(e.at) < l.every || (l.gap > 0 && !l.last.IsZero() && now.Sub(l.last) < l.gap) {
		if e == nil {
			e = l.add(k)
		}
		e.suppressed++
		return 0, false
	}
	if e == nil {
		e = l.add(k)
	}
	n := e.suppressed
	e.at, e.suppressed, l.last = now, 0, now
	return n, true
}

// add remembers key k, forgetting the one logged longest ago if there are
// maxKeys.
func (l *Logger) add(k string) *key {
	if len(l.keys) >= maxKeys {
		var oldest string
		var at time.Time
		for name, e := range l.keys {
			if oldest == "" || e.at.Before(at) {
				oldest, at = name, e.at
			}
		}
		delete(l.keys, oldest)
	}
	e := &key{}
	l.keys[k] = e
	return e
}
