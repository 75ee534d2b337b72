// Command viewer shows camhub cameras: a live grid of them in one window,
// or the list of cameras the hub knows.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/pflag"

	"camhub/internal/cli"
	"camhub/internal/config"
	"camhub/internal/version"
	"camhub/viewer"
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

Usage:
  viewer [flags]              show the grid
  viewer <command> [flags]

Commands:
%s
Examples:
  viewer                                   # every camera on the local hub
  viewer --cams front,back --nats nats://hub.local:4222
  viewer --window-size 1920x1080 --config /etc/camhub/viewer.yaml
  viewer list
  viewer list --json | jq '.[] | select(.state == "live") | .id'

Every flag can also be set as a key in the --config YAML file (cams may be
a YAML list) or as an environment variable CAMHUB_<FLAG> (e.g.
CAMHUB_WINDOW_SIZE=1920x1080); flags override the environment, which
overrides the file.

Flags:
`

// options is everything the command line, environment and file said.
type options struct {
	command  *command
	cams     []string
	nats     string
	size     viewer.Size
	logLevel string
	version  bool
	json     bool
}

// command is one of viewer's commands; the one without a name is the default.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, o *options, stdout, stderr io.Writer, log *slog.Logger) int
}

// commands is viewer's command table. A new command is a line here and
// its run function.
var commands = []*command{
	{"", "show the live grid (the default)", runGrid},
	{"list", "print the cameras the hub knows, with their state (--json for JSON)", runList},
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
				fmt.Fprintf(&list, "  %-8s %s\n", c.name, c.summary)
			}
		}
		fmt.Fprintf(stderr, usage, list.String())
		fs.PrintDefaults()
	}
	o := options{size: viewer.DefaultSize}
	fs.String(config.FileFlag, "", "YAML configuration `file`")
	fs.StringSliceVar(&o.cams, "cams", nil, "cameras to show, in this order (comma-separated `ids`; default: every camera on the hub)")
	fs.StringVar(&o.nats, "nats", cli.DefaultNATS, "NATS server or cluster of the hub (comma-separated `URLs`)")
	fs.Var(&o.size, "window-size", "size of the grid window")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.BoolVar(&o.json, "json", false, "list: print JSON instead of a table")

	if err := config.Load(fs, args, "version"); err != nil {
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
	if fs.Changed("json") && o.command.name != "list" {
		return nil, errors.New("--json applies to `viewer list` only")
	}
	o.cams = viewer.ParseCams(o.cams)
	if err := viewer.CheckCams(o.cams); err != nil {
		return nil, fmt.Errorf("--cams: %w", err)
	}
	return &o, nil
}

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

// runGrid shows the grid window.
func runGrid(ctx context.Context, o *options, stdout, stderr io.Writer, log *slog.Logger) int {
	// fail before connecting: without a display Qt aborts the process
	if err := viewer.CheckDisplay(); err != nil {
		log.Error("cannot open the window", "error", err)
		return 1
	}
	log.Info("camhub viewer starting", "version", version.String(), "cams", strings.Join(o.cams, ","))
	nc, err := cli.Dial(o.nats, cli.DialOptions{Name: "camhub-viewer", Retry: true}, log)
	if err != nil {
		log.Error("cannot connect", "error", err)
		return 1
	}
	defer nc.Close()
	v, err := viewer.New(viewer.Config{Cams: o.cams, WindowSize: o.size}, nc, log)
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

// runList prints the camera list.
func runList(ctx context.Context, o *options, stdout, stderr io.Writer, log *slog.Logger) int {
	if o.logLevel == "info" {
		// connection chatter would only clutter a one-shot listing
		log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	nc, err := cli.Dial(o.nats, cli.DialOptions{Name: "camhub-viewer-list"}, log)
	if err != nil {
		fmt.Fprintln(stderr, "viewer list:", err)
		return 1
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Fprintln(stderr, "viewer list:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// camlist.ErrNoHub's message says what to do
	if err := viewer.PrintList(ctx, js, stdout, o.json); err != nil {
		fmt.Fprintln(stderr, "viewer list:", err)
		return 1
	}
	return 0
}
