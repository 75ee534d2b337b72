package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/gopqueue"
	"camhub/internal/replay"
	"camhub/internal/wire"
)

// H.264 cameras. The page and MJPEG clients get JPEGs, so the server
// decodes an H.264 camera's access units and encodes its pictures as JPEG,
// with a decoder the program gives (Config.Video: this package needs no
// cgo) — only while someone watches the camera live, and at most
// Config.VideoFPS pictures a second; the JPEGs go on the live board like a
// JPEG camera's frames. While nobody watches, the camera's access units
// wait in a bounded queue (gopqueue) that keeps only the newest GOP, and
// nothing is decoded.

// DefaultVideoFPS is how many pictures a second the server encodes of an
// H.264 camera that someone watches.
const DefaultVideoFPS = 15

// videoJPEGQuality is the JPEG quality of the pictures of H.264 cameras.
const videoJPEGQuality = 80

// Limits of an H.264 camera's queue while nobody watches or the decoder is
// behind.
const (
	videoQueueAUs   = 300
	videoQueueBytes = 16 << 20
)

// catchUpTimeout bounds reading a camera's newest GOP from the buffer.
const catchUpTimeout = 5 * time.Second

// videoCam is one H.264 camera.
type videoCam struct {
	id   string
	q    *gopqueue.Queue
	wake chan struct{} // signalled (not closed) when an access unit comes

	// under Server.vmu
	stop context.CancelFunc // the running decoder's; nil if none
	// heard counts the access units the camera sends, decoded or not
	// (the live board has only the pictures decoded for someone
	// watching): the camera list's signal, frame age and rates.
	heard feed
}

// videoStats returns, for every H.264 camera, what it sent at now.
func (s *Server) videoStats(now time.Time) []feedStats {
	s.vmu.Lock()
	defer s.vmu.Unlock()
	out := make([]feedStats, 0, len(s.vids.cams))
	for _, c := range s.vids.cams {
		out = append(out, c.heard.stats(now))
	}
	return out
}

// videos is the server's H.264 cameras.
type videos struct {
	cams     map[string]*videoCam
	watch    map[string]int // live streams of each camera, sent H.264 yet or not
	watchAll int            // streams of every camera (the page without a list)
}

// watched reports whether someone watches camera id live. s.vmu is held.
func (v *videos) watched(id string) bool { return v.watchAll > 0 || v.watch[id] > 0 }

// isVideo reports whether camera id has sent H.264 to this server.
func (s *Server) isVideo(id string) bool {
	s.vmu.Lock()
	defer s.vmu.Unlock()
	return s.vids.cams[id] != nil
}

// watched reports whether someone watches camera id live.
func (s *Server) watched(id string) bool {
	s.vmu.Lock()
	defer s.vmu.Unlock()
	c := s.vids.cams[id]
	return c != nil && c.stop != nil
}

