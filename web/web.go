// Package web serves camhub to browsers and to home-automation tools: a live
// grid page, an MJPEG stream and a snapshot of every camera, a JSON camera
// list, a health check and Prometheus metrics.
//
// Frames go out as they came in, JPEG bytes, never decoded or re-encoded, so
// the package needs no OpenCV and builds without cgo.
//
// Fan-out is newest-frame-wins. One NATS subscription (per camera with a
// camera list, one wildcard without) leaves each frame on a board that keeps
// only the newest frame of each camera and wakes the waiting clients. Each
// client is served by its HTTP handler's goroutine alone: it waits for a
// frame newer than the one it sent last, writes it under a write deadline,
// and waits again. A slow client skips frames (counted); a stalled one is
// cut off at the deadline; neither holds anyone else up, and nothing queues.
package web

import (
	"context"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"camhub/internal/camlist"
	"camhub/internal/ratelog"
	"camhub/internal/replay"
	"camhub/internal/wire"
)

// Defaults and limits.
const (
	// DefaultWriteTimeout is how long a client may take to accept one
	// frame before it is cut off.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultMaxClients is how many streams are served at once.
	DefaultMaxClients = 512
	// DefaultMaxReplays is how many rewinding streams are served at once;
	// each reads the hub's buffer through its own consumer.
	DefaultMaxReplays = 16
	// DefaultReplayIdle is how long a rewinding stream may go without
	// sending a frame before it is ended, freeing its rewind slot.
	DefaultReplayIdle = time.Minute
	// MaxCameras is the most cameras the server shows. Without a camera
	// list, frames and reports of cameras beyond it are ignored.
	MaxCameras = 256
	// shutdownTimeout bounds Run's graceful shutdown.
	shutdownTimeout = 5 * time.Second
)

// Pending limits of the frame subscription. The handler only stores a
// pointer, so nothing should wait; the limits bound what a stalled server
// could hold.
const (
	pendingFrames = 1024
	pendingBytes  = 256 << 20
)

//go:embed ui
var uiFiles embed.FS

// ErrConfig is wrapped by the errors New returns for a bad configuration.
var ErrConfig = errors.New("bad web configuration")

// ErrRunning is returned by Run and Serve if either is called more than once.
var ErrRunning = errors.New("web: Run called more than once")

// Config is the web server's configuration.
type Config struct {
	// Addr is the host:port Run listens on, such as ":8080".
	Addr string
	// Cams are the cameras shown, in this order; empty: every camera on
	// the hub, and any that join.
	Cams []string
	// WriteTimeout: a client that takes longer to accept one frame is cut
	// off. 0: DefaultWriteTimeout.
	WriteTimeout time.Duration
	// MaxClients bounds the streams served at once (MJPEG and the page's);
	// more are refused with 503. 0: DefaultMaxClients.
	MaxClients int
	// MaxReplays bounds the rewinding streams served at once. 0:
	// DefaultMaxReplays.
	MaxReplays int
	// ReplayIdle ends a rewinding stream that has sent nothing for this
	// long (a rewind of cameras that send nothing holds a slot and a
	// consumer for nobody). 0: DefaultReplayIdle.
	ReplayIdle time.Duration
	// Video makes the decoders of H.264 cameras (package videojpeg's
	// Factory); nil: H.264 cameras are not shown. See video.go.
	Video replay.NewVideoDecoder
	// VideoFPS bounds the pictures a second encoded of each H.264
	// camera. 0: DefaultVideoFPS.
	VideoFPS int
	// TLSCert and TLSKey, if set, are the PEM certificate (chain) and key
	// the server presents: it then serves HTTPS (and HTTP/2) only.
	TLSCert, TLSKey string
	// Certificate, if set, is the certificate the server presents, in
	// memory (a join token's web_cert and web_key, through
	// tls.X509KeyPair): as TLSCert and TLSKey, which it excludes.
	Certificate *tls.Certificate
	// Login, if set, makes everyone log in as a user of the hub, and
	// shows each only the cameras the hub lets that user see: see
	// login.go. nil: everyone sees every camera the server shows.
	Login *Login
}

