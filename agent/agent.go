// Package agent is camhub's camera agent: it captures frames from a camera,
// a video file, a network stream, a GStreamer pipeline or a synthetic test
// pattern with OpenCV, scales them down, encodes them as JPEG and publishes
// every frame on cams.<id>.frames, with status reports on cams.<id>.status
// (see package wire for the contract).
//
// With Config.Codec CodecH264 it publishes H.264 access units on
// cams.<id>.video.key and cams.<id>.video.delta instead: frames OpenCV
// captures are encoded with libavcodec (package avcodec); an RTSP camera's
// H.264 (package rtsp) or a command's MPEG-TS (package mpegts) is passed
// through without decoding. Newest wins by the GOP: a bounded h264.Queue
// between capture and publisher drops whole GOPs when the publisher falls
// behind, and the encoder is asked for a keyframe to resume.
//
// Capture never waits on the network. One goroutine captures, scales and
// encodes; it hands each encoded frame to a publisher goroutine through a
// newest-wins mailbox, so a slow or disconnected NATS connection costs
// dropped (and counted) frames, never a growing queue.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"camhub/internal/avcodec"
	"camhub/internal/h264"
	"camhub/internal/natsconn"
	"camhub/internal/ratelog"
	"camhub/internal/version"
	"camhub/internal/wire"
)

// Defaults for the settings a zero Config leaves out.
const (
	DefaultFPS     = 15
	DefaultWidth   = 640
	DefaultHeight  = 480
	DefaultQuality = 80
)

// Limits of the settings.
const (
	MinFPS            = 0.1
	MaxFPS            = 240
	MinSide           = 16   // the smallest --size width or height
	MaxSide           = 8192 // the largest --size width or height
	MinReportInterval = 100 * time.Millisecond
)

// Codecs of Config.Codec.
const (
	CodecJPEG = wire.CodecJPEG // every frame a JPEG on cams.<id>.frames
	CodecH264 = wire.CodecH264 // access units on cams.<id>.video.key|delta
)

// ErrConfig is wrapped by every error New and Config.Validate return.
var ErrConfig = errors.New("bad agent configuration")

// ErrClosed is returned by Run when the NATS connection was closed under it.
var ErrClosed = errors.New("NATS connection closed")

// ErrRunning is returned by Run if it is called more than once.
var ErrRunning = errors.New("agent: Run called more than once")

// Config is what an agent does. A zero FPS, size, Quality or
// ReportInterval takes its default.
type Config struct {
	ID     string  // camera id, see wire.IDRule
	Site   string  // where the camera is, optional; same rule as ids
	Source string  // see ParseSource
	FPS    float64 // the most frames per second to send
	// Width and Height bound the frames sent: larger frames are scaled
	// down to fit, keeping their aspect ratio; smaller ones are never
	// enlarged. The test pattern is drawn at exactly this size.
	Width, Height int
	Quality       int  // JPEG quality, 1-100
	Loop          bool // play a video file again from the start when it ends
	// ReportInterval is how often status is reported, at most
	// wire.MaxReportInterval; wire.DefaultReportInterval if zero.
	ReportInterval time.Duration
	// OpenTimeout bounds opening a network (RTSP, HTTP) source and each
	// read from it: a silent camera is a source error after this long.
	// DefaultOpenTimeout if zero.
	OpenTimeout time.Duration

	// Codec is CodecJPEG (the default) or CodecH264. With CodecH264 an
	// RTSP camera's or a command's H.264 is passed through as it comes
	// (FPS, Width, Height and Quality do not apply); every other source
	// is encoded with libavcodec.
	Codec string
	// Bitrate is the H.264 encoder's target in bit/s; 0 encodes at
	// constant quality.
	Bitrate int
	// Encoder is avcodec.CodecAuto (the default: the hardware encoder
	// where there is one, else libx264), CodecX264 or CodecV4L2M2M.
	Encoder string

	// The small tier (cams.<id>.lo.…), off unless one of these is set.
	// From a captured source, each frame due under LoFPS (default FPS)
	// is scaled to fit LoWidth x LoHeight (default DefaultLoWidth x
	// DefaultLoHeight, at most half of Width x Height) and encoded as
	// LoCodec: CodecJPEG (the default) at LoQuality (default
	// DefaultLoQuality), or CodecH264 with Encoder at libx264's default
	// quality, a keyframe a second. LoSource, an RTSP camera's
	// sub-stream, is passed through instead (LoCodec CodecH264).
	LoWidth, LoHeight int
	LoFPS             float64
	LoCodec           string
	LoQuality         int
	LoSource          string
}

