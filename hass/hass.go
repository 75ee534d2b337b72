// Package hass makes camhub's cameras appear in Home Assistant through the
// hub's own MQTT listener (hub --mqtt), with no bridge: it publishes Home
// Assistant's MQTT discovery configs for every camera the hub knows (a
// motion binary_sensor on cams/<id>/motion, a frame-rate sensor on
// cams/<id>/status and a camera on cams/<id>/snapshot), and the snapshots
// themselves: a camera's newest JPEG every SnapshotEvery and when motion
// starts, never the frame stream.
//
// NATS publishers cannot retain MQTT messages, so the configs are published
// again whenever Home Assistant says it started (its birth message,
// homeassistant/status = online), and for a camera when it first reports.
// Everything goes through NATS alone; the package needs no cgo.
package hass

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/camlist"
	"camhub/internal/wire"
)

// Defaults.
const (
	DefaultSnapshotEvery = 10 * time.Second
	DefaultMaxCameras    = 1024
	// announceEvery bounds how often every config is published again,
	// however often Home Assistant's birth message comes.
	announceEvery = time.Second
	// thumbWait bounds the wait for an event's picture (H.264 cameras).
	thumbWait = 3 * time.Second
)

// Config is a publisher's configuration.
type Config struct {
	// SnapshotEvery is how often a JPEG camera's newest frame is
	// published on cams.<id>.snapshot (0: only when motion starts).
	SnapshotEvery time.Duration
	// MaxCameras bounds the cameras followed (0: DefaultMaxCameras).
	MaxCameras int
}

// Stats counts what a publisher did.
type Stats struct {
	Cameras   int
	Configs   uint64 // discovery configs published
	Announces uint64 // times every config was published (start, birth messages)
	Snapshots uint64 // snapshots published
}

// Publisher is a running discovery and snapshot publisher.
type Publisher struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	log *slog.Logger
	cfg Config

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	subs   []*nats.Subscription
	wake   chan struct{}

	mu       sync.Mutex
	cams     map[string]*camera
	announce bool              // every config is due
	fresh    []string          // cameras whose configs are due
	motion   map[string]string // camera → event whose snapshot is due

	configs, announces, snapshots atomic.Uint64
	closeOnce                     sync.Once
}

type camera struct {
	codec   string
	version string
	lastSeq uint64 // stream sequence of the newest snapshot published
}

// New returns a publisher working through nc, which it does not close.
func New(nc *nats.Conn, cfg Config, log *slog.Logger) (*Publisher, error) {
	if cfg.SnapshotEvery < 0 {
		return nil, errors.New("hass: snapshot interval must not be negative")
	}
	if cfg.SnapshotEvery > 0 && cfg.SnapshotEvery < time.Second {
		return nil, errors.New("hass: snapshot interval: at least 1s (it is a still picture, not a stream)")
	}
	if cfg.MaxCameras <= 0 {
		cfg.MaxCameras = DefaultMaxCameras
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Publisher{nc: nc, js: js, log: log, cfg: cfg, ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1),
		cams: map[string]*camera{}, motion: map[string]string{}, announce: true}, nil
}

