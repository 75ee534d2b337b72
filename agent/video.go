package agent

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"gocv.io/x/gocv"

	"camhub/internal/avcodec"
	"camhub/internal/h264"
	"camhub/internal/ratelog"
	"camhub/internal/wire"
)

// videoQueue is how many access units wait between capture and the
// publisher with --codec h264: about half a second at 15 fps. When the
// publisher falls further behind, h264.Queue drops what waits and the rest
// of that GOP (newest wins, by the GOP), and the encoder is asked for a
// keyframe to resume at once.
const videoQueue = 8

// errCaptureEnded closes the video queue when the capture goroutine ends.
var errCaptureEnded = errors.New("capture ended")

// videoSink is one tier's way from its H.264 encoder or source to its
// publisher: the tier's Frame-Seq, counters and queue. Its methods belong
// to the goroutine that captures the tier.
type videoSink struct {
	q   *h264.Queue
	st  *counters
	seq *uint64 // the last Frame-Seq given
	// needKey asks the tier's encoder (if it has one) for a keyframe:
	// access units were dropped.
	needKey *atomic.Bool
}

// next gives an access unit, or a frame that will not be sent, the next
// Frame-Seq.
func (s videoSink) next() uint64 {
	*s.seq++
	s.st.frames.Store(*s.seq)
	return *s.seq
}

// dropFrame gives a frame that will not be sent a Frame-Seq, and counts
// it dropped: the gap shows it.
func (s videoSink) dropFrame() {
	s.next()
	s.st.dropped.Add(1)
}

// push gives au the next Frame-Seq and leaves it for the publisher. The
// queue drops whole GOPs when the publisher falls behind; then the encoder
// is asked for a keyframe, so the stream resumes with the next frame.
func (s videoSink) push(au h264.AccessUnit) {
	au.Seq = s.next()
	before := s.q.Stats()
	s.q.Push(au)
	after := s.q.Stats()
	if n := after.Dropped + after.Skipped - before.Dropped - before.Skipped; n > 0 {
		s.st.dropped.Add(n)
		s.st.replaced.Add(n)
	}
	if after.Cuts > before.Cuts {
		s.st.gopsDropped.Add(after.Cuts - before.Cuts)
		s.needKey.Store(true)
	}
}

// videoEncoder scales frames to fit a tier's size and encodes them as
// H.264 with libavcodec. It belongs to the capture goroutine; close frees
// its encoder and Mats. The encoder is opened at the first frame and again
// when the frame size changes.
type videoEncoder struct {
	a      *Agent
	out    videoSink
	maxW   int // the tier's size bound
	maxH   int
	fps    float64
	rate   int // bit/s; 0: libx264's default quality
	log    *slog.Logger
	warn   *ratelog.Logger
	enc    *avcodec.Encoder // nil until the first frame, or after a failure
	codec  string           // RFC 6381, from the encoder's first keyframe
	fitted gocv.Mat         // the frame scaled to fit the size, even sides
	scaled bool             // fitted holds the last frame
	bgr    gocv.Mat         // a grey or BGRA frame as BGR
	logged bool             // the encoder's name was logged at Info
	retry  time.Time        // after opening failed, when to try again
}

// newVideoEncoder returns the main tier's encoder.
func newVideoEncoder(a *Agent) *videoEncoder {
	c := a.cfg
	return &videoEncoder{a: a, out: a.sink(), maxW: c.Width, maxH: c.Height, fps: c.FPS, rate: c.Bitrate,
		log: a.log, warn: a.warn, fitted: gocv.NewMat(), bgr: gocv.NewMat()}
}

func (v *videoEncoder) close() {
	if v.enc != nil {
		v.enc.Close()
		v.enc = nil
	}
	v.fitted.Close()
	v.bgr.Close()
}

// open opens an encoder for w x h frames, closing the one before.
func (v *videoEncoder) open(w, h int) error {
	if v.enc != nil {
		v.enc.Close()
		v.enc = nil
	}
	enc, err := avcodec.NewEncoder(avcodec.EncoderConfig{
		Width: w, Height: h, FPS: v.fps, Bitrate: v.rate, Codec: v.a.cfg.Encoder,
	})
	if err != nil {
		return err
	}
	v.enc, v.codec = enc, ""
	msg := "H.264 encoder opened"
	args := []any{"encoder", enc.Name(), "size", fmt.Sprintf("%dx%d", w, h), "bitrate", v.rate}
	if v.rate == 0 {
		args = append(args, "crf", enc.Config().CRF)
	}
	if !v.logged {
		v.log.Info(msg, args...)
		v.logged = true
	} else {
		v.log.Debug(msg, args...)
	}
	return nil
}

