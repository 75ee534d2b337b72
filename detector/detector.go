//go:build cgo

// Package detector runs motion detection (package motion) on every camera
// of a hub and turns it into events and clips, over NATS alone: it reads
// the cameras' live frames (JPEG) or access units (H.264, decoded here),
// publishes cams.<id>.motion ON/OFF and cams.<id>.events (kept in the
// stream EVENTS), and copies each event's frames, from the pre-roll before
// it to the post-roll after it, from the replay buffer (CAMS) into the
// stream CLIPS with their original headers. See docs/PROTOCOL.md.
//
// It runs where decoding is cheap: inside the hub's process (cmd/hub, the
// default) or as its own process next to it; never on the cameras. Each
// camera is analysed at a bounded rate (Camera.FPS of capture time), on
// its newest frame: a detector that falls behind skips frames, counted,
// and never queues them.
package detector

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/motion"
	"camhub/internal/wire"
)

// DefaultMaxCameras bounds how many cameras one detector analyses.
const DefaultMaxCameras = 256

// Config is a detector's configuration.
type Config struct {
	// Defaults are every camera's settings, unless Cameras says otherwise.
	Defaults motion.Camera
	// Cameras holds per-camera settings.
	Cameras motion.CameraSettings
	// Only, if not empty, are the only cameras analysed (a detector
	// process sharing the cameras with others).
	Only []string
	// MaxCameras bounds the cameras analysed (0: DefaultMaxCameras).
	MaxCameras int
	// Snapshots, if positive, publishes an H.264 camera's picture on
	// cams.<id>.snapshot this often (snapshot.go).
	Snapshots time.Duration
}

// Stats counts what a detector did.
type Stats struct {
	Cameras  int    // cameras seen
	Analysed uint64 // pictures analysed
	Skipped  uint64 // frames not analysed because newer ones came first
	Bad      uint64 // messages that were not camhub frames, or did not decode
	Events   uint64 // events started
	Copied   uint64 // clip messages stored
	Thumbs   uint64 // event thumbnails stored
}

// Detector is a running motion detector.
type Detector struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	log *slog.Logger
	cfg Config

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	cams map[string]*camera
	subs []*nats.Subscription

	analysed, skipped, bad, events, copied, thumbs atomic.Uint64
	closeOnce                                      sync.Once
}

// New returns a detector reading and publishing through nc, which it does
// not close.
func New(nc *nats.Conn, cfg Config, log *slog.Logger) (*Detector, error) {
	if err := cfg.Defaults.Validate(); err != nil {
		return nil, err
	}
	for id, s := range cfg.Cameras {
		if _, err := s.Apply(cfg.Defaults); err != nil {
			return nil, fmt.Errorf("camera %q: %w", id, err)
		}
	}
	if err := wire.ValidateIDs(cfg.Only, 0); err != nil {
		return nil, err
	}
	if cfg.MaxCameras <= 0 {
		cfg.MaxCameras = DefaultMaxCameras
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Detector{nc: nc, js: js, log: log, cfg: cfg, ctx: ctx, cancel: cancel, cams: map[string]*camera{}}, nil
}

// Start subscribes to the cameras' frames and access units; the detector
// works until Close.
func (d *Detector) Start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, subj := range []string{wire.AllFrames, wire.AllVideo} {
		sub, err := d.nc.Subscribe(subj, d.onMsg)
		if err != nil {
			return err
		}
		// the newest frame wins: the client drops what it cannot hand over
		_ = sub.SetPendingLimits(1024, 64<<20)
		d.subs = append(d.subs, sub)
	}
	sub, err := d.nc.Subscribe(wire.AllStatus, d.onStatus) // testpattern.go
	if err != nil {
		return err
	}
	d.subs = append(d.subs, sub)
	d.log.Info("motion detector running", "fps", d.cfg.Defaults.FPS, "threshold", d.cfg.Defaults.Motion.Threshold,
		"min_area", d.cfg.Defaults.Motion.MinArea, "on_frames", d.cfg.Defaults.Motion.OnFrames,
		"off_delay", d.cfg.Defaults.Motion.OffDelay, "pre_roll", d.cfg.Defaults.PreRoll, "post_roll", d.cfg.Defaults.PostRoll,
		"per_camera", len(d.cfg.Cameras))
	return nil
}