// MaxBitrate is the largest Config.Bitrate.
const MaxBitrate = 100_000_000

// DefaultOpenTimeout is how long opening a network source may take.
const DefaultOpenTimeout = 5 * time.Second

func (c Config) withDefaults() Config {
	if c.OpenTimeout == 0 {
		c.OpenTimeout = DefaultOpenTimeout
	}
	if c.FPS == 0 {
		c.FPS = DefaultFPS
	}
	if c.Width == 0 && c.Height == 0 {
		c.Width, c.Height = DefaultWidth, DefaultHeight
	}
	if c.Quality == 0 {
		c.Quality = DefaultQuality
	}
	if c.ReportInterval == 0 {
		c.ReportInterval = wire.DefaultReportInterval
	}
	if c.Codec == "" {
		c.Codec = CodecJPEG
	}
	if c.Encoder == "" {
		c.Encoder = avcodec.CodecAuto
	}
	return c.loDefaults()
}

// Validate checks every setting, as New does, without a connection. Its
// errors wrap ErrConfig and name the setting.
func (c Config) Validate() error {
	_, err := c.validate()
	return err
}

func (c Config) validate() (Source, error) {
	c = c.withDefaults()
	if err := wire.ValidateID(c.ID); err != nil {
		return Source{}, fmt.Errorf("%w: id: %w", ErrConfig, err)
	}
	if c.Site != "" {
		if wire.ValidateID(c.Site) != nil {
			return Source{}, fmt.Errorf("%w: site %q: a site is 1-64 characters of A-Z a-z 0-9 _ -, like a camera id", ErrConfig, c.Site)
		}
	}
	src, err := ParseSource(c.Source)
	if err != nil {
		return Source{}, fmt.Errorf("%w: source: %w", ErrConfig, err)
	}
	if c.OpenTimeout < 100*time.Millisecond || c.OpenTimeout > 5*time.Minute {
		return Source{}, fmt.Errorf("%w: open-timeout %v: want 100ms to 5m", ErrConfig, c.OpenTimeout)
	}
	switch c.Codec {
	case CodecJPEG:
		if src.Kind == Command {
			return Source{}, fmt.Errorf("%w: source: a command source gives H.264: it needs codec %s", ErrConfig, CodecH264)
		}
	case CodecH264:
	default:
		return Source{}, fmt.Errorf("%w: codec %q: want %s or %s", ErrConfig, c.Codec, CodecJPEG, CodecH264)
	}
	if c.Bitrate < 0 || c.Bitrate > MaxBitrate {
		return Source{}, fmt.Errorf("%w: bitrate %d: want 0 (constant quality) to %d bit/s", ErrConfig, c.Bitrate, MaxBitrate)
	}
	switch c.Encoder {
	case avcodec.CodecAuto, avcodec.CodecX264, avcodec.CodecV4L2M2M:
	default:
		return Source{}, fmt.Errorf("%w: encoder %q: want %s, %s or %s", ErrConfig, c.Encoder,
			avcodec.CodecAuto, avcodec.CodecX264, avcodec.CodecV4L2M2M)
	}
	if src.Kind == File {
		if err := checkFile(src.Path); err != nil {
			return Source{}, fmt.Errorf("%w: source: %w", ErrConfig, err)
		}
	}
	if !(c.FPS >= MinFPS && c.FPS <= MaxFPS) { // also catches NaN
		return Source{}, fmt.Errorf("%w: fps %v: want %v to %v", ErrConfig, c.FPS, MinFPS, MaxFPS)
	}
	if c.Width < MinSide || c.Width > MaxSide || c.Height < MinSide || c.Height > MaxSide {
		return Source{}, fmt.Errorf("%w: size %dx%d: want width and height from %d to %d",
			ErrConfig, c.Width, c.Height, MinSide, MaxSide)
	}
	if c.Quality < 1 || c.Quality > 100 {
		return Source{}, fmt.Errorf("%w: quality %d: want 1 to 100", ErrConfig, c.Quality)
	}
	if c.ReportInterval < MinReportInterval || c.ReportInterval > wire.MaxReportInterval {
		return Source{}, fmt.Errorf("%w: report interval %v: want %v to %v",
			ErrConfig, c.ReportInterval, MinReportInterval, wire.MaxReportInterval)
	}
	if err := c.validateLo(src); err != nil {
		return Source{}, err
	}
	return src, nil
}

