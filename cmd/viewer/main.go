// Command viewer shows camhub cameras: a live grid of them in one window,
// rewound from the hub's replay buffer if asked, the list of cameras the
// hub knows, and clips and snapshots written from the buffer.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/pflag"

	"camhub/internal/camlist"
	"camhub/internal/cli"
	"camhub/internal/config"
	"camhub/internal/replay"
	"camhub/internal/version"
	"camhub/viewer"
	"camhub/web"
)

// Qt wants its windows on the process's main thread: keep the main
// goroutine there.
func init() { runtime.LockOSThread() }

const usage = `viewer - watch camhub cameras

Shows a live grid of cameras in one window: each tile holds a camera's
newest frame with its id, frames per second and the age of the frame, or
"no signal" when the camera has sent nothing for 3 s. Without --cams it
shows every camera the hub knows and adds cameras as they appear. Press q
or Esc (or close the window) to quit. The viewer waits for the hub if it is
not up yet and reconnects forever.

With --since or --at the grid starts in the past, from the hub's replay
buffer (its last 30 s unless the hub keeps more: hub --replay), plays all
cameras in time sync at the pace they were captured, and carries on live
with no gap and no frame twice. Each tile says how far behind live it is
("REPLAY -12.3s", in amber). At --speed 1, the default, playback stays that
far behind: a time-shifted view. To catch up with live, play faster:
--speed 2 gains a second every second. Asking for more than the buffer
holds starts at its oldest frame and says so. Without --cams a rewind shows
the cameras the hub knows when it starts. The hub must be up.

Usage:
  viewer [flags]              show the grid
  viewer <command> [flags]

Commands:
%s
Examples:
  viewer                                   # every camera on the local hub
  viewer --cams front,back --nats nats://hub.local:4222
  viewer --window-size 1920x1080 --config /etc/camhub/viewer.yaml
  viewer --http :8080                      # the grid in a browser: http://this-host:8080
  viewer --cams front,back --since 20s     # what just happened: 20 s behind live
  viewer --since 30s --speed 2             # every camera, catching up with live in 30 s
  viewer --at 2026-11-24T08:00:05Z         # from a time (RFC 3339) still in the buffer
  viewer list
  viewer list --json | jq '.[] | select(.state == "live") | .id'
  viewer snapshot --cam front --out front.jpg
  viewer snapshot --cams front,back --out-dir snaps        # snaps/front.jpg, snaps/back.jpg
  viewer export --cam front --since 60s --out front.mp4
  viewer export --cam front --from 2026-11-24T08:00:00Z --to 2026-11-24T08:00:20Z --out front.avi
  viewer export --cams front,back --out-dir clips          # the whole buffer: clips/front.mp4 ...

export writes one video frame per frame captured, at the rate they were
captured: .mp4 is H.264 (MPEG-4 Part 2 where OpenCV has no H.264 encoder),
.avi is Motion JPEG. Without --since, --from or --to it writes everything
the buffer holds; with several cameras every clip covers the same time. On
a terminal it shows its progress on stderr. A file appears complete or not
at all: an error or Ctrl-C leaves none. snapshot writes the newest frame in
the buffer as it was sent, without waiting for the next. Both print what
they wrote. Exit status: 0 done, 1 failed, 2 bad flags or request.

Every flag can also be set as a key in the --config YAML file (cams may be
a YAML list) or as an environment variable CAMHUB_<FLAG> (e.g.
CAMHUB_WINDOW_SIZE=1920x1080); flags override the environment, which
overrides the file. The flags for one run only, --cam, --since, --at,
--speed, --from, --to and --out, are command-line flags only.

Flags:
`

// runFlags are the flags that say what to do this once, not how the
// viewer is set up: they are not read from the file or the environment,
// where they would, say, rewind every grid started.
var runFlags = []string{"cam", "since", "at", "speed", "from", "to", "out"}

// options is everything the command line, environment and file said.
type options struct {
	command  *command
	cams     []string
	nats     string
	auth     cli.Auth
	size     viewer.Size
	logLevel string
	version  bool
	json     bool
	http     string // serve the grid to browsers here instead of a window
	httpCert string // and over HTTPS with this certificate
	httpKey  string

	// the grid's rewind (since also sets the start of an export)
	since time.Duration
	at    timeValue
	speed float64
	// export and snapshot
	cam      string
	from, to timeValue
	out      string
	outDir   string
	format   clipFormat
}

// command is one of viewer's commands; the one without a name is the default.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, o *options, stdout, stderr io.Writer, log *slog.Logger) int
	// flags are the flags that apply to this command besides those that
	// apply to every command (commonFlags); others are refused.
	flags []string
}

// commonFlags apply to every command.
var commonFlags = []string{config.FileFlag, "nats", "user", "password-file", "tls-ca", "log-level", "version", "help"}

