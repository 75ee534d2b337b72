// Package viewer shows camhub cameras: a live grid of their newest frames in
// one OpenCV window, and the camera list as a table.
//
// The grid is split so that everything but the window can be tested: a Feed
// receives frames from NATS and keeps only the newest of each camera (live,
// or rewound: from the hub's replay buffer through a replay.Player); a Grid
// decodes those at the size they are shown and draws them onto a canvas; a
// Viewer runs the window loop on a locked OS thread.
package viewer

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"gocv.io/x/gocv"

	"camhub/internal/camlist"
	"camhub/internal/natsconn"
	"camhub/internal/replay"
)

// Title is the window's title.
const Title = "camhub"

// DefaultRefresh is how often the window is redrawn and polled for keys.
const DefaultRefresh = 20 * time.Millisecond

// labelRefresh is how often labels (fps, age, no signal) are redrawn when
// no new frame arrived.
const labelRefresh = 250 * time.Millisecond

// noteFor is how long the grid shows what a rewind found different from
// what was asked (replay.Player.Note).
const noteFor = 10 * time.Second

// Config is the grid viewer's configuration.
type Config struct {
	// Cams are the cameras to show, in this order; empty: every camera
	// on the hub, sorted by id, adding cameras as they appear.
	Cams []string
	// WindowSize is the size of the canvas; DefaultSize if zero.
	WindowSize image.Point
	// Refresh is how often the window is redrawn; DefaultRefresh if zero.
	Refresh time.Duration
	// Rewind, if not zero, is the capture time to play the cameras from,
	// out of the hub's replay buffer, before carrying on live (see
	// Feed.Rewind). It needs Cams.
	Rewind time.Time
	// Speed is the playback speed of a rewind (1: real time, which stays
	// as far behind live as it started; faster catches up); 1 if zero.
	Speed float64
	// Tier pins the tier cameras are read at: TierAuto (by tile size, the
	// default if empty), TierMain or TierLo. See Grid.SetTier.
	Tier string
}

// Viewer is the grid window.
type Viewer struct {
	cfg  Config
	nc   *nats.Conn
	log  *slog.Logger
	feed *Feed
	grid *Grid
	url  string // the hub's URL, for "waiting for the hub"

	player *replay.Player // nil unless rewinding

	closeOnce sync.Once
}

