package agent

import (
	"context"
	"fmt"
	"image"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"gocv.io/x/gocv"

	"camhub/internal/h264"
	"camhub/internal/natsconn"
	"camhub/internal/ratelog"
	"camhub/internal/rtsp"
	"camhub/internal/wire"
)

// The small tier (docs/PROTOCOL.md, "The small tier"): a second, smaller
// stream of the same camera on cams.<id>.lo.…, for grids of small tiles.
//
//   - From a captured source (a V4L2 camera, a file, a pipeline, the test
//     pattern): the frame the main tier was made from is scaled down once
//     more and encoded, as JPEG or as H.264 (libavcodec, as the main
//     tier's --codec h264: the same encoder defaults, a keyframe with its
//     SPS and PPS every second), on the capture goroutine, after the main
//     tier's frame has been handed on.
//   - From Config.LoSource, an RTSP camera's sub-stream: its H.264 passed
//     through as the main tier's is, by a goroutine of its own.
//
// The small tier has its own Frame-Seq, mailbox (JPEG) or queue (H.264,
// which drops whole GOPs), publisher and counters: a slow link drops its
// frames apart from the main tier's, and it never holds a main frame back.

// LoSize bounds of Config.LoWidth and LoHeight.
const (
	// DefaultLoWidth and DefaultLoHeight are the small tier's size when
	// only its codec or rate is given.
	DefaultLoWidth  = 320
	DefaultLoHeight = 180
	// DefaultLoQuality is the small tier's JPEG quality: tiles are small,
	// so artefacts are too.
	DefaultLoQuality = 70
)

// LoStats counts the small tier's frames, as Stats counts the main one's.
type LoStats struct {
	Frames   uint64 // frames due, each given the next small-tier Frame-Seq
	Sent     uint64 // frames published
	Bytes    uint64 // bytes published
	Dropped  uint64 // given a Frame-Seq, not published
	Replaced uint64 // replaced in the mailbox or queue by a newer frame
	// GOPsDropped counts, for an H.264 small tier, the times the rest of
	// a GOP was dropped: the queue was full or a publish failed.
	GOPsDropped uint64
	// Encode is the time the capture goroutine spent scaling and encoding
	// the small tier, in all.
	Encode time.Duration
}

// loTier is the small tier of an agent.
type loTier struct {
	a      *Agent
	codec  string // wire.CodecJPEG or wire.CodecH264
	w, h   int    // the configured bound
	period time.Duration
	src    string // LoSource, passed through; empty: encoded from the capture

	// capture goroutine only
	gate pacer
	seq  uint64
	enc  *encoder      // JPEG
	venc *videoEncoder // H.264
	pre  gocv.Mat      // the frame at twice the small size, see shrink

	box *mailbox    // JPEG frames to the publisher
	vq  *h264.Queue // access units to the publisher
	// needKey asks venc for a keyframe: access units were dropped.
	needKey atomic.Bool

	st          counters // frames, sent, bytes, dropped, replaced, publishFailed
	encodeNanos atomic.Int64
	mu          sync.Mutex
	width       int // of the last frame sent
	height      int
	rate        *rateMeter // the reporter's only
}

func newLoTier(a *Agent) *loTier {
	c := a.cfg
	l := &loTier{a: a, codec: c.LoCodec, w: c.LoWidth, h: c.LoHeight, src: c.LoSource, rate: newRateMeter(time.Now())}
	l.period = time.Duration(float64(time.Second) / c.LoFPS)
	l.gate = pacer{period: l.period}
	if l.codec == CodecH264 {
		l.vq = h264.NewQueue(videoQueue)
	} else {
		l.box = newMailbox()
	}
	return l
}

// encoded reports whether the small tier is encoded from the captured
// frames, on the capture goroutine (else it is LoSource's).
func (l *loTier) encoded() bool { return l.src == "" }