// encode encodes img, captured at t, and pushes its access units (with a
// hardware encoder, perhaps those of earlier frames) to the video queue.
func (v *videoEncoder) encode(img gocv.Mat, t time.Time) {
	a := v.a
	src := img
	switch img.Channels() {
	case 1:
		gocv.CvtColor(img, &v.bgr, gocv.ColorGrayToBGR)
		src = v.bgr
	case 4:
		gocv.CvtColor(img, &v.bgr, gocv.ColorBGRAToBGR)
		src = v.bgr
	}
	w, h := fitSize(src.Cols(), src.Rows(), v.maxW, v.maxH)
	w, h = max(2, w&^1), max(2, h&^1) // H.264 in 4:2:0 wants even sides
	v.scaled = w != src.Cols() || h != src.Rows()
	if v.scaled {
		gocv.Resize(src, &v.fitted, image.Pt(w, h), 0, 0, gocv.InterpolationArea)
		src = v.fitted
	}
	if v.enc == nil || v.enc.Config().Width != w || v.enc.Config().Height != h {
		if t.Before(v.retry) { // opening failed a moment ago
			v.out.dropFrame()
			return
		}
		if err := v.open(w, h); err != nil {
			v.retry = t.Add(time.Second)
			v.out.dropFrame()
			v.warn.Warn("opening the H.264 encoder failed; dropping frames and trying again every second", "error", err)
			return
		}
	}
	if v.out.needKey.Swap(false) {
		v.enc.ForceKeyframe()
	}
	pkts, err := v.enc.Encode(src, t.Sub(a.started))
	if err != nil {
		v.out.dropFrame()
		v.out.needKey.Store(true)
		v.warn.Warn("H.264 encoding failed; dropping the frame", "error", err,
			"width", src.Cols(), "height", src.Rows(), "type", src.Type().String())
		return
	}
	// Frame-Seq is per access unit: a hardware encoder may give a
	// picture's packet with a later picture, or two at once.
	for _, p := range pkts {
		if p.Key || v.codec == "" {
			if c, err := codecOf(p.Data); err == nil {
				v.codec = c
			}
		}
		if v.codec == "" { // cannot happen: the first packet is a keyframe with its SPS
			v.out.dropFrame()
			v.out.needKey.Store(true)
			continue
		}
		v.out.push(h264.AccessUnit{
			Data: p.Data, Key: p.Key,
			PTS: ticks(p.PTS), DTS: ticks(p.DTS), Time: a.started.Add(p.PTS),
			Codec: v.codec, Width: w, Height: h,
		})
	}
}

// codecOf is the RFC 6381 codec string of the SPS in access unit au.
func codecOf(au []byte) (string, error) {
	sps, _, err := h264.Params(au)
	if err != nil {
		return "", err
	}
	return h264.CodecString(sps)
}

// ticks converts d to 90 kHz ticks.
func ticks(d time.Duration) int64 {
	return int64(d / time.Microsecond * wire.VideoClockRate / 1e6)
}

// sink is the main tier's videoSink.
func (a *Agent) sink() videoSink {
	return videoSink{q: a.vq, st: &a.st, seq: &a.seq, needKey: &a.needKey}
}

// publishVideo sends the access units capture leaves in the video queue,
// until the queue is closed and empty or ctx is done. After an access
// unit fails to publish, deltas are dropped up to the next keyframe that
// is sent (they refer to what was lost), and the encoder is asked for one,
// again each time a delta is dropped while connected.
func (a *Agent) publishVideo(ctx context.Context) {
	msg := &nats.Msg{Header: make(nats.Header, 9)}
	skip := false
	for {
		au, err := a.vq.Pop(ctx)
		if err != nil {
			return
		}
		if skip && !au.Key {
			a.st.dropped.Add(1)
			// ask for a keyframe once the link is back, not one a frame
			// while it is down
			if a.nc.IsConnected() {
				a.needKey.Store(true)
			}
			continue
		}
		wire.Video{
			Frame: wire.Frame{Seq: au.Seq, Time: au.Time, Width: au.Width, Height: au.Height},
			Codec: au.Codec, Key: au.Key, PTS: au.PTS, DTS: au.DTS,
		}.SetHeader(msg.Header)
		msg.Subject = wire.VideoSubject(a.cfg.ID, au.Key)
		msg.Data = au.Data
		err = a.nc.PublishMsg(msg)
		msg.Data = nil
		a.connected.Store(err == nil)
		if err != nil {
			a.st.publishFailed.Add(1)
			a.st.dropped.Add(1)
			if !skip {
				a.st.gopsDropped.Add(1)
				a.needKey.Store(true)
			}
			skip = true
			if errors.Is(err, nats.ErrMaxPayload) {
				a.st.tooLarge.Add(1)
				a.warn.Warn("access unit larger than the NATS max payload; dropping its GOP",
					"bytes", len(au.Data), "max_payload", a.maxPayload.Load())
			} else if a.nc.IsConnected() {
				a.warn.Warn("publishing video failed; dropping it up to the next keyframe", "error", err)
			}
			continue
		}
		skip = false
		a.st.sent.Add(1)
		a.st.bytes.Add(uint64(len(au.Data)))
		a.mu.Lock()
		a.width, a.height = au.Width, au.Height
		a.mu.Unlock()
	}
}