// New subscribes to the cameras on nc (which may still be waiting for its
// server) and returns the viewer, ready to Run.
func New(cfg Config, nc *nats.Conn, log *slog.Logger) (*Viewer, error) {
	if cfg.WindowSize == (image.Point{}) {
		cfg.WindowSize = DefaultSize
	}
	if err := checkSize(cfg.WindowSize); err != nil {
		return nil, err
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.Speed == 0 {
		cfg.Speed = 1
	}
	feed, err := NewFeed(cfg.Cams)
	if err != nil {
		return nil, err
	}
	feed.SetLogger(log)
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	feed.UseBuffer(js)
	var player *replay.Player
	if !cfg.Rewind.IsZero() {
		if player, err = feed.Rewind(js, cfg.Rewind, cfg.Speed); err != nil {
			return nil, err
		}
	}
	if err := feed.Subscribe(nc); err != nil {
		feed.Close()
		return nil, err
	}
	v := &Viewer{cfg: cfg, nc: nc, log: log, feed: feed, player: player, url: natsconn.RedactURL(strings.Join(nc.Opts.Servers, ","))}
	v.grid = NewGrid(feed, image.Point(cfg.WindowSize), log)
	if cfg.Tier != "" {
		if err := v.grid.SetTier(cfg.Tier); err != nil {
			v.grid.Close()
			feed.Close()
			return nil, err
		}
	}
	return v, nil
}

// Run shows the grid until the user presses q or Esc, closes the window, or
// ctx is done. It must be called from the goroutine that owns the GUI — the
// main goroutine, locked to the main OS thread; it locks its thread itself
// while it runs. When rewinding, it also returns (with the error) if the
// replay buffer cannot be read.
func (v *Viewer) Run(ctx context.Context) error {
	if err := CheckDisplay(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { v.seed(ctx) })
	var playErr error // set before cancel, read after wg.Wait
	if v.player != nil {
		v.log.Info("rewinding", "cams", strings.Join(v.cfg.Cams, ","), "from", v.cfg.Rewind.Format(time.RFC3339Nano),
			"behind", time.Since(v.cfg.Rewind).Round(100*time.Millisecond), "speed", v.cfg.Speed)
		wg.Go(func() {
			if err := v.player.Run(ctx); err != nil {
				playErr = fmt.Errorf("rewind: %w", err)
				cancel(playErr)
			}
		})
	}
	err := v.loop(ctx)
	cancel(nil) // the loop is done: stop the goroutines and wait for them
	wg.Wait()
	if playErr != nil {
		return playErr
	}
	return err
}

// seed reads the hub's camera list once it can, so that offline cameras get
// "no signal" tiles, retrying while the hub is not up.
func (v *Viewer) seed(ctx context.Context) {
	js, err := jetstream.New(v.nc)
	if err != nil {
		v.log.Warn("no camera list", "error", err)
		return
	}
	backoff := natsconn.Backoff(500*time.Millisecond, 10*time.Second)
	warned := false
	for attempt := 1; ; attempt++ {
		if v.nc.IsConnected() {
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = v.feed.Seed(lctx, js)
			cancel()
			if err == nil {
				v.log.Debug("read the camera list", "cameras", len(v.feed.IDs()))
				return
			}
			if ctx.Err() != nil {
				return
			}
			if !warned || !errors.Is(err, camlist.ErrNoHub) {
				v.log.Warn("cannot read the camera list yet; retrying", "error", err)
			}
			warned = true
		}
		t := time.NewTimer(backoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// loop is the window loop. Qt's windows must be used from one OS thread.
func (v *Viewer) loop(ctx context.Context) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	w := gocv.NewWindow(Title)
	defer w.Close()
	// gocv opens a resizable window that scales the canvas to fit; one
	// that takes the canvas's size shows it pixel for pixel, sharp.
	w.SetWindowProperty(gocv.WindowPropertyAutosize, gocv.WindowAutosize)
	canvas := gocv.NewMat()
	defer canvas.Close()

	delay := max(1, int(v.cfg.Refresh/time.Millisecond))
	var drawn time.Time
	var noteUntil time.Time // when the rewind's note is no longer shown
	note := ""
	live := false
	for {
		if ctx.Err() != nil {
			v.log.Info("stopping", "reason", context.Cause(ctx))
			return nil
		}
		now := time.Now()
		if v.player != nil {
			if n := v.player.Note(); n != "" && note == "" {
				note, noteUntil = n, now.Add(noteFor)
				v.log.Warn("rewind note", "note", n)
			}
			if st := v.player.Stats(); st.Live && !live {
				live = true
				v.log.Info("rewind caught up: live", "frames_replayed", st.Delivered, "frames_skipped", st.Skipped)
			}
		}
		switch {
		case !v.nc.IsConnected():
			v.grid.SetNotice("waiting for the hub at " + v.url + " ...")
		case now.Before(noteUntil):
			v.grid.SetNotice(note)
		default:
			v.grid.SetNotice("")
		}
		if v.grid.Update(now) || now.Sub(drawn) >= labelRefresh {
			v.grid.RenderChanges(&canvas, now)
			w.IMShow(canvas)
			drawn = now
		}
		switch key := w.WaitKey(delay); key {
		case 'q', 'Q', 27:
			v.log.Info("stopping", "reason", "key pressed")
			return nil
		default:
			v.key(key)
		}
		if w.GetWindowProperty(gocv.WindowPropertyVisible) < 1 {
			v.log.Info("stopping", "reason", "window closed")
			return nil
		}
	}
}

// key handles the grid's keys: 1-9 shows that camera alone and 0 every
// camera again; t pins the next tier (auto, main, lo).
func (v *Viewer) key(k int) {
	switch {
	case k >= '1' && k <= '9':
		if ids := v.feed.IDs(); int(k-'1') < len(ids) {
			v.grid.SetSolo(ids[k-'1'])
		}
	case k == '0':
		v.grid.SetSolo("")
	case k == 't' || k == 'T':
		next := map[string]string{TierAuto: TierMain, TierMain: TierLo, TierLo: TierAuto}[v.grid.Tier()]
		_ = v.grid.SetTier(next)
		v.log.Info("tier pinned", "tier", next)
	}
}

// Stats returns the frame counts of every camera.
func (v *Viewer) Stats() []Stats { return v.grid.Stats() }

// Close unsubscribes and releases the grid. Call it after Run returned. It
// may be called more than once.
func (v *Viewer) Close() {
	v.closeOnce.Do(func() {
		v.feed.Close()
		var decoded, bad uint64
		for _, s := range v.grid.Stats() {
			decoded += s.Decoded
			bad += s.Bad
		}
		attrs := []any{"frames_shown", decoded, "bad_frames", bad, "bad_messages", v.feed.Bad()}
		if v.player != nil {
			st := v.player.Stats()
			attrs = append(attrs, "frames_played", st.Delivered, "frames_skipped", st.Skipped)
		}
		v.log.Info("viewer stopped", attrs...)
		v.grid.Close()
	})
}

// ErrNoDisplay is returned by CheckDisplay.
var ErrNoDisplay = errors.New("no display to open a window on")

// CheckDisplay checks that an X display is there to open the window on:
// Qt aborts the whole process when it finds none.
func CheckDisplay() error {
	if os.Getenv("QT_QPA_PLATFORM") != "" || os.Getenv("WAYLAND_DISPLAY") != "" {
		return nil // Qt is told where to draw
	}
	d := os.Getenv("DISPLAY")
	if d == "" {
		return fmt.Errorf("%w: DISPLAY is not set (run it in a desktop session, with ssh -X, or under Xvfb)", ErrNoDisplay)
	}
	// a local display ":N" or ":N.S" is a socket in /tmp/.X11-unix
	host, num, ok := strings.Cut(d, ":")
	if !ok || (host != "" && host != "unix") {
		return nil
	}
	num, _, _ = strings.Cut(num, ".")
	if _, err := strconv.Atoi(num); err != nil {
		return nil
	}
	if _, err := os.Stat("/tmp/.X11-unix/X" + num); err != nil {
		return fmt.Errorf("%w: DISPLAY=%s but no X server listens there", ErrNoDisplay, d)
	}
	return nil
}

// Window sizes: the default, and the smallest and largest the grid draws.
var (
	DefaultSize = image.Point{1280, 720}
	MinSize     = image.Point{160, 120}
	MaxSize     = image.Point{7680, 4320}
)

// checkSize checks that a window size is within MinSize and MaxSize.
func checkSize(s image.Point) error {
	if s.X < MinSize.X || s.Y < MinSize.Y || s.X > MaxSize.X || s.Y > MaxSize.Y {
		return fmt.Errorf("window size %dx%d: want between %dx%d and %dx%d", s.X, s.Y, MinSize.X, MinSize.Y, MaxSize.X, MaxSize.Y)
	}
	return nil
}