// validate checks c and fills in defaults.
func (c *Config) validate() error {
	if err := wire.ValidateIDs(c.Cams, MaxCameras); err != nil {
		return fmt.Errorf("%w: cams: %w", ErrConfig, err)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("%w: a TLS certificate and its key go together", ErrConfig)
	}
	if c.TLSCert != "" && c.Certificate != nil {
		return fmt.Errorf("%w: a certificate from files or in memory, not both", ErrConfig)
	}
	if c.WriteTimeout < 0 || c.MaxClients < 0 || c.MaxReplays < 0 || c.ReplayIdle < 0 {
		return fmt.Errorf("%w: negative write timeout or limit", ErrConfig)
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.MaxClients == 0 {
		c.MaxClients = DefaultMaxClients
	}
	if c.MaxReplays == 0 {
		c.MaxReplays = DefaultMaxReplays
	}
	if c.ReplayIdle == 0 {
		c.ReplayIdle = DefaultReplayIdle
	}
	if c.VideoFPS < 0 {
		return fmt.Errorf("%w: negative video fps", ErrConfig)
	}
	if c.VideoFPS == 0 {
		c.VideoFPS = DefaultVideoFPS
	}
	if c.Login != nil {
		l := *c.Login // the caller's stays as it was
		if err := l.validate(); err != nil {
			return err
		}
		c.Login = &l
	}
	return nil
}

// Server is the web server.
type Server struct {
	cfg  Config
	nc   *nats.Conn
	js   jetstream.JetStream
	log  *slog.Logger
	tls  *tls.Config     // nil: plain HTTP
	only map[string]bool // the configured cameras; nil: every camera
	gate *gate           // logins; nil: none

	live    *board
	liveLo  *board // the cameras' small tiers (tier.go)
	dir     *directory
	vmu     sync.Mutex
	vids    videos
	media   media // GET /api/media's clients (mse.go)
	subs    []*nats.Subscription
	handler http.Handler
	table   []route // the routes handler serves
	metrics *prometheus.Registry

	ctx    context.Context // ends with Close: stops every stream
	cancel context.CancelFunc

	mu        sync.Mutex
	closed    bool
	wg        sync.WaitGroup // every goroutine the server starts
	running   atomic.Bool    // Run or Serve was called
	closeOnce sync.Once

	clients atomic.Int64 // streams being served
	replays atomic.Int64 // replay players running
	sent    atomic.Uint64
	skipped atomic.Uint64
	dropped atomic.Uint64 // clients cut off by the write deadline
	refused atomic.Uint64 // streams refused: too many
	idleCut atomic.Uint64 // rewinding streams ended for sending nothing
	ignored atomic.Uint64 // frames of cameras beyond MaxCameras
	// warn logs what happens per frame at most once a minute for each
	// warning: it is counted, not logged.
	warn *ratelog.Logger
}

// New returns a server of the cameras on the hub nc is connected to. It
// subscribes at once and reads the hub's camera list in the background; the
// handler works from the start. nc stays the caller's to close, after
// Close.
func New(cfg Config, nc *nats.Conn, log *slog.Logger) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if nc == nil {
		return nil, fmt.Errorf("%w: no NATS connection", ErrConfig)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var tlsConfig *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("%w: TLS certificate %s and key %s: %w", ErrConfig, cfg.TLSCert, cfg.TLSKey, err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if cfg.Certificate != nil {
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{*cfg.Certificate}, MinVersion: tls.VersionTLS12}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, nc: nc, js: js, log: log, tls: tlsConfig, warn: ratelog.New(log, time.Minute),
		live: newBoard(MaxCameras), liveLo: newBoard(MaxCameras), dir: newDirectory(MaxCameras),
		vids:  videos{cams: make(map[string]*videoCam), watch: make(map[string]int)},
		media: media{clients: make(map[*mediaClient]struct{}), loSeen: make(map[string]time.Time)},
	}
	s.live.known = func(id string) bool { _, ok := s.dir.get(id); return ok }
	if len(cfg.Cams) > 0 {
		s.only = make(map[string]bool, len(cfg.Cams))
		for _, id := range cfg.Cams {
			s.only[id] = true
		}
	}
	if cfg.Login != nil {
		if s.gate, err = newGate(*cfg.Login, log.With("component", "login")); err != nil {
			return nil, err
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.subscribe(); err != nil {
		s.Close()
		return nil, err
	}
	s.handler, err = s.routes()
	if err != nil {
		s.Close()
		return nil, err
	}
	s.spawn(s.seed)
	if s.gate != nil {
		s.spawn(s.sweep)
	}
	return s, nil
}

// sweep ends expired sessions now and then, until the server closes.
func (s *Server) sweep() {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.gate.sweep()
		}
	}
}

// sweepEvery is how often expired sessions are swept; a session is
// checked at each use besides.
const sweepEvery = time.Minute

// want reports whether camera id is shown.
func (s *Server) want(id string) bool { return s.only == nil || s.only[id] }

// known reports whether camera id is one the server shows and has heard of
// (or is configured to show).
func (s *Server) known(id string) bool {
	if wire.ValidateID(id) != nil || !s.want(id) {
		return false
	}
	if s.only != nil {
		return true
	}
	if _, ok := s.dir.get(id); ok {
		return true
	}
	return s.live.newest(id) != nil || s.isVideo(id)
}

// subscribe subscribes to the main and small tiers of every camera shown,
// and to every camera's status.
func (s *Server) subscribe() error {
	err := s.subscribeTier(wire.AllFrames, wire.AllVideo, wire.FramesSubject, wire.VideoFilter, s.onFrame, s.onVideo)
	if err != nil {
		return err
	}
	err = s.subscribeTier(wire.AllLoFrames, wire.AllLoVideo, wire.LoFramesSubject, wire.LoVideoFilter, s.onLoFrame, s.onLoVideo)
	if err != nil {
		return err
	}
	sub, err := s.nc.Subscribe(wire.AllStatus, func(m *nats.Msg) { s.dir.onStatus(m, s.want) })
	if err != nil {
		return fmt.Errorf("subscribing to %s: %w", wire.AllStatus, err)
	}
	s.subs = append(s.subs, sub)
	return nil
}

// onFrame takes one frame message. The payload is the message's own (the
// NATS client copies it for each message), so it is kept, not copied.
func (s *Server) onFrame(m *nats.Msg) {
	id, kind, err := wire.ParseSubject(m.Subject)
	if err != nil || kind != wire.KindFrames || !s.want(id) {
		return
	}
	wf, err := wire.ParseFrame(m.Header)
	if err == nil {
		err = wire.CheckLive(m)
	}
	if err != nil {
		s.live.invalid(id)
		s.warn.Warn("ignoring a message that is not a camhub frame", "camera", id, "error", err)
		return
	}
	if !s.live.put(&frame{id: id, Frame: wf, jpeg: m.Data, received: time.Now()}) {
		s.ignored.Add(1)
		s.warn.Warn("too many cameras: ignoring frames", "camera", id, "max", MaxCameras)
	}
}

// seed reads the hub's camera list, retrying until it has it: cameras the
// hub knows show at once, offline ones too, without waiting for reports.
func (s *Server) seed() {
	delay := time.Second
	for {
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		cams, err := camlist.List(ctx, s.js, time.Now())
		cancel()
		if err == nil {
			s.dir.seed(cams, s.want)
			return
		}
		if s.ctx.Err() != nil {
			return
		}
		s.log.Warn("cannot read the hub's camera list; showing cameras as they report", "error", err, "retry_in", delay)
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// spawn runs f in a goroutine Close waits for. It returns false, and does
// not run f, once the server is closed.
func (s *Server) spawn(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

// Handler is the server's HTTP handler: the page, the API, the streams and
// the metrics.
func (s *Server) Handler() http.Handler { return s.handler }

// Run listens on the configured address and serves until ctx ends, then
// closes the server: streams end, other requests get shutdownTimeout to
// finish.
func (s *Server) Run(ctx context.Context) error {
	if s.cfg.Addr == "" {
		return fmt.Errorf("%w: no address to listen on", ErrConfig)
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("web: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener of the caller's; it closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if !s.running.CompareAndSwap(false, true) {
		ln.Close()
		return ErrRunning
	}
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No WriteTimeout: streams are endless. Each frame is written
		// under its own deadline instead.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	if s.gate == nil {
		s.log.Warn("the web viewer asks no one to log in: anyone who reaches it sees every camera it shows (connect it to the hub as a user: --user)")
	} else if s.tls == nil {
		s.log.Warn("logins over plain HTTP: passwords and session cookies cross the network readable; serve HTTPS (--http-tls-cert, --http-tls-key)")
	}
	if s.tls != nil {
		hs.TLSConfig = s.tls.Clone()
		s.log.Info("web viewer listening", "url", "https://"+ln.Addr().String())
		go func() { errc <- hs.ServeTLS(ln, "", "") }()
	} else {
		s.log.Info("web viewer listening", "url", "http://"+ln.Addr().String())
		go func() { errc <- hs.Serve(ln) }()
	}
	select {
	case err := <-errc:
		s.Close()
		return fmt.Errorf("web: %w", err)
	case <-ctx.Done():
	}
	s.Close() // ends the streams, which would otherwise hold Shutdown up
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if err != nil {
		hs.Close()
	}
	<-errc
	s.log.Info("web viewer stopped")
	if err != nil {
		return fmt.Errorf("web: shutting down: %w", err)
	}
	return nil
}

// Close ends every stream and replay, stops the subscriptions and waits for
// the goroutines the server started. It may be called more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel()
		for _, sub := range s.subs {
			sub.Unsubscribe()
		}
		s.wg.Wait()
		if s.gate != nil {
			s.gate.close()
		}
	})
}

// Stats counts what the server does.
type Stats struct {
	// Clients is the streams being served. Each costs one goroutine, its
	// HTTP handler's, however many frames it is sent.
	Clients int
	// Replays is the rewinding streams' replay players. Each costs one
	// goroutine, plus one per camera it reads.
	Replays int
	// Cameras is the cameras frames came from.
	Cameras        int
	FramesSent     uint64 // frames written to clients
	FramesSkipped  uint64 // frames clients skipped because they were slower than the camera
	ClientsDropped uint64 // clients cut off by the write deadline
	ClientsRefused uint64 // streams refused because MaxClients or MaxReplays were reached
}

// Stats returns the server's counts now.
func (s *Server) Stats() Stats {
	return Stats{
		Clients:        int(s.clients.Load()),
		Replays:        int(s.replays.Load()),
		Cameras:        len(s.live.stats(time.Now())),
		FramesSent:     s.sent.Load(),
		FramesSkipped:  s.skipped.Load(),
		ClientsDropped: s.dropped.Load(),
		ClientsRefused: s.refused.Load(),
	}
}

// uiFS is the page's files.
func uiFS() (fs.FS, error) { return fs.Sub(uiFiles, "ui") }