// Run starts the detector and blocks until ctx ends, then closes it.
func (d *Detector) Run(ctx context.Context) error {
	if err := d.Start(); err != nil {
		d.Close()
		return err
	}
	select {
	case <-ctx.Done():
	case <-d.ctx.Done():
	}
	d.Close()
	return nil
}

// Close stops the detector and waits for it: analysis stops, clips being
// copied stop where they are (a detector started later carries them on).
// It may be called more than once.
func (d *Detector) Close() {
	d.closeOnce.Do(func() {
		d.mu.Lock()
		for _, s := range d.subs {
			_ = s.Unsubscribe()
		}
		d.subs = nil
		d.mu.Unlock()
		d.cancel()
		d.wg.Wait()
	})
}

// Stats returns the detector's counters.
func (d *Detector) Stats() Stats {
	d.mu.Lock()
	n := len(d.cams)
	d.mu.Unlock()
	return Stats{Cameras: n, Analysed: d.analysed.Load(), Skipped: d.skipped.Load(), Bad: d.bad.Load(),
		Events: d.events.Load(), Copied: d.copied.Load(), Thumbs: d.thumbs.Load()}
}

// settings returns camera id's settings.
func (d *Detector) settings(id string) motion.Camera {
	c := d.cfg.Defaults
	if s, ok := d.cfg.Cameras[id]; ok {
		c, _ = s.Apply(c) // checked in New
	}
	if len(d.cfg.Only) > 0 {
		found := false
		for _, o := range d.cfg.Only {
			found = found || o == id
		}
		c.Enabled = c.Enabled && found
	}
	return c
}

// onMsg takes a live frame or access unit of any camera.
func (d *Detector) onMsg(m *nats.Msg) {
	if wire.CheckLive(m) != nil {
		d.bad.Add(1)
		return
	}
	var id string
	var video bool
	if vid, _, err := wire.ParseVideoSubject(m.Subject); err == nil {
		id, video = vid, true
	} else if fid, kind, err := wire.ParseSubject(m.Subject); err == nil && kind == wire.KindFrames {
		id = fid
	} else {
		d.bad.Add(1)
		return
	}
	c := d.camera(id)
	if c == nil {
		return
	}
	if video {
		c.pushVideo(m)
	} else {
		c.pushJPEG(m)
	}
}

// camera returns camera id's state, starting its goroutine the first time;
// nil if it is not analysed.
func (d *Detector) camera(id string) *camera {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c, ok := d.cams[id]; ok {
		if !c.set.Enabled {
			return nil
		}
		return c
	}
	if d.ctx.Err() != nil {
		return nil
	}
	if len(d.cams) >= d.cfg.MaxCameras {
		d.skipped.Add(1)
		return nil
	}
	c := newCamera(d, id, d.settings(id))
	d.cams[id] = c
	if !c.set.Enabled {
		d.log.Info("motion detection off", "camera", id)
		return nil
	}
	d.wg.Go(func() { c.run(d.ctx) })
	return c
}

// publishMotion says motion started or ended (not stored: the event is).
func (d *Detector) publishMotion(m wire.Motion) {
	b, _ := json.Marshal(m)
	if err := d.nc.Publish(wire.MotionSubject(m.Camera), b); err != nil {
		d.log.Warn("publishing motion", "camera", m.Camera, "error", err)
	}
}

// publishEvent stores ev in EVENTS under message id msgID.
func (d *Detector) publishEvent(ctx context.Context, ev *wire.Event, msgID string) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: wire.EventsSubject(ev.Camera), Data: b, Header: nats.Header{}}
	msg.Header.Set(wire.HeaderMsgID, msgID)
	msg.Header.Set(wire.HeaderContentType, "application/json")
	for attempt := 0; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = d.js.PublishMsg(pctx, msg)
		cancel()
		if err == nil || ctx.Err() != nil || attempt == 4 {
			break
		}
		select { // the hub may be starting: back off
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("storing event %s in %s: %w", ev.ID, wire.EventsStream, err)
	}
	return nil
}
