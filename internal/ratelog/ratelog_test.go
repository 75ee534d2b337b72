package ratelog

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// clocked returns a logger writing text lines to a buffer, on a clock the
// test moves.
func clocked(every time.Duration, opts ...Option) (*Logger, *bytes.Buffer, *time.Time) {
	var buf bytes.Buffer
	l := New(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})), every, opts...)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return now }
	return l, &buf, &now
}

func lines(buf *bytes.Buffer) []string {
	s := strings.TrimSpace(buf.String())
	buf.Reset()
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestOneLinePerKeyPerInterval(t *testing.T) {
	l, buf, now := clocked(time.Minute)
	if !l.Warn("bad frame", "camera", "front") {
		t.Fatal("the first line of a key was not written")
	}
	for range 5 {
		*now = now.Add(10 * time.Second)
		if l.Warn("bad frame", "camera", "back") {
			t.Fatal("a line within the interval was written")
		}
	}
	got := lines(buf)
	if len(got) != 1 || got[0] != `level=WARN msg="bad frame" camera=front` {
		t.Fatalf("got %q", got)
	}
	*now = now.Add(10 * time.Second) // a minute after the first line
	if !l.Warn("bad frame", "camera", "side") {
		t.Fatal("no line after the interval")
	}
	if got := lines(buf); len(got) != 1 || got[0] != `level=WARN msg="bad frame" camera=side suppressed=5` {
		t.Fatalf("got %q", got)
	}
	*now = now.Add(time.Hour)
	l.Warn("bad frame")
	if got := lines(buf); len(got) != 1 || strings.Contains(got[0], "suppressed") {
		t.Fatalf("a line after none were suppressed says some were: %q", got)
	}
}

// Unrelated warnings do not silence each other.
func TestKeysAreIndependent(t *testing.T) {
	l, buf, now := clocked(time.Minute)
	l.Warn("bad frame")
	*now = now.Add(time.Second)
	l.Warn("too many cameras")
	l.Log(slog.LevelInfo, "k", "keyed by k")
	l.Log(slog.LevelError, "k", "also keyed by k")
	got := lines(buf)
	want := []string{`level=WARN msg="bad frame"`, `level=WARN msg="too many cameras"`, `level=INFO msg="keyed by k"`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// With a gap, lines of different keys are at least the gap apart.
func TestGap(t *testing.T) {
	l, buf, now := clocked(time.Minute, Gap(10*time.Second))
	l.Warn("a")
	*now = now.Add(5 * time.Second)
	if l.Warn("b") {
		t.Fatal("b written within the gap")
	}
	*now = now.Add(5 * time.Second)
	if !l.Warn("b") {
		t.Fatal("b not written after the gap")
	}
	*now = now.Add(20 * time.Second)
	if l.Warn("a") {
		t.Fatal("a written twice within its interval")
	}
	if got := lines(buf); len(got) != 2 || got[1] != `level=WARN msg=b suppressed=1` {
		t.Fatalf("got %q", got)
	}
}

// The keys remembered are bounded: a stream of new keys does not grow the
// logger, and a forgotten key logs again at once.
func TestKeysBounded(t *testing.T) {
	l, buf, now := clocked(time.Hour)
	for i := range 3 * maxKeys {
		*now = now.Add(time.Millisecond)
		if !l.Warn(fmt.Sprint("error ", i)) {
			t.Fatalf("new key %d not written", i)
		}
	}
	if len(l.keys) != maxKeys {
		t.Fatalf("%d keys remembered, want %d", len(l.keys), maxKeys)
	}
	if !l.Warn("error 0") {
		t.Fatal("the key forgotten first is still suppressed")
	}
	if l.Warn(fmt.Sprint("error ", 3*maxKeys-1)) {
		t.Fatal("the newest key was forgotten")
	}
	if n := len(lines(buf)); n != 3*maxKeys+1 {
		t.Fatalf("%d lines", n)
	}
}

func TestNilLogsNothing(t *testing.T) {
	var l *Logger
	if l.Warn("x") {
		t.Fatal("a nil logger wrote")
	}
}

// Many goroutines share one logger (run with -race): one line in all.
func TestConcurrent(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	l := New(slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), nil)), time.Hour)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				l.Warn("busy")
			}
		})
	}
	wg.Wait()
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Fatalf("%d lines, want 1", n)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