// onVideo takes one access unit. The payload is the message's own.
func (s *Server) onVideo(m *nats.Msg) {
	id, key, err := wire.ParseVideoSubject(m.Subject)
	if err != nil || !s.want(id) {
		return
	}
	a, err := parseAU(m, key)
	if err != nil {
		s.live.invalid(id)
		s.warn.Warn("ignoring a message that is not a camhub access unit", "camera", id, "error", err)
		return
	}
	c := s.videoCam(id)
	if c == nil {
		s.ignored.Add(1)
		s.warn.Warn("too many cameras: ignoring access units", "camera", id, "max", MaxCameras)
		return
	}
	s.vmu.Lock()
	c.heard.count(&frame{id: id, Frame: a.Frame, received: a.Stored}, len(a.Data))
	s.vmu.Unlock()
	s.pushMedia(id, a, false) // mse.go: the pages that decode H.264
	if c.q.Push(a) {
		if s.watched(id) && s.cfg.Video != nil {
			s.spawn(func() { s.catchUp(c) })
		} else {
			c.q.CaughtUp(nil) // nobody to show it to: wait for a keyframe
		}
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// parseAU checks m, an access unit whose subject says whether it is a
// keyframe (key), and returns it, received now. The payload is m's own.
func parseAU(m *nats.Msg, key bool) (replay.AU, error) {
	v, err := wire.ParseVideo(m.Header)
	if err == nil {
		err = wire.CheckLive(m)
	}
	if err == nil && (v.Key != key || len(m.Data) == 0) {
		err = fmt.Errorf("%w: an empty access unit, or %s does not match the subject", wire.ErrBadVideo, wire.HeaderKey)
	}
	return replay.AU{Video: v, Data: m.Data, Stored: time.Now()}, err
}

// videoCam returns camera id's state, adding it (and starting its decoder
// if every camera is watched) unless the server has MaxCameras already.
func (s *Server) videoCam(id string) *videoCam {
	s.vmu.Lock()
	defer s.vmu.Unlock()
	if c := s.vids.cams[id]; c != nil {
		return c
	}
	if len(s.vids.cams) >= MaxCameras {
		return nil
	}
	c := &videoCam{id: id, q: gopqueue.New(videoQueueAUs, videoQueueBytes), wake: make(chan struct{}, 1), heard: feed{id: id}}
	s.vids.cams[id] = c
	s.startDecoder(c)
	return c
}

// catchUp reads camera c's newest GOP from the buffer, so that a new
// watcher sees a picture at once.
func (s *Server) catchUp(c *videoCam) {
	ctx, cancel := context.WithTimeout(s.ctx, catchUpTimeout)
	defer cancel()
	gop, err := replay.NewestGOP(ctx, s.js, c.id)
	if err != nil && s.ctx.Err() == nil {
		s.warn.Warn("cannot start an H.264 camera from the replay buffer; waiting for its next keyframe", "camera", c.id, "error", err)
	}
	c.q.CaughtUp(gop)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// watch counts a live stream of cameras ids (nil: every camera) and starts
// the decoders of those that send H.264. The returned func ends it.
func (s *Server) watch(ids []string) func() {
	if s.cfg.Video == nil {
		return func() {}
	}
	s.vmu.Lock()
	defer s.vmu.Unlock()
	if ids == nil {
		s.vids.watchAll++
	}
	for _, id := range ids {
		s.vids.watch[id]++
	}
	for _, c := range s.vids.cams {
		s.startDecoder(c)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			s.vmu.Lock()
			defer s.vmu.Unlock()
			if ids == nil {
				s.vids.watchAll--
			}
			for _, id := range ids {
				if s.vids.watch[id]--; s.vids.watch[id] <= 0 {
					delete(s.vids.watch, id)
				}
			}
			for _, c := range s.vids.cams {
				if c.stop != nil && !s.vids.watched(c.id) {
					c.stop()
					c.stop = nil
				}
			}
		})
	}
}

// startDecoder starts camera c's decoder if someone watches it and it is
// not running. s.vmu is held.
func (s *Server) startDecoder(c *videoCam) {
	if c.stop != nil || s.cfg.Video == nil || !s.vids.watched(c.id) {
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	if !s.spawn(func() { s.decode(ctx, c) }) {
		cancel()
		return
	}
	c.stop = cancel
}

// decode decodes camera c's access units until ctx ends, putting a JPEG of
// its newest picture on the live board at most Config.VideoFPS times a
// second.
func (s *Server) decode(ctx context.Context, c *videoCam) {
	dec, err := s.cfg.Video()
	if err != nil {
		s.warn.Warn("cannot decode H.264", "camera", c.id, "error", err)
		return
	}
	defer dec.Close()
	c.q.Restart() // start at a keyframe: nothing was decoded meanwhile
	// decode what is queued at once
	select {
	case c.wake <- struct{}{}:
	default:
	}
	every := time.Second / time.Duration(s.cfg.VideoFPS)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var (
		last    time.Time // when a picture was last put on the board
		newest  *replay.AU
		dirty   bool // a picture decoded but not yet encoded
		buf     []byte
		waiting bool // the timer runs
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-timer.C:
			waiting = false
		}
		aus, _ := c.q.Take()
		for i := range aus {
			ok, err := dec.Decode(aus[i].Data)
			if err != nil && !ok {
				s.live.invalid(c.id)
				s.warn.Warn("skipping an access unit the decoder rejects", "camera", c.id, "error", err)
				continue
			}
			if ok {
				newest, dirty = &aus[i], true
			}
		}
		if !dirty {
			continue
		}
		if d := every - time.Since(last); d > 0 {
			if !waiting {
				timer.Reset(d)
				waiting = true
			}
			continue
		}
		buf, err = dec.JPEG(videoJPEGQuality, buf[:0])
		if err != nil {
			s.warn.Warn("cannot encode a picture", "camera", c.id, "error", err)
			continue
		}
		dirty, last = false, time.Now()
		f := newest.Frame
		if sz := dec.Size(); sz.X > 0 {
			f.Width, f.Height = sz.X, sz.Y
		}
		jpeg := append([]byte(nil), buf...) // the board keeps it
		if !s.live.put(&frame{id: c.id, Frame: f, jpeg: jpeg, received: newest.Stored}) {
			s.ignored.Add(1)
		}
	}
}

// snapshotOf returns the newest picture of camera id from the buffer, as a
// JPEG whatever its codec.
func (s *Server) snapshotOf(ctx context.Context, js jetstream.JetStream, id string) (replay.Frame, error) {
	f, err := replay.SnapshotJPEG(ctx, js, id, s.cfg.Video)
	if errors.Is(err, replay.ErrNoDecoder) {
		return f, fmt.Errorf("%w: this server was started without one", err)
	}
	return f, err
}

// rewindVideo plays H.264 camera id from the buffer onto board b for one
// rewinding stream (replay.PlayVideo), decoding every access unit and
// putting JPEGs of pictures captured at least 1/Config.VideoFPS × speed
// apart on b (at most about VideoFPS a second at the rewind's pace; by
// capture time, so that the newest picture is never held back), until
// ctx ends.
func (s *Server) rewindVideo(ctx context.Context, js jetstream.JetStream, b *board, id string, start, wall time.Time, speed float64, log *slog.Logger) {
	dec, err := s.cfg.Video()
	if err != nil {
		log.Warn("cannot decode H.264", "camera", id, "error", err)
		return
	}
	defer dec.Close()
	// 10% slack: capture times jitter
	every := time.Duration(float64(time.Second) / float64(s.cfg.VideoFPS) * speed * 0.9)
	var last time.Time // capture time of the picture last shown
	var buf []byte
	err = replay.PlayVideo(ctx, js, id, start, wall, speed, func(a replay.AU) {
		ok, err := dec.Decode(a.Data)
		if err != nil && !ok {
			b.invalid(id)
			return
		}
		if !ok || a.Preroll || (!last.IsZero() && a.Time.Sub(last) < every) {
			return
		}
		if buf, err = dec.JPEG(videoJPEGQuality, buf[:0]); err != nil {
			return
		}
		last = a.Time
		f := a.Frame
		if sz := dec.Size(); sz.X > 0 {
			f.Width, f.Height = sz.X, sz.Y
		}
		b.put(&frame{id: id, Frame: f, jpeg: append([]byte(nil), buf...), received: time.Now()})
	})
	if err != nil && ctx.Err() == nil {
		log.Warn("rewind of an H.264 camera stopped", "camera", id, "error", err)
	}
}
