// Package hub is camhub's broker: an embedded nats-server with JetStream
// (or an existing NATS server or cluster) provisioned with the CAMS replay
// buffer and the CAMS_STATUS camera list, and a log of cameras joining and
// leaving.
package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"camhub/internal/natsconn"
	"camhub/internal/ops"
	"camhub/internal/ratelog"
	"camhub/internal/wire"
)

// DefaultMaxPayload is the largest message the embedded server accepts:
// enough for a 1080p JPEG at high quality.
const DefaultMaxPayload = 8 << 20

// Storage kinds for the replay buffer.
const (
	StorageMemory = "memory"
	StorageFile   = "file"
)

// Config is the hub's configuration.
type Config struct {
	// Listen is the host:port clients connect to (port 0: any free port).
	Listen string
	// Monitor is the host:port of the NATS monitoring endpoint; empty: off.
	Monitor string
	// NATS, if set, is an existing NATS server or cluster (comma-separated
	// URLs) to provision instead of starting an embedded server.
	NATS string
	// StoreDir holds JetStream's data. Empty: a temporary directory with
	// memory storage, "camhub-data" with file storage.
	StoreDir    string
	Storage     string // StorageMemory or StorageFile
	Replay      time.Duration
	ReplayBytes int64
	MaxPayload  int32  // 0: DefaultMaxPayload
	ServerName  string // embedded server's name; empty: "camhub-<host>"
	// HTTP, if set, is the host:port of the hub's /metrics and /healthz.
	HTTP string
	// Auth, if set, is a users file (see LoadUsers): clients must then log
	// in as one of its users and get that user's permissions.
	Auth string
	// TLSCert and TLSKey, if set, are the PEM certificate (chain) and key
	// the embedded server presents: clients must then connect with TLS.
	TLSCert, TLSKey string
	// Data, if set, secures the embedded server from this data directory
	// (mode 0700, files 0600): TLS only, with a certificate from the hub's
	// own CA (made on first start; the certificate is issued again when
	// the hub's names change or it nears expiry), and clients log in as a
	// camera or user of its users file (see Store), which the hub watches:
	// a change applies at once, a removed user's connections are closed.
	// Exclusive with Auth and TLSCert.
	Data string
	// Advertise are the host names or addresses (host or host:port) clients
	// reach the hub at, beyond those the machine knows: they go into the
	// server certificate and the join tokens' URLs.
	Advertise []string

	// Cluster, if set, is the host:port of this hub's route listener: the
	// embedded server is then one node of the NATS cluster ClusterName
	// (DefaultClusterName if empty), joining it through Routes
	// (comma-separated nats:// URLs of the nodes' route listeners).
	Cluster, ClusterName, Routes string
	// Replicas is how many nodes keep a copy of each stream (1–5; 0
	// means 1). More than one needs a cluster.
	Replicas int
	// Leaf, if set, makes the embedded server a leaf node of the hub at
	// these URLs (comma-separated nats:// URLs of its leaf listener): this
	// site's cameras reach the central hub while the link is up, and work
	// locally without it. It needs Domain.
	Leaf string
	// LeafListen, if set, is the host:port leaf hubs connect to.
	LeafListen string
	// Domain is the embedded server's JetStream domain: a leaf hub's own
	// name, so its replay buffer stays local.
	Domain string

	// ClipsAge and ClipsBytes bound the CLIPS stream of event clips
	// (0: DefaultClipsAge, DefaultClipsBytes).
	ClipsAge   time.Duration
	ClipsBytes int64
	// Sites, if set, are the domains of this central hub's site hubs
	// (comma-separated): its CAMS then sources each site's CAMS (see
	// backfill.go) instead of capturing cameras' subjects itself.
	Sites string
	// UplinkRate limits, on a site hub, how fast the central hub's
	// buffer is fed from the site's (bits a second; 0: no limit).
	UplinkRate uint64
	// MQTT, if set, is the host:port of the embedded server's MQTT
	// listener (see mqtt.go).
	MQTT string
}

// ErrConfig is wrapped by every error Config.Validate returns.
var ErrConfig = errors.New("bad hub configuration")

// Validate checks c and fills in defaults. Its errors wrap ErrConfig and
// name the setting.
func (c *Config) Validate() error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