// checkFile reports a clear error if a video file cannot be played.
func checkFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("video file %s does not exist", path)
		}
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("video file %s is a directory", path)
	}
	return nil
}

// Stats counts what an agent did since Run started. Once Run has returned,
// Frames == Sent + Dropped.
type Stats struct {
	Captured uint64 // frames read from the source (or drawn), due or not
	Skipped  uint64 // frames captured before they were due under the FPS cap; not drops
	Frames   uint64 // frames due, each given the next Frame-Seq: the last Frame-Seq
	Sent     uint64 // frames published
	Bytes    uint64 // JPEG or H.264 bytes published
	// Dropped counts frames given a Frame-Seq but not published: the
	// next three, frames that failed to encode, and a frame still waiting
	// when Run stopped.
	Dropped       uint64
	Replaced      uint64 // replaced in the mailbox by a newer frame before the publisher took them
	PublishFailed uint64 // publish failed, mostly while NATS was disconnected
	TooLarge      uint64 // larger than the NATS max payload even at the smallest size
	Oversize      uint64 // sent at a lower quality or size than configured, to fit the max payload
	Reencodes     uint64 // extra JPEG encodes spent on frames that did not fit
	SourceErrors  uint64 // times the source failed to open or stopped giving frames
	// GOPsDropped counts, with --codec h264, the times the rest of a GOP
	// was dropped (its frames are in Dropped): the publisher fell behind
	// or a publish failed. Sending resumes at the next keyframe.
	GOPsDropped uint64
}

type counters struct {
	captured, skipped, frames, sent, bytes  atomic.Uint64
	dropped, replaced, publishFailed        atomic.Uint64
	tooLarge, oversize, reencodes, srcError atomic.Uint64
	gopsDropped                             atomic.Uint64
}

// Agent captures from one source and publishes its frames and status.
type Agent struct {
	cfg Config
	src Source
	nc  *nats.Conn
	log *slog.Logger
	// warn writes the publish failures' warnings; srcWarn the source
	// failures', keyed by the error.
	warn, srcWarn *ratelog.Logger
	host          string
	source        string // cfg.Source, redacted
	period        time.Duration

	framesSubject, statusSubject string

	box *mailbox    // JPEG frames to the publisher
	vq  *h264.Queue // H.264 access units to the publisher
	// needKey asks the H.264 encoder for a keyframe: access units were
	// dropped.
	needKey atomic.Bool
	changed chan struct{} // state changed; capacity 1
	ran     atomic.Bool
	st      counters
	seq     uint64        // the last Frame-Seq given; capture goroutine only
	venc    *videoEncoder // with --codec h264; capture goroutine only
	lo      *loTier       // the small tier; nil without one
	// maxPayload is the server's, as of the last status report: the
	// capture goroutine must not ask the connection, whose lock a publish
	// stalled on a dead link holds.
	maxPayload atomic.Int64
	// connected is whether the last publish, or the connection as of the
	// last status report, said connected: /healthz and /metrics read it
	// rather than the connection, for the same reason.
	connected atomic.Bool

	// Reopening a failed source waits backoffMin, doubling up to
	// backoffMax; back to backoffMin after a frame was read.
	backoffMin, backoffMax time.Duration

	mu         sync.Mutex // guards the fields below
	state      string
	err        string    // the source error, while state is source-error
	width      int       // of the last frame sent
	height     int       //
	started    time.Time //
	failWarned bool      // the last source failure was logged at Warn
}