// Start reads the camera list, publishes every camera's configs and keeps
// doing its work until Close.
func (p *Publisher) Start(ctx context.Context) error {
	for _, s := range []struct {
		subj string
		h    nats.MsgHandler
	}{{wire.AllStatus, p.onStatus}, {wire.HAStatus, p.onBirth}, {wire.AllMotion, p.onMotion}} {
		sub, err := p.nc.Subscribe(s.subj, s.h)
		if err != nil {
			p.Close()
			return err
		}
		p.subs = append(p.subs, sub)
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	cams, err := camlist.List(lctx, p.js, time.Now())
	cancel()
	if err != nil {
		p.log.Warn("home assistant: reading the camera list", "error", err)
	}
	p.mu.Lock()
	for _, c := range cams {
		p.addLocked(c.ID, c.Codec, c.Version)
	}
	p.mu.Unlock()
	p.poke()
	p.wg.Go(p.run)
	p.log.Info("home assistant discovery on", "prefix", wire.HAPrefix, "cameras", len(cams), "snapshot_every", p.cfg.SnapshotEvery)
	return nil
}

// Close stops the publisher and waits for it. It may be called more than
// once.
func (p *Publisher) Close() {
	p.closeOnce.Do(func() {
		for _, s := range p.subs {
			_ = s.Unsubscribe()
		}
		p.cancel()
		p.wg.Wait()
	})
}

// Stats returns the publisher's counters.
func (p *Publisher) Stats() Stats {
	p.mu.Lock()
	n := len(p.cams)
	p.mu.Unlock()
	return Stats{Cameras: n, Configs: p.configs.Load(), Announces: p.announces.Load(), Snapshots: p.snapshots.Load()}
}

func (p *Publisher) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// addLocked follows camera id; a new camera, or one whose codec changed,
// gets its configs published.
func (p *Publisher) addLocked(id, codec, ver string) {
	if codec == "" {
		codec = wire.CodecJPEG
	}
	c, ok := p.cams[id]
	if !ok {
		if len(p.cams) >= p.cfg.MaxCameras {
			return
		}
		c = &camera{}
		p.cams[id] = c
	}
	if !ok || c.codec != codec || c.version != ver {
		c.codec, c.version = codec, ver
		p.fresh = append(p.fresh, id)
	}
}

func (p *Publisher) onStatus(m *nats.Msg) {
	st, err := wire.ParseStatus(m.Subject, m.Data)
	if err != nil || wire.CheckLive(m) != nil {
		return
	}
	p.mu.Lock()
	n := len(p.fresh)
	p.addLocked(st.ID, st.Codec, st.Version)
	changed := len(p.fresh) != n
	p.mu.Unlock()
	if changed {
		p.poke()
	}
}

func (p *Publisher) onBirth(m *nats.Msg) {
	if string(m.Data) != "online" {
		return
	}
	p.mu.Lock()
	p.announce = true
	p.mu.Unlock()
	p.poke()
}

func (p *Publisher) onMotion(m *nats.Msg) {
	mo, err := wire.ParseMotion(m.Subject, m.Data)
	if err != nil || mo.State != wire.MotionOn {
		return
	}
	p.mu.Lock()
	if _, ok := p.cams[mo.Camera]; ok || len(p.motion) < p.cfg.MaxCameras {
		p.motion[mo.Camera] = mo.Event
	}
	p.mu.Unlock()
	p.poke()
}

// run does the publisher's work, one thing at a time, until Close.
func (p *Publisher) run() {
	var tick <-chan time.Time
	if p.cfg.SnapshotEvery > 0 {
		t := time.NewTicker(p.cfg.SnapshotEvery)
		defer t.Stop()
		tick = t.C
	}
	var lastAnnounce time.Time
	later := time.NewTimer(time.Hour) // for an announce that must wait
	later.Stop()
	defer later.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-tick:
			p.snapshots.Add(uint64(p.snapshotAll()))
			continue
		case <-p.wake:
		case <-later.C:
		}
		p.mu.Lock()
		all, fresh, motion := p.announce, p.fresh, p.motion
		if all && time.Since(lastAnnounce) < announceEvery {
			all = false // soon: the timer below
			later.Reset(announceEvery - time.Since(lastAnnounce))
		}
		if all {
			p.announce = false
			fresh = p.ids()
		}
		p.fresh, p.motion = nil, map[string]string{}
		p.mu.Unlock()

		if all {
			lastAnnounce = time.Now()
			p.announces.Add(1)
		}
		for _, id := range compact(fresh) {
			p.publishConfigs(id)
		}
		for id, eid := range motion {
			if p.snapshot(id, eid) {
				p.snapshots.Add(1)
			}
		}
	}
}