// sink is the small tier's videoSink.
func (l *loTier) sink() videoSink {
	return videoSink{q: l.vq, st: &l.st, seq: &l.seq, needKey: &l.needKey}
}

// stats returns the small tier's counters.
func (l *loTier) stats() LoStats {
	return LoStats{
		Frames: l.st.frames.Load(), Sent: l.st.sent.Load(), Bytes: l.st.bytes.Load(),
		Dropped: l.st.dropped.Load(), Replaced: l.st.replaced.Load(), GOPsDropped: l.st.gopsDropped.Load(),
		Encode: time.Duration(l.encodeNanos.Load()),
	}
}

// status is the small tier's part of a status report.
func (l *loTier) status(now time.Time) *wire.Tier {
	st := l.stats()
	l.mu.Lock()
	w, h := l.width, l.height
	l.mu.Unlock()
	if w == 0 && l.src == "" { // nothing sent yet: what it will be at most
		w, h = l.w, l.h
	}
	return &wire.Tier{
		Codec: l.codec, Width: w, Height: h, FPS: l.rate.update(now, st.Sent),
		FramesSent: st.Sent, FramesDropped: st.Dropped, BytesSent: st.Bytes,
	}
}

// deliver makes the small tier's frame of img, captured at t, if one is
// due. It runs on the capture goroutine after the main tier's frame was
// handed on; enc is made at the first frame.
func (l *loTier) deliver(img gocv.Mat, t time.Time) {
	if !l.gate.due(t.Sub(l.a.started)) {
		return
	}
	start := time.Now()
	defer func() { l.encodeNanos.Add(int64(time.Since(start))) }()
	if l.vq != nil {
		if l.venc == nil {
			l.venc = l.newVideoEncoder()
		}
		l.venc.encode(l.shrink(img), t)
		return
	}
	if l.enc == nil {
		l.enc = newEncoder(l.w, l.h, l.a.cfg.LoQuality, l.a.payloadLimit, &l.st, l.a.log.With("tier", wire.TierLo))
	}
	l.seq++
	l.st.frames.Store(l.seq)
	f := l.box.get()
	if !l.enc.encode(l.shrink(img), f) {
		l.box.recycle(f)
		return
	}
	f.seq, f.time = l.seq, t
	if l.box.put(f) {
		l.st.replaced.Add(1)
		l.st.dropped.Add(1)
	}
}

// newVideoEncoder returns the small tier's H.264 encoder: libx264's
// default quality (no bitrate), the main tier's encoder choice.
func (l *loTier) newVideoEncoder() *videoEncoder {
	log := l.a.log.With("tier", wire.TierLo)
	return &videoEncoder{a: l.a, out: l.sink(), maxW: l.w, maxH: l.h, fps: l.a.cfg.LoFPS,
		log: log, warn: ratelog.New(log, time.Minute), fitted: gocv.NewMat(), bgr: gocv.NewMat()}
}

// shrink returns img, or img scaled bilinearly to twice the small tier's
// fitted size when it is larger than that: the encoder's area averaging
// then halves it, which OpenCV does several times faster than averaging
// at a ratio that is not a whole number (measured: BenchmarkLoTier).
func (l *loTier) shrink(img gocv.Mat) gocv.Mat {
	w, h := fitSize(img.Cols(), img.Rows(), l.w, l.h)
	if img.Cols() <= 2*w || img.Rows() <= 2*h {
		return img
	}
	if l.pre.Ptr() == nil {
		l.pre = gocv.NewMat()
	}
	gocv.Resize(img, &l.pre, image.Pt(2*w, 2*h), 0, 0, gocv.InterpolationLinear)
	return l.pre
}

// close frees the encoders; the capture goroutine calls it as it ends.
func (l *loTier) close() {
	if l.pre.Ptr() != nil {
		l.pre.Close()
	}
	if l.box != nil {
		l.box.close()
	}
	if l.enc != nil {
		l.enc.close()
		l.enc = nil
	}
	if l.venc != nil {
		l.venc.close()
		l.venc = nil
	}
	if l.vq != nil {
		l.vq.Close(errCaptureEnded)
	}
}