func (c *Config) validate() error {
	switch c.Storage {
	case "":
		c.Storage = StorageMemory
	case StorageMemory, StorageFile:
	default:
		return fmt.Errorf("storage %q: want %q or %q", c.Storage, StorageMemory, StorageFile)
	}
	if c.Replay <= 0 {
		return fmt.Errorf("replay %v: must be positive", c.Replay)
	}
	if c.ReplayBytes < 1<<20 {
		return fmt.Errorf("replay-bytes %d: must be at least 1MiB", c.ReplayBytes)
	}
	if c.MaxPayload == 0 {
		c.MaxPayload = DefaultMaxPayload
	}
	if c.ClipsAge == 0 {
		c.ClipsAge = DefaultClipsAge
	}
	if c.ClipsBytes == 0 {
		c.ClipsBytes = DefaultClipsBytes
	}
	if c.ClipsAge < time.Minute || c.ClipsBytes < 1<<20 {
		return fmt.Errorf("clips-age %v, clips-bytes %d: at least 1m and 1MiB", c.ClipsAge, c.ClipsBytes)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("tls-cert and tls-key go together")
	}
	if c.NATS != "" && (c.Auth != "" || c.TLSCert != "" || c.Data != "") {
		return errors.New("auth, tls-cert, tls-key and the data directory's security configure the embedded server: configure an existing NATS server (--nats) itself, or add --insecure")
	}
	if c.Data != "" && (c.Auth != "" || c.TLSCert != "") {
		return errors.New("the data directory's security (the default) and auth or tls-cert exclude each other")
	}
	if err := c.validateCluster(); err != nil {
		return err
	}
	if err := c.validateMQTT(); err != nil {
		return err
	}
	if c.Data != "" && (c.Leaf != "" || c.LeafListen != "") {
		return errors.New("leaf and leaf-listen: leaf links carry no credentials in this version; run both hubs with --insecure (on a trusted network or VPN; see docs/SCALING.md)")
	}
	if c.NATS == "" {
		if _, _, err := splitHostPort(c.Listen); err != nil {
			return fmt.Errorf("listen %q: %v", c.Listen, err)
		}
		if c.Monitor != "" {
			if _, _, err := splitHostPort(c.Monitor); err != nil {
				return fmt.Errorf("monitor %q: %v", c.Monitor, err)
			}
		}
	}
	return nil
}

func (c *Config) buffer() BufferConfig {
	st := jetstream.MemoryStorage
	if c.Storage == StorageFile {
		st = jetstream.FileStorage
	}
	sites, _ := ParseSites(c.Sites) // checked by Validate
	return BufferConfig{Storage: st, Replay: c.Replay, ReplayBytes: c.ReplayBytes, Replicas: c.Replicas,
		ClipsAge: c.ClipsAge, ClipsBytes: c.ClipsBytes, Sites: sites}
}