// New checks cfg and returns an agent that publishes on nc. Errors wrap
// ErrConfig and name the setting. log may be nil.
func New(cfg Config, nc *nats.Conn, log *slog.Logger) (*Agent, error) {
	cfg = cfg.withDefaults()
	src, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if nc == nil {
		return nil, fmt.Errorf("%w: no NATS connection", ErrConfig)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	a := &Agent{
		cfg:           cfg,
		src:           src,
		nc:            nc,
		log:           log.With("camera", cfg.ID),
		host:          host,
		source:        natsconn.RedactURL(cfg.Source),
		period:        time.Duration(float64(time.Second) / cfg.FPS),
		framesSubject: wire.FramesSubject(cfg.ID),
		statusSubject: wire.StatusSubject(cfg.ID),
		box:           newMailbox(),
		vq:            h264.NewQueue(videoQueue),
		changed:       make(chan struct{}, 1),
		backoffMin:    500 * time.Millisecond,
		backoffMax:    10 * time.Second,
		state:         wire.StateStarting,
	}
	if cfg.loOn() {
		a.lo = newLoTier(a)
	}
	a.warn = ratelog.New(a.log, time.Minute)
	a.srcWarn = ratelog.New(a.log, warnEvery, ratelog.Gap(warnChangedEvery))
	a.maxPayload.Store(nc.MaxPayload())
	a.connected.Store(nc.IsConnected())
	return a, nil
}

// LoStats returns the small tier's counters; zero without one.
func (a *Agent) LoStats() LoStats {
	if a.lo == nil {
		return LoStats{}
	}
	return a.lo.stats()
}

// Stats returns the agent's counters.
func (a *Agent) Stats() Stats {
	s := &a.st
	return Stats{
		Captured:      s.captured.Load(),
		Skipped:       s.skipped.Load(),
		Frames:        s.frames.Load(),
		Sent:          s.sent.Load(),
		Bytes:         s.bytes.Load(),
		Dropped:       s.dropped.Load(),
		Replaced:      s.replaced.Load(),
		PublishFailed: s.publishFailed.Load(),
		TooLarge:      s.tooLarge.Load(),
		Oversize:      s.oversize.Load(),
		Reencodes:     s.reencodes.Load(),
		SourceErrors:  s.srcError.Load(),
		GOPsDropped:   s.gopsDropped.Load(),
	}
}

// Run captures and publishes until ctx is done or, for a video file played
// without Loop, until the file ends; both return nil. It reports status
// all along, and "stopped" last, flushing the connection before it
// returns. Every goroutine it starts has ended when it returns. Run fails
// only if the NATS connection is closed under it. An agent runs once.
//
// OpenCV cannot interrupt a read: when ctx is done while a stalled camera
// or stream blocks in one, Run returns when the read does (OpenCV's FFmpeg
// backend gives up after 30 s by default).
func (a *Agent) Run(ctx context.Context) error {
	if !a.ran.CompareAndSwap(false, true) {
		return ErrRunning
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	a.mu.Lock()
	a.started = time.Now()
	a.mu.Unlock()
	switch {
	case a.passthrough():
		a.log.Info("agent starting: passing the camera's H.264 through as it comes; fps and size do not apply",
			"source", a.source, "codec", a.cfg.Codec, "report_interval", a.cfg.ReportInterval)
	case a.cfg.Codec == CodecH264:
		a.log.Info("agent starting", "source", a.source, "codec", a.cfg.Codec, "size", fmt.Sprintf("%dx%d", a.cfg.Width, a.cfg.Height),
			"fps", a.cfg.FPS, "bitrate", a.cfg.Bitrate, "encoder", a.cfg.Encoder, "loop", a.cfg.Loop, "report_interval", a.cfg.ReportInterval)
	default:
		a.log.Info("agent starting", "source", a.source, "codec", a.cfg.Codec, "size", fmt.Sprintf("%dx%d", a.cfg.Width, a.cfg.Height),
			"fps", a.cfg.FPS, "quality", a.cfg.Quality, "loop", a.cfg.Loop, "report_interval", a.cfg.ReportInterval)
	}
	rate := newRateMeter(a.started)
	a.report(rate, time.Now())

	var wg sync.WaitGroup
	published := make(chan struct{}) // the publisher ended
	var ended bool                   // a video file ended; read after wg.Wait
	wg.Add(2)
	go func() {
		defer wg.Done()
		if a.passthrough() {
			a.capturePassthrough(ctx)
			return
		}
		ended = a.capture(ctx)
	}()
	go func() {
		defer wg.Done()
		defer close(published)
		if a.cfg.Codec == CodecH264 {
			a.publishVideo(ctx)
			return
		}
		a.publish(ctx)
	}()
	if l := a.lo; l != nil {
		// The small tier's publisher (and sub-stream) run apart from
		// the main tier's: neither waits on the other.
		if !l.encoded() {
			wg.Go(func() { l.capturePassthrough(ctx) })
		}
		if l.vq != nil {
			wg.Go(func() { l.publishVideo(ctx) })
		} else {
			wg.Go(func() { l.publish(ctx) })
		}
		a.log.Info("small tier on", "codec", l.codec, "size", fmt.Sprintf("%dx%d", l.w, l.h), "fps", a.cfg.LoFPS,
			"source", natsconn.RedactURL(l.src), "subject", wire.SubjectPrefix+"."+a.cfg.ID+"."+wire.KindLo+".>")
	}

	var err error
	tick := time.NewTicker(a.cfg.ReportInterval)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-published:
			break loop
		case <-a.changed:
			a.report(rate, time.Now())
		case now := <-tick.C:
			if a.nc.IsClosed() {
				err = ErrClosed
				break loop
			}
			a.report(rate, now)
		}
	}
	cancel()
	wg.Wait()
	if a.box.drain() {
		a.st.dropped.Add(1)
	}
	a.vq.Close(errCaptureEnded)
	for a.vq.Len() > 0 { // access units left waiting when Run stopped
		a.vq.Pop(context.Background())
		a.st.dropped.Add(1)
	}
	if a.lo != nil {
		a.lo.drain()
	}
	if ended {
		a.log.Info("video file ended")
	}

	a.setState(wire.StateStopped, "")
	a.report(rate, time.Now())
	if a.nc.IsConnected() {
		if ferr := a.nc.FlushTimeout(2 * time.Second); ferr != nil {
			a.log.Warn("flushing the last frames and status failed", "error", ferr)
		}
	} else {
		a.log.Warn("not connected to NATS: the stopped status was not sent")
	}
	st := a.Stats()
	a.log.Info("agent stopped", "frames_sent", st.Sent, "frames_dropped", st.Dropped,
		"gops_dropped", st.GOPsDropped, "oversize", st.Oversize, "source_errors", st.SourceErrors)
	return err
}