// publish sends the small tier's JPEG frames until the mailbox is closed
// and empty or ctx is done.
func (l *loTier) publish(ctx context.Context) {
	msg := &nats.Msg{Subject: wire.LoFramesSubject(l.a.cfg.ID), Header: make(nats.Header, 5)}
	for {
		f, ok := l.box.take(ctx)
		if !ok {
			return
		}
		wire.Frame{Seq: f.seq, Time: f.time, Width: f.width, Height: f.height}.SetHeader(msg.Header)
		msg.Data = f.data
		err := l.a.nc.PublishMsg(msg)
		msg.Data = nil
		if err != nil {
			l.st.publishFailed.Add(1)
			l.st.dropped.Add(1)
		} else {
			l.st.sent.Add(1)
			l.st.bytes.Add(uint64(len(f.data)))
			l.mu.Lock()
			l.width, l.height = f.width, f.height
			l.mu.Unlock()
		}
		l.box.recycle(f)
	}
}

// drain counts what was left waiting when Run stopped.
func (l *loTier) drain() {
	if l.box != nil && l.box.drain() {
		l.st.dropped.Add(1)
	}
	if l.vq != nil {
		l.vq.Close(errCaptureEnded)
		for l.vq.Len() > 0 {
			l.vq.Pop(context.Background())
			l.st.dropped.Add(1)
		}
	}
}

// capturePassthrough reads LoSource, reopening it with backoff, and queues
// its access units with the small tier's Frame-Seq until ctx is done. A
// failing sub-stream is logged (rarely) but does not change the camera's
// state: the main tier says how the camera is.
func (l *loTier) capturePassthrough(ctx context.Context) {
	defer l.vq.Close(errCaptureEnded)
	a := l.a
	backoff := a.backoffMin
	for {
		n, err := l.passSession(ctx)
		if ctx.Err() != nil {
			return
		}
		if n > 0 {
			backoff = a.backoffMin
		}
		a.srcWarn.Log(slog.LevelWarn, "lo:"+err.Error(), "small tier's source failed; reopening it with backoff",
			"error", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, a.backoffMax)
	}
}

func (l *loTier) passSession(ctx context.Context) (int, error) {
	a := l.a
	src, err := rtsp.Open(ctx, l.src, rtsp.Options{
		OpenTimeout: a.cfg.OpenTimeout, ReadTimeout: a.cfg.OpenTimeout, Logger: a.log.With("tier", wire.TierLo),
	})
	if err != nil {
		return 0, err
	}
	defer src.Close()
	n := 0
	for {
		au, err := src.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return n, nil
			}
			return n, err
		}
		n++
		l.sink().push(au)
	}
}

// publishVideo sends the small tier's access units, dropping the rest of
// a GOP after a failed publish (and asking the encoder, if there is one,
// for a keyframe), until the queue is closed and empty or ctx is done.
func (l *loTier) publishVideo(ctx context.Context) {
	msg := &nats.Msg{Header: make(nats.Header, 9)}
	skip := false
	for {
		au, err := l.vq.Pop(ctx)
		if err != nil {
			return
		}
		if skip && !au.Key {
			l.st.dropped.Add(1)
			if l.a.nc.IsConnected() {
				l.needKey.Store(true)
			}
			continue
		}
		wire.Video{
			Frame: wire.Frame{Seq: au.Seq, Time: au.Time, Width: au.Width, Height: au.Height},
			Codec: au.Codec, Key: au.Key, PTS: au.PTS, DTS: au.DTS,
		}.SetHeader(msg.Header)
		msg.Subject = wire.LoVideoSubject(l.a.cfg.ID, au.Key)
		msg.Data = au.Data
		err = l.a.nc.PublishMsg(msg)
		msg.Data = nil
		if err != nil {
			l.st.publishFailed.Add(1)
			l.st.dropped.Add(1)
			if !skip {
				l.st.gopsDropped.Add(1)
				l.needKey.Store(true)
			}
			skip = true
			continue
		}
		skip = false
		l.st.sent.Add(1)
		l.st.bytes.Add(uint64(len(au.Data)))
		l.mu.Lock()
		l.width, l.height = au.Width, au.Height
		l.mu.Unlock()
	}
}