// ids lists the cameras followed, sorted; p.mu is held.
func (p *Publisher) ids() []string {
	ids := make([]string, 0, len(p.cams))
	for id := range p.cams {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func compact(ids []string) []string {
	seen := map[string]bool{}
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// publishConfigs publishes camera id's discovery configs.
func (p *Publisher) publishConfigs(id string) {
	p.mu.Lock()
	c, ok := p.cams[id]
	var cam camera
	if ok {
		cam = *c
	}
	p.mu.Unlock()
	if !ok {
		return
	}
	for _, d := range Configs(id, cam.codec, cam.version) {
		b, err := json.Marshal(d.Config)
		if err != nil {
			continue
		}
		if err := p.nc.Publish(d.Subject, b); err != nil {
			p.log.Warn("home assistant: publishing discovery", "camera", id, "error", err)
			return
		}
		p.configs.Add(1)
	}
}

// snapshotAll publishes the newest frame of every JPEG camera that has a
// new one; it returns how many it published.
func (p *Publisher) snapshotAll() int {
	p.mu.Lock()
	var ids []string
	for id, c := range p.cams {
		if c.codec == wire.CodecJPEG {
			ids = append(ids, id)
		}
	}
	p.mu.Unlock()
	n := 0
	for _, id := range ids {
		if p.ctx.Err() != nil {
			break
		}
		if p.snapshot(id, "") {
			n++
		}
	}
	return n
}

// snapshot publishes a picture of camera id: for a JPEG camera its newest
// frame, if it was not published already; for an H.264 camera the picture
// of event eid (none without an event).
func (p *Publisher) snapshot(id, eid string) bool {
	p.mu.Lock()
	c, ok := p.cams[id]
	codec, last := wire.CodecJPEG, uint64(0)
	if ok {
		codec, last = c.codec, c.lastSeq
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(p.ctx, thumbWait+5*time.Second)
	defer cancel()
	var m *jetstream.RawStreamMsg
	if codec == wire.CodecJPEG {
		m = p.last(ctx, wire.FramesStream, wire.FramesSubject(id))
		if m != nil && m.Sequence == last {
			return false
		}
	} else if eid != "" {
		m = p.thumb(ctx, eid, id)
	}
	if m == nil || !wire.LooksLikeJPEG(m.Data) {
		return false
	}
	msg := &nats.Msg{Subject: wire.SnapshotSubject(id), Data: m.Data, Header: nats.Header{}}
	msg.Header.Set(wire.HeaderContentType, wire.ContentTypeJPEG)
	for _, h := range []string{wire.HeaderTime, wire.HeaderWidth, wire.HeaderHeight} {
		if v := m.Header.Get(h); v != "" {
			msg.Header.Set(h, v)
		}
	}
	if err := p.nc.PublishMsg(msg); err != nil {
		return false
	}
	if codec == wire.CodecJPEG {
		p.mu.Lock()
		if c, ok := p.cams[id]; ok {
			c.lastSeq = m.Sequence
		}
		p.mu.Unlock()
	}
	return true
}

// last is the newest message on subject in stream, nil if none.
func (p *Publisher) last(ctx context.Context, stream, subject string) *jetstream.RawStreamMsg {
	st, err := p.js.Stream(ctx, stream)
	if err != nil {
		return nil
	}
	m, err := st.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		return nil
	}
	return m
}

// thumb is event eid's picture in CLIPS, waited for a little: the
// detector stores it just after the event starts.
func (p *Publisher) thumb(ctx context.Context, eid, id string) *jetstream.RawStreamMsg {
	subj := wire.ThumbSubject(eid, id)
	sub, err := p.nc.SubscribeSync(subj)
	if err != nil {
		return nil
	}
	defer func() { _ = sub.Unsubscribe() }()
	if m := p.last(ctx, wire.ClipsStream, subj); m != nil {
		return m
	}
	wctx, cancel := context.WithTimeout(ctx, thumbWait)
	defer cancel()
	m, err := sub.NextMsgWithContext(wctx)
	if err != nil {
		return nil
	}
	return &jetstream.RawStreamMsg{Subject: m.Subject, Header: m.Header, Data: m.Data}
}