// commands is viewer's command table. A new command is a line here and
// its run function.
var commands = []*command{
	{"", "show the grid (the default)", runGrid, []string{"cams", "window-size", "since", "at", "speed", "http", "http-tls-cert", "http-tls-key"}},
	{"list", "print the cameras the hub knows, with their state (--json for JSON)", runList, []string{"json"}},
	{"snapshot", "write the newest frame of cameras in the replay buffer as JPEGs", runSnapshot, []string{"cam", "cams", "out", "out-dir"}},
	{"export", "write a video clip of cameras from the replay buffer", runExport,
		[]string{"cam", "cams", "since", "from", "to", "out", "out-dir", "format"}},
}

// label is how help and errors name a command.
func (c *command) label() string {
	if c.name == "" {
		return "`viewer`"
	}
	return "`viewer " + c.name + "`"
}

// appliesTo names the commands flag applies to: "`viewer list`",
// "`viewer` and `viewer export`".
func appliesTo(flag string) string {
	var names []string
	for _, c := range commands {
		if slices.Contains(c.flags, flag) {
			names = append(names, c.label())
		}
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func commandNames() string {
	var names []string
	for _, c := range commands {
		if c.name != "" {
			names = append(names, c.name)
		}
	}
	return strings.Join(names, ", ")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// parse reads the settings; it returns pflag.ErrHelp after printing --help.
func parse(args []string, stderr io.Writer) (*options, error) {
	fs := pflag.NewFlagSet("viewer", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		var list strings.Builder
		for _, c := range commands {
			if c.name != "" {
				fmt.Fprintf(&list, "  %-9s %s\n", c.name, c.summary)
			}
		}
		fmt.Fprintf(stderr, usage, list.String())
		fs.PrintDefaults()
	}
	o := options{size: viewer.DefaultSize, format: "mp4"}
	fs.String(config.FileFlag, "", "YAML configuration `file`")
	fs.StringSliceVar(&o.cams, "cams", nil, "cameras to show (or export, snapshot), in this order (comma-separated `ids`; grid default: every camera on the hub)")
	fs.StringVar(&o.nats, "nats", cli.DefaultNATS, "NATS server or cluster of the hub (comma-separated `URLs`)")
	o.auth.AddFlags(fs)
	fs.Var(&o.size, "window-size", "size of the grid window")
	fs.StringVar(&o.http, "http", "", "serve the grid to browsers on this `host:port` (e.g. :8080) instead of opening a window")
	fs.StringVar(&o.httpCert, "http-tls-cert", "", "with --http: serve HTTPS with this PEM certificate `file` (with --http-tls-key)")
	fs.StringVar(&o.httpKey, "http-tls-key", "", "with --http: the HTTPS certificate's private key `file` (PEM)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.BoolVar(&o.json, "json", false, "list: print JSON instead of a table")
	fs.DurationVar(&o.since, "since", 0, "grid: rewind this far (e.g. 20s, 2m) and play on into live; export: the clip starts this long ago")
	fs.Var(&o.at, "at", "grid: rewind to this capture time (RFC 3339, e.g. 2026-11-24T08:00:05Z) and play on into live")
	fs.Float64Var(&o.speed, "speed", 1, "grid: playback speed of a rewind: 1 stays behind live, 2 plays twice as fast until it catches up")
	fs.StringVar(&o.cam, "cam", "", "export, snapshot: the camera (`id`)")
	fs.Var(&o.from, "from", "export: capture time of the clip's start (RFC 3339; default: the oldest frame in the buffer)")
	fs.Var(&o.to, "to", "export: capture time of the clip's end (RFC 3339; default: the newest frame in the buffer)")
	fs.StringVar(&o.out, "out", "", "export, snapshot: the `file` to write (.mp4 or .avi; .jpg)")
	fs.StringVar(&o.outDir, "out-dir", "", "export, snapshot: write a file per camera into this `directory`, named <id>.mp4 (--format) or <id>.jpg")
	fs.Var(&o.format, "format", "export with --out-dir: clip format, mp4 or avi")

	if err := config.Load(fs, args, append([]string{"version"}, runFlags...)...); err != nil {
		return nil, err
	}
	name := ""
	switch fs.NArg() {
	case 0:
	case 1:
		name = fs.Arg(0)
	default:
		return nil, fmt.Errorf("unexpected argument %q (see viewer --help)", fs.Arg(1))
	}
	for _, c := range commands {
		if c.name == name {
			o.command = c
		}
	}
	if o.command == nil {
		return nil, fmt.Errorf("unknown command %q; the commands are: %s (see viewer --help)", name, commandNames())
	}
	var misplaced error
	fs.Visit(func(f *pflag.Flag) { // the flags given on the command line
		if misplaced == nil && !slices.Contains(commonFlags, f.Name) && !slices.Contains(o.command.flags, f.Name) {
			misplaced = fmt.Errorf("--%s applies to %s only", f.Name, appliesTo(f.Name))
		}
	})
	if misplaced != nil {
		return nil, misplaced
	}
	o.cams = viewer.ParseCams(o.cams)
	if err := viewer.CheckCams(o.cams); err != nil {
		return nil, fmt.Errorf("--cams: %w", err)
	}
	var err error
	switch o.command.name {
	case "":
		err = o.checkRewind(fs)
	case "export":
		if err = o.checkTargets(fs, "export"); err == nil {
			err = o.checkRange()
		}
	case "snapshot":
		err = o.checkTargets(fs, "snapshot")
	}
	if err != nil {
		return nil, err
	}
	return &o, nil
}

// checkRewind checks the grid's rewind flags.
func (o *options) checkRewind(fs *pflag.FlagSet) error {
	switch {
	case o.since != 0 && !o.at.t.IsZero():
		return errors.New("--since and --at both say where to start: give one")
	case o.since < 0:
		return fmt.Errorf("--since %v: must be positive, such as 20s", o.since)
	case o.at.t.After(time.Now()):
		return fmt.Errorf("--at %s is in the future; the replay buffer holds the past", o.at.String())
	case fs.Changed("speed") && !o.rewinding():
		return errors.New("--speed applies to a rewind only: give --since or --at too")
	case !(o.speed >= replay.MinSpeed && o.speed <= replay.MaxSpeed):
		return fmt.Errorf("--speed %v: must be from %v to %v (1 is real time, 2 twice as fast)", o.speed, replay.MinSpeed, replay.MaxSpeed)
	}
	return nil
}

// rewinding reports whether the grid starts in the past.
func (o *options) rewinding() bool { return o.since > 0 || !o.at.t.IsZero() }

// checkTargets checks the cameras and files of an export or a snapshot.
func (o *options) checkTargets(fs *pflag.FlagSet, what string) error {
	if fs.Changed("cam") && fs.Changed("cams") {
		return errors.New("--cam and --cams both name the cameras: give one")
	}
	if fs.Changed("out") && fs.Changed("out-dir") {
		return errors.New("--out and --out-dir both say where to write: give one")
	}
	if o.cam != "" {
		// a camera named for this run wins over cams from the file
		o.cams = []string{o.cam}
		if err := viewer.CheckCams(o.cams); err != nil {
			return fmt.Errorf("--cam: %w", err)
		}
	}
	switch {
	case len(o.cams) == 0:
		return errors.New("which camera? give --cam ID (or --cams ID,ID... with --out-dir DIR); `viewer list` shows them")
	case o.out != "" && len(o.cams) > 1:
		return fmt.Errorf("--out names one file, for one camera, but the cameras are %s: give --cam ID, or --out-dir DIR to %s them all",
			strings.Join(o.cams, ","), what)
	case o.out == "" && o.outDir == "":
		return errors.New("where to? give --out FILE or --out-dir DIR")
	case o.out != "" && fs.Changed("format"):
		return errors.New("--format applies with --out-dir; with --out the file name's extension (.mp4 or .avi) chooses the format")
	}
	return nil
}

// checkRange checks an export's time range.
func (o *options) checkRange() error {
	switch {
	case o.since != 0 && (!o.from.t.IsZero() || !o.to.t.IsZero()):
		return errors.New("--since cannot be combined with --from or --to: give --since (up to now) or --from and --to")
	case o.since < 0:
		return fmt.Errorf("--since %v: must be positive, such as 60s", o.since)
	case !o.from.t.IsZero() && !o.to.t.IsZero() && o.from.t.After(o.to.t):
		return fmt.Errorf("--from %s is after --to %s", o.from.String(), o.to.String())
	}
	return nil
}

// timeValue is a flag holding an RFC 3339 time; zero if not set.
type timeValue struct{ t time.Time }

// String implements pflag.Value.
func (v *timeValue) String() string {
	if v.t.IsZero() {
		return ""
	}
	return v.t.Format(time.RFC3339Nano)
}

// Set implements pflag.Value.
func (v *timeValue) Set(s string) error {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return errors.New("not an RFC 3339 time such as 2026-11-24T08:00:05Z or 2026-11-24T09:00:05.5+01:00")
	}
	v.t = t
	return nil
}

// Type implements pflag.Value.
func (v *timeValue) Type() string { return "time" }

// clipFormat is the format of exported clips: "mp4" or "avi".
type clipFormat string

// String implements pflag.Value.
func (f *clipFormat) String() string { return string(*f) }

// Set implements pflag.Value.
func (f *clipFormat) Set(s string) error {
	switch v := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(s), ".")); v {
	case "mp4", "avi":
		*f = clipFormat(v)
		return nil
	}
	return errors.New("want mp4 or avi")
}

// Type implements pflag.Value.
func (f *clipFormat) Type() string { return "format" }

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "viewer:", err)
		return 2
	}
	if o.version {
		fmt.Fprintln(stdout, "camhub viewer", version.String())
		return 0
	}
	log, err := cli.NewLogger(o.logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "viewer:", err)
		return 2
	}
	ctx, stop := cli.SignalContext()
	defer stop()
	return o.command.run(ctx, o, stdout, stderr, log)
}

