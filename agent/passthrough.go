package agent

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"camhub/internal/h264"
	"camhub/internal/mpegts"
	"camhub/internal/rtsp"
)

// auSource is a source that gives H.264 access units as the camera encoded
// them: an RTSP camera, or a command writing MPEG-TS.
type auSource interface {
	Read(ctx context.Context) (h264.AccessUnit, error)
	Close() error
}

// passthrough reports whether the agent passes the source's H.264 through
// without decoding it: an rtsp:// or rtsps:// camera or a command, with
// --codec h264.
func (a *Agent) passthrough() bool { return passthrough(a.cfg.Codec, a.src) }

func passthrough(codec string, src Source) bool {
	return codec == CodecH264 && (src.Kind == Command || src.Kind == URL && isRTSP(src.Path))
}

// Passthrough reports whether an agent with this configuration passes the
// camera's H.264 through as it comes: then FPS, Width, Height and Quality
// do not apply.
func (c Config) Passthrough() bool {
	src, err := ParseSource(c.Source)
	return err == nil && passthrough(c.withDefaults().Codec, src)
}

// DecodesNothing reports whether an agent with this configuration only
// passes H.264 through: the main tier, and the small tier if any from a
// sub-stream. Such an agent wakes for each burst of packets and does
// little each time; cmd/agent then runs it with one P (GOMAXPROCS=1),
// which spares the runtime's idle threads spinning for work at every
// wake-up: 13–30 % of its CPU per frame (docs/BENCHMARKS-H264.md).
func (c Config) DecodesNothing() bool {
	return c.Passthrough() && (!c.loOn() || c.LoSource != "")
}

// capturePassthrough runs the capture goroutine for a passthrough source:
// it opens the source, hands every access unit to the publisher with the
// next Frame-Seq, and reopens the source with backoff when it fails, until
// ctx is done.
func (a *Agent) capturePassthrough(ctx context.Context) {
	defer a.vq.Close(errCaptureEnded)
	backoff := a.backoffMin
	for {
		n, err := a.passSession(ctx)
		if ctx.Err() != nil {
			return
		}
		if n > 0 {
			backoff = a.backoffMin
		}
		a.sourceFailed(err, backoff)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, a.backoffMax)
	}
}

// passSession opens the source and passes its access units on until ctx is
// done or the source fails. It returns how many it read, and closes the
// source.
//
// An RTSP camera's access units are handed on by the camera's receiving
// goroutine itself (rtsp.Options.Deliver): the video queue is the only
// one between camera and publisher, and this goroutine only waits for the
// stream to end. Close waits for that goroutine, so n and a.seq are this
// goroutine's again when passSession returns.
func (a *Agent) passSession(ctx context.Context) (n int, err error) {
	var got atomic.Int64 // access units handed on
	deliver := func(au h264.AccessUnit) {
		a.st.captured.Add(1)
		if got.Add(1) == 1 {
			a.sourceOK()
		}
		a.sink().push(au)
	}
	src, err := a.openAUSource(ctx, deliver)
	if err != nil {
		return 0, err
	}
	defer func() {
		src.Close() // waits for the goroutine that delivers
		n = int(got.Load())
	}()
	for {
		au, err := a.readAU(ctx, src)
		if err != nil {
			if ctx.Err() != nil {
				return 0, nil
			}
			return 0, err
		}
		deliver(au)
	}
}

// readAU reads the next access unit. A command source that stays silent
// for the open timeout has failed (an RTSP camera has its own read
// timeout).
func (a *Agent) readAU(ctx context.Context, src auSource) (h264.AccessUnit, error) {
	if a.src.Kind != Command {
		return src.Read(ctx)
	}
	rctx, cancel := context.WithTimeoutCause(ctx, a.cfg.OpenTimeout, errSilent)
	defer cancel()
	au, err := src.Read(rctx)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(rctx), errSilent) {
		err = fmt.Errorf("%s: no video for %v", a.src, a.cfg.OpenTimeout)
	}
	return au, err
}

var errSilent = errors.New("source silent")

// openAUSource opens the RTSP camera or starts the command. The camera's
// access units go to deliver as they come; the command's are read.
func (a *Agent) openAUSource(ctx context.Context, deliver func(h264.AccessUnit)) (auSource, error) {
	if a.src.Kind == Command {
		return startCommand(ctx, a.src, a.cfg.OpenTimeout, a.log)
	}
	s, err := rtsp.Open(ctx, a.src.Path, rtsp.Options{
		OpenTimeout: a.cfg.OpenTimeout,
		ReadTimeout: a.cfg.OpenTimeout, // as for every network source
		Logger:      a.log,
		Deliver:     deliver,
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// mpegtsQueue is the access units an MPEG-TS source holds for the agent's
// capture goroutine, which hands them on at once.
const mpegtsQueue = 8

var _ auSource = (*mpegts.Source)(nil)
var _ auSource = (*rtsp.Source)(nil)