// Server is a running hub.
type Server struct {
	cfg  Config
	log  *slog.Logger
	ns   *server.Server // nil with an external NATS
	nc   *nats.Conn
	cams *cameras
	// guard deletes consumers restricted users may not have; nil
	// without users.
	guard *guard
	tmp   string // temporary store directory to remove

	// The users file the hub watches (Data's or Auth), and the options
	// the server started with, which a reload changes the users of.
	usersFile string
	opts      *server.Options
	self      *server.User
	users     int // users and nkeys now allowed, for the log
	reloadMu  sync.Mutex
	stopWatch context.CancelFunc

	leafAddr string    // the leaf node listener, if any
	sites    []string  // the site domains a central hub sources
	bf       *backfill // nil unless a site or a central hub with sites

	// depthWarn says when the byte bound keeps the buffer shorter than
	// --replay (see checkDepth).
	depthWarn *ratelog.Logger

	// extra are collectors of components in the hub's process.
	extraMu sync.Mutex
	extra   []prometheus.Collector

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Start starts the hub: the embedded server (unless cfg.NATS is set), the
// streams, and the camera log. It returns once clients can connect.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, cams: newCameras(log), depthWarn: ratelog.New(log, depthWarnEvery)}
	if err := s.start(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// clusterWait is how long a starting hub waits for its JetStream cluster
// to elect a leader and hold the streams' replicas. The hubs of a cluster
// seldom start at the same moment (machines boot at their own pace), and
// a busy machine takes a while to elect; the wait is said in the log.
const clusterWait = 2 * time.Minute

func (s *Server) start(ctx context.Context) error {
	if s.cfg.NATS == "" {
		if err := s.startEmbedded(); err != nil {
			return err
		}
	} else {
		nc, err := natsconn.Dial(s.cfg.NATS, natsconn.DialOptions{Name: "camhub-hub"}, s.log)
		if err != nil {
			return err
		}
		s.nc = nc
	}
	js, err := jetstream.New(s.nc)
	if err != nil {
		return err
	}
	b := s.cfg.buffer()
	b.MaxMsgSize = int32(min(s.nc.MaxPayload(), int64(s.cfg.MaxPayload)))
	pctx, cancel := context.WithTimeout(ctx, clusterWait)
	defer cancel()
	if err := s.provision(pctx, js, b); err != nil {
		return err
	}
	s.log.Info("replay buffer ready", "stream", wire.FramesStream, "storage", s.cfg.Storage,
		"replay", s.cfg.Replay, "replay_bytes", s.cfg.ReplayBytes, "max_frame", b.MaxMsgSize, "replicas", b.Replicas)
	s.log.Info("events and clips ready", "events", wire.EventsStream, "events_age", EventsMaxAge, "events_bytes", int64(EventsMaxBytes),
		"clips", wire.ClipsStream, "clips_age", s.cfg.ClipsAge, "clips_bytes", s.cfg.ClipsBytes, "storage", StorageFile)
	if s.tmp != "" {
		s.log.Warn("events and clips are kept in a temporary directory and lost when the hub stops: give --store-dir to keep them")
	}
	if err := s.startBackfill(pctx, js, b); err != nil {
		return err
	}

	if _, err := s.nc.Subscribe(wire.AllStatus, s.cams.handle); err != nil {
		return err
	}
	rctx, rcancel := context.WithCancel(context.Background())
	s.cancel = rcancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		leaves := 0
		nextDepth := time.Now().Add(depthEvery)
		for {
			select {
			case <-rctx.Done():
				return
			case now := <-t.C:
				s.cams.sweep()
				s.logLinks(&leaves)
				if now.After(nextDepth) {
					s.checkDepth(rctx, now)
					nextDepth = now.Add(depthEvery)
				}
				s.followBackfill(rctx)
			}
		}
	}()
	return nil
}

func (s *Server) startEmbedded() error {
	host, port, _ := splitHostPort(s.cfg.Listen)
	dir := s.cfg.StoreDir
	if dir == "" && s.cfg.Storage == StorageFile {
		dir = "camhub-data"
	}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "camhub-hub-")
		if err != nil {
			return err
		}
		s.tmp, dir = tmp, tmp
	}
	name := s.cfg.ServerName
	if name == "" {
		h, _ := os.Hostname()
		name = "camhub-" + h
	}
	// Reserve what the buffers need, and no more, from the machine:
	// events and clips are always on file storage.
	const margin = 64 << 20
	maxMem, maxStore := int64(margin), int64(margin)+EventsMaxBytes+s.cfg.ClipsBytes
	if s.cfg.Storage == StorageFile {
		maxStore += s.cfg.ReplayBytes
	} else {
		maxMem += s.cfg.ReplayBytes
	}
	opts := &server.Options{
		ServerName:         name,
		Host:               host,
		Port:               port,
		NoSigs:             true,
		MaxPayload:         s.cfg.MaxPayload,
		JetStream:          true,
		StoreDir:           dir,
		JetStreamMaxMemory: maxMem,
		JetStreamMaxStore:  maxStore,
		// Slow viewers are cut off rather than allowed to hold frames.
		WriteDeadline: 5 * time.Second,
	}
	if err := s.cfg.clusterOptions(opts); err != nil {
		return err
	}
	var inproc []nats.Option
	var auth *Auth
	switch {
	case s.cfg.Data != "":
		if err := s.secure(opts); err != nil {
			return err
		}
		s.usersFile = filepath.Join(s.cfg.Data, UsersFile)
		if _, err := os.Stat(s.usersFile); errors.Is(err, os.ErrNotExist) {
			if err := writeSecret(s.usersFile, []byte("users: []\n")); err != nil {
				return err
			}
		}
	case s.cfg.Auth != "":
		s.usersFile = s.cfg.Auth
	}
	if s.usersFile != "" {
		var err error
		if auth, err = LoadAuth(s.usersFile); err != nil {
			return err
		}
		if s.cfg.Auth != "" && len(auth.Users)+len(auth.Nkeys) == 0 {
			return fmt.Errorf("%w: %s: no users", ErrAuth, s.cfg.Auth)
		}
		self, selfPassword, err := internalUser()
		if err != nil {
			return err
		}
		if _, ok := auth.Restricted[self.Username]; ok || slices.ContainsFunc(auth.Users, func(u *server.User) bool { return u.Username == self.Username }) {
			return fmt.Errorf("%w: %s: user name %q is the hub's own", ErrAuth, s.usersFile, self.Username)
		}
		s.self = self
		opts.Users = append(auth.Users, self)
		opts.Nkeys = auth.Nkeys
		s.users = auth.Names
		inproc = append(inproc, nats.UserInfo(self.Username, selfPassword))
	}
	if s.cfg.TLSCert != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: s.cfg.TLSCert, KeyFile: s.cfg.TLSKey})
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		opts.TLSConfig, opts.TLS, opts.TLSTimeout = tc, true, 5
	}
	if s.cfg.Monitor != "" {
		opts.HTTPHost, opts.HTTPPort, _ = splitHostPort(s.cfg.Monitor)
	}
	if err := s.mqttOptions(opts); err != nil {
		return err
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("starting NATS server: %w", err)
	}
	fatal := make(chan string, 1)
	ns.SetLoggerV2(natsLogger{s.log.With("component", "nats"), fatal}, false, false, false)
	s.ns = ns
	go ns.Start()
	for deadline := time.Now().Add(10 * time.Second); !ns.ReadyForConnections(50 * time.Millisecond); {
		select {
		case msg := <-fatal:
			return fmt.Errorf("starting NATS server on %s: %s", s.cfg.Listen, msg)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("NATS server did not start listening on %s", s.cfg.Listen)
		}
	}
	nc, err := nats.Connect("", append(inproc, nats.InProcessServer(ns), nats.Name("camhub-hub"))...)
	if err != nil {
		return err
	}
	s.nc = nc
	s.opts = opts
	if auth != nil {
		if err := s.watchConsumers(auth.Restricted); err != nil {
			return err
		}
	}
	attrs := []any{"url", ns.ClientURL(), "name", name, "store_dir", dir, "auth", s.usersFile != "", "tls", opts.TLS,
		"file_store", maxStore, "memory_store", maxMem}
	if a := ns.ClusterAddr(); a != nil {
		attrs = append(attrs, "cluster", s.cfg.ClusterName, "routes_listen", a.String())
	}
	if s.cfg.LeafListen != "" {
		s.leafAddr = net.JoinHostPort(opts.LeafNode.Host, strconv.Itoa(opts.LeafNode.Port))
		attrs = append(attrs, "leaf_listen", s.leafAddr)
	}
	if s.cfg.Leaf != "" {
		attrs = append(attrs, "leaf", natsconn.RedactURL(s.cfg.Leaf))
	}
	if s.cfg.Domain != "" {
		attrs = append(attrs, "domain", s.cfg.Domain)
	}
	if s.usersFile != "" {
		attrs = append(attrs, "users", s.users)
	}
	if ma := ns.MonitorAddr(); ma != nil {
		attrs = append(attrs, "monitor", "http://"+ma.String())
	}
	if opts.MQTT.Port != 0 {
		attrs = append(attrs, "mqtt", s.MQTTAddr(), "mqtt_tls", opts.MQTT.TLSConfig != nil)
	}
	s.log.Info("NATS server ready", attrs...)
	if s.usersFile != "" {
		s.watchUsers()
	}
	if s.cfg.Data != "" && s.cfg.Cluster != "" {
		s.log.Warn("cluster routes carry no credentials in this version: keep the route port (--cluster) on a private network or VPN",
			"routes_listen", s.cfg.Cluster)
	}
	if s.cfg.Data != "" {
		host, _, _ := net.SplitHostPort(s.cfg.Listen)
		listen := net.JoinHostPort(host, strconv.Itoa(ns.Addr().(*net.TCPAddr).Port))
		if err := writeURLs(s.cfg.Data, ClientURLs(listen, s.cfg.Advertise)); err != nil {
			return err
		}
		s.logHowToJoin()
	}
	return nil
}

