// Command hub is camhub's broker: an embedded NATS server with JetStream
// keeping a short replay buffer of every camera, or the provisioner of an
// existing NATS server or cluster.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"camhub/hub"
	"camhub/internal/cli"
	"camhub/internal/config"
	"camhub/internal/motion"
	"camhub/internal/ops"
	"camhub/internal/version"
	"camhub/notify"
)

const usage = `hub - the camhub broker

Runs a NATS server with JetStream inside this process, keeping a bounded
replay buffer (the stream CAMS) of every camera's frames and the camera list
(the stream CAMS_STATUS). Agents publish to it; viewers read from it.
It detects motion on every camera (--motion, on by default in the normal
cgo build): events on cams.<id>.motion and cams.<id>.events (stream
EVENTS, 30 days) and a clip of each event, with --pre-roll and
--post-roll, in the stream CLIPS (--clips-age, --clips-bytes); both are
on file storage under --store-dir.
With --nats it starts no server and provisions the same streams on an
existing NATS server or cluster (JetStream enabled) instead.

Usage:
  hub [flags]
  hub camera add|list|remove ...         # cameras that may join (hub camera --help)
  hub user add|list|remove ...           # viewers and admins (hub user --help)
  hub healthcheck [ADDR]                 # exit 0 if the hub on ADDR (its --http) is healthy

Secure by default: with no --insecure, --auth or --tls-cert, the hub keeps in
its --data directory (mode 0700) a CA, a server certificate for its names and
addresses, and its cameras and users (users.yaml), serves TLS only, and lets in
only those cameras and users. Add one with "hub camera add NAME" or
"hub user add NAME": it prints a join token for "agent --join-file" or
"viewer --join-file". Changes apply to a running hub at once.

Examples:
  hub                                    # secured from ./camhub-data, on :4222; monitoring on 127.0.0.1:8222
  hub camera add front >front.join       # then, on the camera: agent --join-file front.join
  hub user add family --role viewer --cams front,back >family.join
  hub --advertise hub.example.org        # a name clients use that the machine does not know
  hub --insecure                         # open: anyone on the network may publish and watch
  hub --storage file --store-dir /var/lib/camhub --replay 2m
  hub --motion-cameras '{"garden":{"mask":"0,0.9 1,0.9 1,1 0,1"},"door":{"enabled":false}}'
  hub --motion=false                     # no motion detection
  hub --notify-ntfy https://ntfy.sh/TOPIC --notify-ntfy-token-file /etc/camhub/ntfy-token
  hub --mqtt :1883                       # Home Assistant finds every camera (docs/MOTION.md)
  hub --nats nats://nats1:4222,nats://nats2:4222 --replicas 3

  # one node of a three-hub cluster keeping 3 copies of the buffer (on a, b and c)
  hub --name a --storage file --cluster 0.0.0.0:6222 \
      --routes nats://a:6222,nats://b:6222,nats://c:6222 --replicas 3
  # a central hub that sites connect to, and a site hub (e.g. on a Pi);
  # leaf links carry no credentials in this version: open mode, over a VPN
  hub --insecure --leaf-listen 0.0.0.0:7422
  hub --insecure --leaf nats://central:7422 --domain garden
  # the same, the central buffer getting the site's frames of an outage too
  hub --insecure --leaf-listen 0.0.0.0:7422 --sites garden,shed
  hub --insecure --leaf nats://central:7422 --domain garden --uplink-rate 20Mbit

See docs/SCALING.md for clusters and sites.

Every flag can also be set as a key in the --config YAML file or as an
environment variable CAMHUB_<FLAG> (e.g. CAMHUB_REPLAY_BYTES=2GiB);
flags override the environment, which overrides the file.

Flags:
`