// runGrid shows the grid window, or serves it to browsers with --http.
func runGrid(ctx context.Context, o *options, stdout, stderr io.Writer, log *slog.Logger) int {
	if o.http != "" {
		return runWeb(ctx, o, log)
	}
	if o.httpCert != "" || o.httpKey != "" {
		log.Error("--http-tls-cert and --http-tls-key go with --http")
		return 2
	}
	// fail before connecting: without a display Qt aborts the process
	if err := viewer.CheckDisplay(); err != nil {
		log.Error("cannot open the window", "error", err)
		return 1
	}
	log.Info("camhub viewer starting", "version", version.String(), "cams", strings.Join(o.cams, ","))
	// A rewind reads the buffer at once: it needs the hub up.
	nc, err := cli.Dial(o.nats, cli.DialOptions{Name: "camhub-viewer", Retry: !o.rewinding(), Auth: o.auth}, log)
	if err != nil {
		log.Error("cannot connect", "error", err)
		return 1
	}
	defer nc.Close()
	cfg := viewer.Config{Cams: o.cams, WindowSize: o.size}
	if o.rewinding() {
		cfg.Rewind, cfg.Speed = o.at.t, o.speed
		if cfg.Rewind.IsZero() {
			cfg.Rewind = time.Now().Add(-o.since)
		}
		if len(cfg.Cams) == 0 {
			if cfg.Cams, err = hubCameras(ctx, nc, log); err != nil {
				log.Error("cannot rewind", "error", err)
				return 1
			}
		}
	}
	v, err := viewer.New(cfg, nc, log)
	if err != nil {
		log.Error("viewer failed to start", "error", err)
		return 1
	}
	defer v.Close()
	if err := v.Run(ctx); err != nil {
		log.Error("viewer failed", "error", err)
		return 1
	}
	return 0
}

