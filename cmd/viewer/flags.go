package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"camhub/internal/cli"
	"camhub/internal/config"
	"camhub/internal/natsconn"
	"camhub/viewer"
)

// runFlags are the flags that say what to do this once, not how the
// viewer is set up: they are not read from the file or the environment,
// where they would, say, rewind every grid started.
var runFlags = []string{"cam", "since", "at", "speed", "from", "to", "out", "event"}

// options is everything the command line, environment and file said.
type options struct {
	command *command
	cams    []string
	nats    string
	auth    natsconn.Auth
	// joinInArgs: --join was given on the command line, for a warning
	joinInArgs bool
	size       cli.Size
	cli.Common
	json      bool
	http      string // serve the grid to browsers here instead of a window
	httpCert  string // and over HTTPS with this certificate
	httpKey   string
	httpPlain bool // plain HTTP although the join token has a web certificate

	// the grid's rewind (since also sets the start of an export)
	since time.Duration
	at    timeValue
	speed float64
	tier  string // the grid's tier pin
	// export and snapshot
	cam      string
	from, to timeValue
	out      string
	outDir   string
	format   clipFormat
	event    string // export: the event whose clip to write
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
var commonFlags = []string{config.FileFlag, "nats", "user", "password-file", "tls-ca", "join", "join-file", "state-dir", "log-level", "version", "help"}

// commands is viewer's command table. A new command is a line here and
// its run function.
var commands = []*command{
	{"", "show the grid (the default)", runGrid, []string{"cams", "window-size", "since", "at", "speed", "tier", "http", "http-tls-cert", "http-tls-key"}},
	{"list", "print the cameras the hub knows, with their state (--json for JSON)", runList, []string{"json"}},
	{"snapshot", "write the newest frame of cameras in the replay buffer as JPEGs", runSnapshot, []string{"cam", "cams", "out", "out-dir"}},
	{"export", "write a video clip of cameras from the replay buffer", runExport,
		[]string{"cam", "cams", "since", "from", "to", "out", "out-dir", "format", "event"}},
	{"events", "list the motion events the hub keeps, newest last (--cam, --since, --json)", runEvents, []string{"cam", "since", "json"}},
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

// parse reads the settings; it returns pflag.ErrHelp after printing --help
// to stdout.
func parse(args []string, stdout io.Writer) (*options, error) {
	fs := pflag.NewFlagSet("viewer", pflag.ContinueOnError)
	fs.SetOutput(io.Discard) // run reports errors itself
	fs.Usage = func() {
		var list strings.Builder
		for _, c := range commands {
			if c.name != "" {
				fmt.Fprintf(&list, "  %-9s %s\n", c.name, c.summary)
			}
		}
		fmt.Fprintf(stdout, usage, list.String())
		fmt.Fprint(stdout, fs.FlagUsages())
	}
	o := options{size: cli.Size{Point: viewer.DefaultSize, Min: viewer.MinSize, Max: viewer.MaxSize}, format: "mp4"}
	fs.String(config.FileFlag, "", "YAML configuration `file`")
	fs.StringSliceVar(&o.cams, "cams", nil, "cameras to show (or export, snapshot), in this order (comma-separated `ids`; grid default: every camera on the hub)")
	fs.StringVar(&o.nats, "nats", natsconn.DefaultNATS, "NATS server or cluster of the hub (comma-separated `URLs`)")
	o.auth.AddFlags(fs)
	fs.Var(&o.size, "window-size", "size of the grid window")
	fs.StringVar(&o.http, "http", "", "serve the grid to browsers on this `host:port` (e.g. :8080) instead of opening a window; with --user, visitors log in as users of the hub and see the cameras it lets them")
	fs.StringVar(&o.httpCert, "http-tls-cert", "", "with --http: serve HTTPS with this PEM certificate `file` (with --http-tls-key)")
	fs.StringVar(&o.httpKey, "http-tls-key", "", "with --http: the HTTPS certificate's private key `file` (PEM)")
	fs.BoolVar(&o.httpPlain, "http-plain", false, "with --http and a join token that carries a web certificate (hub user add --web-host): serve plain HTTP anyway")
	o.AddFlags(fs)
	fs.BoolVar(&o.json, "json", false, "list: print JSON instead of a table")
	fs.DurationVar(&o.since, "since", 0, "grid: rewind this far (e.g. 20s, 2m) and play on into live; export: the clip starts this long ago")
	fs.Var(&o.at, "at", "grid: rewind to this capture time (RFC 3339, e.g. 2026-11-24T08:00:05Z) and play on into live")
	fs.Float64Var(&o.speed, "speed", 1, "grid: playback speed of a rewind: 1 stays behind live, 2 plays twice as fast until it catches up")
	fs.StringVar(&o.tier, "tier", viewer.TierAuto, "grid: the `tier` cameras with a small tier are read at: auto (the small tier while\n"+
		"a tile is at most half the camera's size, e.g. in a grid of many; the main one alone),\n"+
		"main or lo; the t key in the window changes it, 1-9 shows one camera alone, 0 them all")
	fs.StringVar(&o.cam, "cam", "", "export, snapshot: the camera (`id`)")
	fs.Var(&o.from, "from", "export: capture time of the clip's start (RFC 3339; default: the oldest frame in the buffer)")
	fs.Var(&o.to, "to", "export: capture time of the clip's end (RFC 3339; default: the newest frame in the buffer)")
	fs.StringVar(&o.out, "out", "", "export, snapshot: the `file` to write (.mp4 or .avi; .jpg)")
	fs.StringVar(&o.outDir, "out-dir", "", "export, snapshot: write a file per camera into this `directory`, named <id>.mp4 (--format) or <id>.jpg")
	fs.Var(&o.format, "format", "export with --out-dir: clip format, mp4 or avi")
	fs.StringVar(&o.event, "event", "", "export: write the clip of this event (`id`, from `viewer events`) to --out")

	if err := config.Load(fs, args, append([]string{"version"}, runFlags...)...); err != nil {
		return nil, err
	}
	name := ""
	switch fs.NArg() {
	case 0:
	case 1:
		name = fs.Arg(0)
	default:
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(1))
	}
	for _, c := range commands {
		if c.name == name {
			o.command = c
		}
	}
	if o.command == nil {
		return nil, fmt.Errorf("unknown command %q; the commands are: %s", name, commandNames())
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
	// A joined viewer connects to the token's hub unless told otherwise.
	if _, err := o.auth.Resolve(natsconn.KindViewer, ""); err != nil {
		return nil, err
	}
	o.joinInArgs = natsconn.JoinInArgs(args)
	o.nats = o.auth.URLs(o.nats, fs.Changed("nats"))
	o.cams = cli.SplitList(o.cams)
	if err := viewer.CheckCams(o.cams); err != nil {
		return nil, fmt.Errorf("--cams: %w", err)
	}
	var err error
	switch o.command.name {
	case "":
		if err = viewer.CheckTier(o.tier); err != nil {
			return nil, fmt.Errorf("--tier: %w", err)
		}
		err = o.checkRewind(fs)
	case "export":
		if o.event != "" {
			err = o.checkEvent(fs)
		} else if err = o.checkTargets(fs, "export"); err == nil {
			err = o.checkRange()
		}
	case "snapshot":
		err = o.checkTargets(fs, "snapshot")
	case "events":
		err = o.checkEvents()
	}
	if err != nil {
		return nil, err
	}
	return &o, nil
}