func main() {
	ctx, stop := cli.SignalContext()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options is everything the command line, environment and file said.
type options struct {
	hub      hub.Config
	motion   motion.Flags
	notify   notify.Flags
	ha       haFlags
	data     string
	insecure bool
	cli.Common
}

// defaultData is the hub's data directory when --data is not given.
const defaultData = "camhub-data"

// parse reads the settings; it returns pflag.ErrHelp after printing --help
// to stdout.
func parse(args []string, stdout io.Writer) (*options, error) {
	fs := pflag.NewFlagSet("hub", pflag.ContinueOnError)
	fs.SetOutput(io.Discard) // run reports errors itself
	fs.Usage = func() { fmt.Fprint(stdout, usage, fs.FlagUsages()) }
	var o options
	cfg := &o.hub
	replayBytes := config.Bytes(hub.DefaultReplayBytes)
	maxPayload := config.Bytes(hub.DefaultMaxPayload)
	clipsBytes := config.Bytes(hub.DefaultClipsBytes)
	fs.String(config.FileFlag, "", "YAML configuration `file`")
	fs.StringVar(&cfg.Listen, "listen", "0.0.0.0:4222", "`host:port` for NATS clients (agents, viewers)")
	fs.StringVar(&cfg.Monitor, "monitor", "127.0.0.1:8222", "`host:port` of the NATS monitoring endpoint, plain HTTP without users: it shows every connection, user and consumer (loopback by default; empty: off)")
	fs.StringVar(&cfg.NATS, "nats", "", "use this existing NATS server or cluster (comma-separated `URLs`) instead of an embedded one")
	fs.StringVar(&cfg.Storage, "storage", hub.StorageFile, "replay buffer storage: file (survives a restart) or memory")
	fs.StringVar(&cfg.StoreDir, "store-dir", "", "JetStream data `directory`: the replay buffer (with file storage), events and clips (default: the --data directory)")
	fs.DurationVar(&cfg.Replay, "replay", hub.DefaultReplay, "keep frames for this long")
	fs.Var(&replayBytes, "replay-bytes", "keep at most this many bytes of frames (e.g. 512MiB, 2GiB)")
	fs.Var(&maxPayload, "max-payload", "largest frame the embedded server accepts")
	fs.StringVar(&cfg.HTTP, "http", "", "serve /metrics (Prometheus) and /healthz on this `host:port`, e.g. :9100 (default: off)")
	fs.StringVar(&cfg.Auth, "auth", "", "require clients to log in as a user of this YAML `file` (users, roles, cameras; see README, Security)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "serve clients over TLS with this PEM certificate `file` (with --tls-key)")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "the TLS certificate's private key `file` (PEM)")
	fs.StringVar(&o.data, "data", defaultData, "the hub's data `directory` (mode 0700): its CA, server certificate, cameras and users")
	fs.StringSliceVar(&cfg.Advertise, "advertise", nil, "host names or addresses (host or host:port, comma-separated) clients reach the hub at,\n"+
		"for its certificate and join tokens (default: this machine's name and addresses)")
	fs.BoolVar(&o.insecure, "insecure", false, "open mode: no TLS and no login unless --auth/--tls-cert say so; anyone who reaches\n"+
		"the hub may publish and watch every camera")
	fs.StringVar(&cfg.ServerName, "name", "", "embedded server name, unique in a cluster (default camhub-<hostname>)")
	fs.StringVar(&cfg.Cluster, "cluster", "", "run as a node of a NATS cluster, with this route `host:port` (e.g. 0.0.0.0:6222; needs --routes)")
	fs.StringVar(&cfg.ClusterName, "cluster-name", hub.DefaultClusterName, "the cluster's `name`, the same on every node")
	fs.StringVar(&cfg.Routes, "routes", "", "the cluster's route `URLs`, comma-separated (nats://a:6222,nats://b:6222,nats://c:6222)")
	fs.IntVar(&cfg.Replicas, "replicas", 1, "copies of the replay buffer kept on different cluster nodes (1-5; also with --nats)")
	fs.StringVar(&cfg.LeafListen, "leaf-listen", "", "accept site hubs (leaf nodes) on this `host:port`, e.g. 0.0.0.0:7422 (default: off)")
	fs.StringVar(&cfg.Leaf, "leaf", "", "run as a site hub: a leaf node of the central hub at these `URLs` (nats://central:7422; needs --domain)")
	fs.StringVar(&cfg.Domain, "domain", "", "JetStream `domain` of this hub's buffer; a site hub's own name (e.g. garden)")
	fs.DurationVar(&cfg.ClipsAge, "clips-age", hub.DefaultClipsAge, "keep event clips (stream CLIPS, on file storage) for this long")
	fs.Var(&clipsBytes, "clips-bytes", "keep at most this many bytes of event clips, the oldest dropped first (e.g. 1GiB, 20GiB)")
	o.motion.Add(fs, detectorBuilt)
	o.notify.Add(fs)
	fs.StringVar(&cfg.MQTT, "mqtt", "", "turn on the embedded server's MQTT listener (MQTT 3.1.1) on this `host:port`, e.g. :1883: cams/<id>/motion for Home Assistant (TLS and the hub's users when the hub is secured)")
	o.ha.add(fs)
	fs.StringVar(&cfg.Sites, "sites", "", "central hub: source these site hubs' buffers (their --domain, comma-separated `names`), outages included; needs --leaf-listen (see docs/SCALING.md)")
	uplinkRate := fs.String("uplink-rate", "0", "site hub: feed the central buffer at most this `rate` (e.g. 20Mbit; 0: no limit), backfill after an outage included")
	o.AddFlags(fs)

	if err := config.Load(fs, args, "version"); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if maxPayload > 64<<20 {
		return nil, errors.New("max-payload: at most 64MiB")
	}
	cfg.ReplayBytes, cfg.MaxPayload, cfg.ClipsBytes = int64(replayBytes), int32(maxPayload), int64(clipsBytes)
	o.motion.Cams = cli.SplitList(o.motion.Cams)
	if _, err := o.motion.Camera(); err != nil {
		return nil, err
	}
	if _, err := o.notify.Config(); err != nil {
		return nil, err
	}
	rate, err := hub.ParseRate(*uplinkRate)
	if err != nil {
		return nil, fmt.Errorf("uplink-rate: %w", err)
	}
	cfg.UplinkRate = rate
	if o.secured() {
		cfg.Data = o.data
	}
	if cfg.StoreDir == "" && cfg.NATS == "" {
		cfg.StoreDir = o.data // what the hub keeps, kept in one place
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &o, nil
}

// secured says whether the hub secures itself from its data directory:
// unless told to be open, told how to secure itself, or not running the
// NATS server.
func (o *options) secured() bool {
	c := o.hub
	return !o.insecure && c.Auth == "" && c.TLSCert == "" && c.NATS == ""
}

// run is the hub command: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "camera" || args[0] == "user") {
		return admin(args, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "healthcheck" {
		return ops.Healthcheck(ctx, "hub", args[1:], stdout, stderr)
	}
	o, err := parse(args, stdout)
	if err != nil {
		return cli.ParseError(stderr, "hub", err)
	}
	log, code, quit := o.Start("hub", stdout, stderr)
	if quit {
		return code
	}

	log.Info("camhub hub starting", "version", version.String())
	c := o.hub
	switch {
	case c.NATS != "":
	case o.insecure && c.Auth == "" && c.TLSCert == "":
		log.Warn("INSECURE: --insecure: no TLS and no login; anyone who reaches " + c.Listen +
			" may publish as any camera and watch every camera. Drop --insecure to secure the hub from its data directory")
	case c.Auth == "" && c.TLSCert != "":
		log.Warn("INSECURE: TLS without --auth: anyone who reaches " + c.Listen + " may publish and watch every camera")
	case c.Auth != "" && c.TLSCert == "":
		log.Warn("--auth without TLS: passwords and pictures cross the network in the clear; " +
			"drop --auth and --tls-* to use the hub's own CA and join tokens (see README, Security)")
	}
	h, err := hub.Start(ctx, o.hub, log)
	if err != nil {
		log.Error("hub failed to start", "error", err)
		return cli.ExitFailure
	}
	stopMotion, err := startMotion(o, h, log)
	if err != nil {
		h.Close()
		log.Error("motion detector failed to start", "error", err)
		return cli.ExitFailure
	}
	stopExtras, err := startExtras(ctx, o, h, log)
	if err != nil {
		stopMotion()
		h.Close()
		log.Error("notifications or Home Assistant failed to start", "error", err)
		return cli.ExitFailure
	}
	stopMotion = func(stopDetector func()) func() {
		return func() { stopExtras(); stopDetector() }
	}(stopMotion)
	// The detector stops before the hub, whose connection it uses.
	hctx, hcancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
		}
		stopMotion()
		hcancel()
	}()
	err = h.Run(hctx)
	close(done)
	stopMotion()
	hcancel()
	if err != nil {
		log.Error("hub failed", "error", err)
		return cli.ExitFailure
	}
	log.Info("camhub hub stopped")
	return cli.ExitOK
}
