// Command agent captures a camera and publishes its frames to camhub over
// NATS. See package agent, and agent --help.
package main

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"camhub/agent"
	"camhub/internal/avcodec"
	"camhub/internal/cli"
	"camhub/internal/config"
	"camhub/internal/join"
	"camhub/internal/natsconn"
	"camhub/internal/ops"
	"camhub/internal/wire"
)

func main() {
	ctx, stop := cli.SignalContext()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// settings are the agent's flags.
type settings struct {
	config         string
	id             string
	site           string
	source         string
	sourceFile     string
	nats           string
	auth           natsconn.Auth
	fps            float64
	size           cli.Size
	quality        intRange
	loop           bool
	reportInterval time.Duration
	openTimeout    time.Duration
	codec          string
	bitrate        int
	encoder        string
	loSize         optSize
	loFPS          float64
	loCodec        string
	loQuality      intRange
	loSource       string
	loSourceFile   string
	http           string
	cli.Common
}

// flags returns the agent's flag set, the schema of its configuration.
func flags() (*pflag.FlagSet, *settings) {
	s := &settings{
		size:      cli.Size{Point: image.Pt(agent.DefaultWidth, agent.DefaultHeight)},
		quality:   intRange{v: agent.DefaultQuality, min: 1, max: 100},
		loQuality: intRange{v: agent.DefaultLoQuality, min: 1, max: 100},
	}
	fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
	fs.SetOutput(io.Discard) // run reports errors itself
	fs.SortFlags = false
	fs.StringVar(&s.config, config.FileFlag, "", "read settings from this YAML `file`")
	fs.StringVar(&s.id, "id", "", "camera `id` (required): "+wire.IDRule)
	fs.StringVar(&s.site, "site", "", "the `site` this camera is at, shown next to its id (optional; same rule as ids)")
	fs.StringVar(&s.source, "source", "testpattern", "what to capture (see Sources above); a URL with a password or token\n"+
		"is visible to every user of the machine in the process list: use\n"+
		"--source-file or CAMHUB_SOURCE instead")
	fs.StringVar(&s.sourceFile, "source-file", "", "read --source from the first line of this `file`, keeping secrets\n"+
		"in it out of the process list")
	fs.StringVar(&s.nats, "nats", natsconn.DefaultNATS, "NATS server `urls`, comma-separated")
	s.auth.AddFlags(fs)
	fs.Float64Var(&s.fps, "fps", agent.DefaultFPS, "the most frames per second to send")
	fs.Var(&s.size, "size", "the largest frame size: larger frames are scaled down to fit, keeping\n"+
		"their aspect ratio, and smaller ones are never enlarged;\n"+
		"testpattern is drawn at exactly this size")
	fs.Var(&s.quality, "quality", "JPEG quality, 1-100")
	fs.BoolVar(&s.loop, "loop", false, "play a video file again from the start when it ends\n"+
		"(without it, the agent stops at the end of the file)")
	fs.DurationVar(&s.reportInterval, "report-interval", wire.DefaultReportInterval,
		"how often to report status, at most "+wire.MaxReportInterval.String())
	fs.DurationVar(&s.openTimeout, "open-timeout", agent.DefaultOpenTimeout,
		"give up opening an RTSP or HTTP source, or reading from it, when it sends nothing for this long")
	fs.StringVar(&s.codec, "codec", agent.CodecJPEG, "`codec` to send: jpeg (every frame a JPEG on cams.<id>.frames) or h264\n"+
		"(access units on cams.<id>.video.key|delta; an rtsp:// camera's or an exec: command's\n"+
		"H.264 is passed through as it comes, every other source is encoded)")
	fs.IntVar(&s.bitrate, "bitrate", 0, "H.264 encoder's target in `bit/s`; 0 encodes at constant quality")
	fs.StringVar(&s.encoder, "encoder", avcodec.CodecAuto, "H.264 `encoder`: auto (the Raspberry Pi 4's hardware encoder if it opens,\n"+
		"else libx264), libx264 or h264_v4l2m2m")
	fs.Var(&s.loSize, "lo-size", "also publish a small tier of this camera on cams.<id>.lo.frames, each\n"+
		"frame scaled to fit this size (e.g. 320x180; at most half of --size), for grids\n"+
		"of small tiles (default: none)")
	fs.Float64Var(&s.loFPS, "lo-fps", 0, "the small tier's most frames per second (default: --fps)")
	fs.StringVar(&s.loCodec, "lo-codec", "", "the small tier's `codec`: jpeg (the default when encoded here) or h264 (encoded\n"+
		"here with --encoder at constant quality, on cams.<id>.lo.video.key|delta); h264 with --lo-source")
	fs.Var(&s.loQuality, "lo-quality", "the small tier's JPEG quality, 1-100")
	fs.StringVar(&s.loSource, "lo-source", "", "an RTSP camera's sub-stream `URL`, passed through as the small tier on\n"+
		"cams.<id>.lo.video.key|delta (H.264); a URL with a password belongs in\n"+
		"--lo-source-file or CAMHUB_LO_SOURCE")
	fs.StringVar(&s.loSourceFile, "lo-source-file", "", "read --lo-source from the first line of this `file`")
	fs.StringVar(&s.http, "http", "", "serve /metrics (Prometheus) and /healthz on this `host:port`, e.g. :9101 (default: off)")
	s.AddFlags(fs)
	return fs, s
}

const usageHead = `Usage: agent --id ID [--source SOURCE] [flags]

The camhub agent runs next to a camera. It captures frames with OpenCV, scales
them down to fit --size, encodes them as JPEG and publishes every frame to NATS
on cams.<id>.frames (with --codec h264: H.264 access units on
cams.<id>.video.key|delta), reporting its status on cams.<id>.status. Capture never
waits for the network: while NATS is slow or unreachable, frames are dropped and
counted, never queued; the agent keeps reconnecting. A camera that fails is
reopened with backoff.

Sources (--source):
  testpattern               a moving synthetic picture showing the id and the clock
  0, /dev/video0            a V4L2 camera (--size and --fps are passed as hints)
  /path/to/video.mp4        a video file, played at its own frame rate (--loop repeats it)
  rtsp://user:pass@host/... a network stream (rtsp, rtsps, http, https) read with FFmpeg
  "... ! appsink"           a GStreamer pipeline ending in appsink
  'exec:CMD ARGS...'        a command writing H.264 in MPEG-TS to its standard output
                            (--codec h264; run without a shell: words split on spaces,
                            quotes group; use exec:sh -c '...' for pipes); killed on
                            stop, restarted with backoff when it exits

With --codec h264 an rtsp:// camera's H.264 (and a command's) is passed through
without decoding: --fps, --size and --quality do not apply. Every other source is
encoded with libavcodec (--bitrate, --encoder).

A small tier (--lo-size, or --lo-source for an IP camera's sub-stream) is a second,
smaller stream of the same camera on cams.<id>.lo.…: grids of small tiles read it
instead of the full frames. It is sent and dropped apart from the main frames.

Joining a secured hub (the default): on the hub, "hub camera add front" prints a
join token; give it once with --join-file (or $CAMHUB_JOIN). The agent keeps it
in --state-dir and later starts need neither --join-file nor --id:
  agent --join-file front.join --source /dev/video0

Examples:
  agent --id front --source testpattern
  agent --id door --source rtsp://user:pass@10.0.0.5/stream --nats nats://hub:4222
  agent --id cam0 --source 0
  agent --id door --codec h264 --source rtsp://user:pass@10.0.0.5/stream
  agent --id test --codec h264 --source testpattern --bitrate 500000
  agent --id porch --source 0 --size 1280x720 --lo-size 320x180      # and a small tier
  agent --id door --codec h264 --source-file door.url --lo-source-file door-sub.url
  agent --id pi --codec h264 --source 'exec:rpicam-vid -t 0 --inline --codec libav --libav-format mpegts -o -'
  agent healthcheck :9101     # exit 0 if the agent with --http :9101 is healthy (agent healthcheck --help)
  CAMHUB_SOURCE='rtsp://cam/stream?token=...' agent --id gate   # not in the process list

Flags:
`

const usageTail = `
Every flag except --version can also be set in the YAML file given by --config,
with the flag's name as key (e.g. "report-interval: 5s"), or as an environment
variable CAMHUB_<FLAG>, upper case with "_" for "-" (e.g. CAMHUB_REPORT_INTERVAL=5s).
Flags override the environment, which overrides the file.
`

// run is the agent command: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "healthcheck" {
		return ops.Healthcheck(ctx, "agent", args[1:], stdout, stderr)
	}
	fs, s := flags()
	fs.Usage = func() {
		fmt.Fprint(stdout, usageHead, fs.FlagUsages(), usageTail)
	}
	fail := func(err error) int { return cli.UsageError(stderr, "agent", err) }
	err := config.Load(fs, args, "version")
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err != nil {
		return cli.ParseError(stderr, "agent", err)
	}
	log, code, done := s.Start("agent", stdout, stderr)
	if done {
		return code
	}
	// A joined camera's id and hub come from its token (given now, or
	// kept by an earlier start).
	tok, err := s.auth.Resolve(natsconn.KindAgent, s.id)
	if err != nil {
		return fail(err)
	}
	if natsconn.JoinInArgs(args) {
		natsconn.WarnJoinInArgs(log)
	}
	if tok != nil && s.id == "" && len(tok.Cams) > 0 {
		s.id = tok.Cams[0]
	}
	if tok != nil && tok.Role == join.RoleAgent && !slices.Contains(tok.Cams, s.id) {
		log.Error("this camera's credential may publish "+strings.Join(tok.Cams, ",")+" only: the hub will refuse "+s.id+"'s frames",
			"camera", s.id, "user", tok.User)
	}
	if s.id == "" {
		return fail(errors.New("--id is required (or id in the --config file, or CAMHUB_ID), unless the camera has joined (--join-file)"))
	}
	s.nats = s.auth.URLs(s.nats, fs.Changed("nats"))
	if s.sourceFile != "" {
		if fs.Changed("source") {
			return fail(errors.New("give --source or --source-file, not both"))
		}
		src, err := natsconn.ReadSecret(s.sourceFile)
		if err != nil {
			return fail(fmt.Errorf("--source-file: %w", err))
		}
		s.source = src
	}
	if s.loSourceFile != "" {
		if fs.Changed("lo-source") {
			return fail(errors.New("give --lo-source or --lo-source-file, not both"))
		}
		src, err := natsconn.ReadSecret(s.loSourceFile)
		if err != nil {
			return fail(fmt.Errorf("--lo-source-file: %w", err))
		}
		s.loSource = src
	}
	cfg := agent.Config{
		ID:             s.id,
		Site:           s.site,
		Source:         s.source,
		FPS:            s.fps,
		Width:          s.size.X,
		Height:         s.size.Y,
		Quality:        s.quality.v,
		Loop:           s.loop,
		ReportInterval: s.reportInterval,
		OpenTimeout:    s.openTimeout,
		Codec:          s.codec,
		Bitrate:        s.bitrate,
		Encoder:        s.encoder,
		LoWidth:        s.loSize.X,
		LoHeight:       s.loSize.Y,
		LoFPS:          s.loFPS,
		LoCodec:        s.loCodec,
		LoSource:       s.loSource,
	}
	if fs.Changed("lo-quality") {
		cfg.LoQuality = s.loQuality.v
		if !fs.Changed("lo-size") && !fs.Changed("lo-codec") && !fs.Changed("lo-fps") && s.loSource == "" {
			return fail(errors.New("--lo-quality: give --lo-size for a small tier"))
		}
	}
	// Checked before connecting, so that a mistake is reported at once.
	if err := cfg.Validate(); err != nil {
		return fail(err)
	}
	if cfg.Passthrough() {
		for _, f := range []string{"fps", "size", "quality"} {
			if fs.Changed(f) {
				log.Warn("--"+f+" does not apply: the camera's H.264 is passed through as it comes", "camera", s.id)
			}
		}
	}

	if cfg.DecodesNothing() && os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1) // see agent.Config.DecodesNothing
	}

	// With Retry, Dial fails only on a malformed URL or option: a
	// configuration error. An unreachable server is retried forever.
	nc, err := natsconn.Dial(s.nats, natsconn.DialOptions{Name: "camhub-agent " + s.id, Retry: true, Auth: s.auth}, log.With("camera", s.id))
	if err != nil {
		return fail(err)
	}
	defer natsconn.Close(nc)
	a, err := agent.New(cfg, nc, log)
	if err != nil {
		return fail(err)
	}
	var serving sync.WaitGroup
	if s.http != "" {
		// Serves until Run has returned: the final state stays visible
		// to a scrape until then.
		hctx, stop := context.WithCancel(context.Background())
		defer func() { stop(); serving.Wait() }()
		h := ops.Handler(a.Collector(), func() (bool, any) { return a.Health() })
		serving.Add(1)
		go func() {
			defer serving.Done()
			if err := ops.Serve(hctx, s.http, h, log); err != nil {
				log.Error("metrics endpoint failed", "error", err)
			}
		}()
	}
	if err := a.Run(ctx); err != nil {
		log.Error("agent failed", "camera", s.id, "error", err)
		return cli.ExitFailure
	}
	return cli.ExitOK
}

// optSize is a --size-like flag that is unset (zero) by default, shown as
// such in the help.
type optSize struct{ cli.Size }

func (s *optSize) String() string {
	if s.X == 0 && s.Y == 0 {
		return ""
	}
	return s.Size.String()
}

// Set takes "" as unset, for an empty key in the YAML file.
func (s *optSize) Set(v string) error {
	if strings.TrimSpace(v) == "" {
		s.Point = image.Point{}
		return nil
	}
	return s.Size.Set(v)
}

// intRange is a pflag.Value for an integer within [min, max].
type intRange struct{ v, min, max int }

func (r *intRange) String() string { return strconv.Itoa(r.v) }
func (r *intRange) Type() string   { return "int" }
func (r *intRange) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%q is not an integer", s)
	}
	if n < r.min || n > r.max {
		return fmt.Errorf("%d is out of range %d-%d", n, r.min, r.max)
	}
	r.v = n
	return nil
}