// runWeb serves the grid, the HTTP API and metrics to browsers.
func runWeb(ctx context.Context, o *options, log *slog.Logger) int {
	if o.rewinding() {
		log.Error("--since and --at rewind the window; the web page has its own rewind buttons (and ?since= on streams)")
		return 2
	}
	log.Info("camhub web viewer starting", "version", version.String(), "cams", strings.Join(o.cams, ","), "http", o.http)
	nc, err := cli.Dial(o.nats, cli.DialOptions{Name: "camhub-viewer-web", Retry: true, Auth: o.auth}, log)
	if err != nil {
		log.Error("cannot connect", "error", err)
		return 1
	}
	defer nc.Close()
	srv, err := web.New(web.Config{Addr: o.http, Cams: o.cams, TLSCert: o.httpCert, TLSKey: o.httpKey}, nc, log)
	if err != nil {
		log.Error("web viewer failed to start", "error", err)
		return 1
	}
	defer srv.Close()
	if err := srv.Run(ctx); err != nil {
		log.Error("web viewer failed", "error", err)
		return 1
	}
	return 0
}

// hubCameras returns the ids of the cameras the hub knows, for a rewind
// without --cams.
func hubCameras(ctx context.Context, nc *nats.Conn, log *slog.Logger) ([]string, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cams, err := camlist.List(ctx, js, time.Now())
	if err != nil {
		return nil, err
	}
	if len(cams) == 0 {
		return nil, errors.New("the hub knows no cameras yet: nothing to rewind (give --cams to wait for particular ones)")
	}
	ids := make([]string, 0, len(cams))
	for _, c := range cams {
		ids = append(ids, c.ID)
	}
	if len(ids) > viewer.MaxCameras {
		log.Warn("too many cameras for one grid; showing the first by id", "cameras", len(ids), "shown", viewer.MaxCameras)
		ids = ids[:viewer.MaxCameras]
	}
	return ids, nil
}

// runList prints the camera list.
func runList(ctx context.Context, o *options, stdout, stderr io.Writer, log *slog.Logger) int {
	nc, js, err := dialOnce(o, stderr, log)
	if err != nil {
		fmt.Fprintln(stderr, "viewer list:", err)
		return 1
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// camlist.ErrNoHub's message says what to do
	if err := viewer.PrintList(ctx, js, stdout, o.json); err != nil {
		fmt.Fprintln(stderr, "viewer list:", err)
		return 1
	}
	return 0
}