// ClientURL is the URL clients connect to.
func (s *Server) ClientURL() string {
	if s.ns != nil {
		return s.ns.ClientURL()
	}
	return s.nc.ConnectedUrl()
}

// MonitorAddr is the monitoring endpoint's address, nil when it is off.
func (s *Server) MonitorAddr() *net.TCPAddr {
	if s.ns == nil {
		return nil
	}
	return s.ns.MonitorAddr()
}

// Conn is the hub's own connection, in-process with an embedded server,
// with every permission: for components that run inside the hub's process
// (the motion detector). It is closed by Close.
func (s *Server) Conn() *nats.Conn { return s.nc }

// Online lists the ids of the cameras the hub sees reporting now.
func (s *Server) Online() []string { return s.cams.online() }

// Run serves cfg.HTTP, if set, and blocks until ctx is done, then closes
// the hub.
func (s *Server) Run(ctx context.Context) error {
	defer s.Close()
	if s.cfg.HTTP == "" {
		<-ctx.Done()
		return nil
	}
	h := ops.Handler(s.Collector(), func() (bool, any) { return s.Health(ctx) })
	return ops.Serve(ctx, s.cfg.HTTP, h, s.log)
}

// Close stops the hub and waits for it. It may be called more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		if s.cancel != nil {
			s.cancel()
		}
		if s.stopWatch != nil {
			s.stopWatch()
		}
		s.wg.Wait()
		s.bf.close()
		if s.nc != nil {
			s.nc.Close()
		}
		if s.ns != nil {
			s.ns.Shutdown()
			s.ns.WaitForShutdown()
			s.log.Info("NATS server stopped")
		}
		if s.tmp != "" {
			os.RemoveAll(s.tmp)
		}
	})
}

// splitHostPort parses host:port; port 0 asks for any free port.
func splitHostPort(hp string) (string, int, error) {
	host, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, errors.New("bad port")
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}