// validateLo checks the small tier's settings of c (with defaults).
func (c Config) validateLo(src Source) error {
	if !c.loOn() {
		return nil
	}
	if c.LoSource != "" {
		if !isRTSP(c.LoSource) {
			return fmt.Errorf("%w: lo-source %q: want an rtsp:// or rtsps:// URL (the camera's sub-stream)", ErrConfig, natsconn.RedactURL(c.LoSource))
		}
		if c.LoCodec != CodecH264 {
			return fmt.Errorf("%w: lo-source: the sub-stream's H.264 is passed through: lo-codec must be %s", ErrConfig, CodecH264)
		}
		if c.LoWidth != 0 || c.LoHeight != 0 {
			return fmt.Errorf("%w: lo-size does not apply to lo-source: the sub-stream comes at the camera's size", ErrConfig)
		}
		return nil
	}
	if passthrough(c.Codec, src) {
		return fmt.Errorf("%w: lo-size: the camera's H.264 is passed through, so there is no captured frame to make a small tier of; give its sub-stream with lo-source", ErrConfig)
	}
	if c.LoCodec != CodecJPEG && c.LoCodec != CodecH264 {
		return fmt.Errorf("%w: lo-codec %q: want %s or %s", ErrConfig, c.LoCodec, CodecJPEG, CodecH264)
	}
	if c.LoWidth < MinSide || c.LoWidth > MaxSide || c.LoHeight < MinSide || c.LoHeight > MaxSide {
		return fmt.Errorf("%w: lo-size %dx%d: want width and height from %d to %d", ErrConfig, c.LoWidth, c.LoHeight, MinSide, MaxSide)
	}
	if c.LoWidth*2 > c.Width || c.LoHeight*2 > c.Height {
		return fmt.Errorf("%w: lo-size %dx%d: at most half the size %dx%d in each dimension, or it is no smaller tier", ErrConfig, c.LoWidth, c.LoHeight, c.Width, c.Height)
	}
	if !(c.LoFPS >= MinFPS && c.LoFPS <= c.FPS) {
		return fmt.Errorf("%w: lo-fps %v: want %v to fps (%v)", ErrConfig, c.LoFPS, MinFPS, c.FPS)
	}
	if c.LoQuality < 1 || c.LoQuality > 100 {
		return fmt.Errorf("%w: lo-quality %d: want 1 to 100", ErrConfig, c.LoQuality)
	}
	return nil
}

// loOn reports whether c asks for a small tier.
func (c Config) loOn() bool {
	return c.LoSource != "" || c.LoWidth != 0 || c.LoHeight != 0 || c.LoCodec != "" || c.LoFPS != 0
}

// loDefaults fills in the small tier's unset settings, if it has one.
func (c Config) loDefaults() Config {
	if !c.loOn() {
		return c
	}
	if c.LoCodec == "" {
		c.LoCodec = CodecJPEG
		if c.LoSource != "" {
			c.LoCodec = CodecH264
		}
	}
	if c.LoSource == "" && c.LoWidth == 0 && c.LoHeight == 0 {
		c.LoWidth, c.LoHeight = DefaultLoWidth, DefaultLoHeight
	}
	if c.LoFPS == 0 {
		c.LoFPS = c.FPS
	}
	if c.LoQuality == 0 {
		c.LoQuality = DefaultLoQuality
	}
	return c
}