// publish sends the frames the capture goroutine leaves in the mailbox
// until the mailbox is closed and empty or ctx is done.
func (a *Agent) publish(ctx context.Context) {
	msg := &nats.Msg{Subject: a.framesSubject, Header: make(nats.Header, 5)}
	for {
		f, ok := a.box.take(ctx)
		if !ok {
			return
		}
		wire.Frame{Seq: f.seq, Time: f.time, Width: f.width, Height: f.height}.SetHeader(msg.Header)
		msg.Data = f.data
		// PublishMsg copies the data into the connection's buffer, so
		// the frame can go back to the capture goroutine at once. With
		// natsconn.Dial's ReconnectBufSize(-1) it fails at once while
		// disconnected: the frame is dropped, never queued.
		err := a.nc.PublishMsg(msg)
		msg.Data = nil
		a.connected.Store(err == nil)
		if err != nil {
			a.st.publishFailed.Add(1)
			a.st.dropped.Add(1)
			if a.nc.IsConnected() {
				a.warn.Warn("publishing frames failed; dropping them", "error", err)
			}
		} else {
			a.st.sent.Add(1)
			a.st.bytes.Add(uint64(len(f.data)))
			a.mu.Lock()
			a.width, a.height = f.width, f.height
			a.mu.Unlock()
		}
		a.box.recycle(f)
	}
}

// setState records the state and the source error, and wakes the reporter
// if either changed.
func (a *Agent) setState(state, errText string) {
	a.mu.Lock()
	changed := a.state != state || a.err != errText
	a.state, a.err = state, errText
	a.mu.Unlock()
	if changed {
		select {
		case a.changed <- struct{}{}:
		default:
		}
	}
}

// sourceOK is called at the first frame read after opening the source.
func (a *Agent) sourceOK() {
	a.mu.Lock()
	prev, loud := a.state, a.failWarned
	a.mu.Unlock()
	switch {
	case prev == wire.StateStarting:
		a.log.Info("camera streaming")
	case prev == wire.StateSourceError && loud:
		a.log.Info("camera recovered")
	case prev == wire.StateSourceError:
		a.log.Debug("camera recovered")
	}
	a.setState(wire.StateStreaming, "")
}

// Source failures are logged at Warn at most once a minute for each error,
// and 10 s apart; others at Debug. A source that keeps failing, or
// that fails again and again after a few frames, does not flood the log;
// the status reports and counters tell every failure.
const (
	warnEvery        = time.Minute
	warnChangedEvery = 10 * time.Second
)

// sourceFailed records a source failure; the source is retried after retry.
func (a *Agent) sourceFailed(err error, retry time.Duration) {
	a.st.srcError.Add(1)
	text := err.Error()
	warn := a.srcWarn.Log(slog.LevelWarn, text, "camera source failed; reopening it with backoff", "error", text, "retry_in", retry)
	if !warn {
		a.log.Debug("camera source failed", "error", text, "retry_in", retry)
	}
	a.mu.Lock()
	a.failWarned = warn
	a.mu.Unlock()
	a.setState(wire.StateSourceError, text)
}

// status builds a status report.
func (a *Agent) status(fps float64, now time.Time) wire.Status {
	st := a.Stats()
	var lo *wire.Tier
	if a.lo != nil {
		lo = a.lo.status(now)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return wire.Status{
		ID:            a.cfg.ID,
		Site:          a.cfg.Site,
		Host:          a.host,
		Source:        a.source,
		State:         a.state,
		Error:         a.err,
		FPS:           fps,
		Width:         a.width,
		Height:        a.height,
		FramesSent:    st.Sent,
		FramesDropped: st.Dropped,
		BytesSent:     st.Bytes,
		Started:       a.started,
		Time:          now,
		IntervalMS:    a.cfg.ReportInterval.Milliseconds(),
		Version:       version.String(),
		Codec:         a.cfg.Codec,
		Lo:            lo,
	}
}

// report publishes a status report. A report that cannot be sent is
// skipped: the next one says the same, newer.
func (a *Agent) report(rate *rateMeter, now time.Time) {
	a.maxPayload.Store(a.nc.MaxPayload())
	a.connected.Store(a.nc.IsConnected())
	s := a.status(rate.update(now, a.st.sent.Load()), now)
	data, err := json.Marshal(&s)
	if err != nil { // cannot happen with these field types
		a.log.Error("encoding status", "error", err)
		return
	}
	if err := a.nc.Publish(a.statusSubject, data); err != nil {
		a.log.Debug("status report not sent", "state", s.State, "error", err)
	}
}

// rateMeter measures frames sent per second over the interval between
// reports; reports closer together than minSpan keep the last rate.
type rateMeter struct {
	t   time.Time
	n   uint64
	fps float64
}

const minSpan = 250 * time.Millisecond

func newRateMeter(start time.Time) *rateMeter { return &rateMeter{t: start} }

func (r *rateMeter) update(now time.Time, n uint64) float64 {
	if d := now.Sub(r.t); d >= minSpan {
		r.fps = math.Round(float64(n-r.n)/d.Seconds()*100) / 100
		r.t, r.n = now, n
	}
	return r.fps
}
