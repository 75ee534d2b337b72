// Command detector runs camhub's motion detector as a process of its own,
// next to a hub that has none (one built without cgo, or run with
// --motion=false), or to spread the cameras over several machines with
// --motion-cams.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/pflag"

	"camhub/detector"
	"camhub/internal/cli"
	"camhub/internal/config"
	"camhub/internal/motion"
	"camhub/internal/natsconn"
	"camhub/internal/version"
)

const usage = `detector - camhub's motion detector

Analyses the cameras of a hub for motion and keeps events and clips, as a
hub built with cgo does in its own process (see the hub's --motion flags):
motion ON/OFF on cams.<id>.motion, events on cams.<id>.events (stream
EVENTS) and each event's clip in the stream CLIPS. Run one detector per
camera: a camera analysed by two detectors has every event twice. To share
cameras between several detectors, give each its own --motion-cams.

Usage:
  detector [flags]

Examples:
  detector --join-file detector.join     # hub user add detector --role admin >detector.join
  detector --nats nats://hub.lan:4222
  detector --motion-cams front,garden --motion-threshold 30

Every flag can also be set as a key in the --config YAML file or as an
environment variable CAMHUB_<FLAG>; flags override the environment, which
overrides the file.

Flags:
`

func main() {
	ctx, stop := cli.SignalContext()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type options struct {
	nats     string
	auth     natsconn.Auth
	motion   motion.Flags
	snapshot time.Duration
	cli.Common
}

func parse(args []string, stdout io.Writer) (*options, error) {
	fs := pflag.NewFlagSet("detector", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() { fmt.Fprint(stdout, usage, fs.FlagUsages()) }
	var o options
	fs.String(config.FileFlag, "", "YAML configuration `file`")
	fs.StringVar(&o.nats, "nats", natsconn.DefaultNATS, "NATS server or cluster of the hub (comma-separated `URLs`)")
	o.auth.AddFlags(fs)
	o.motion.Add(fs, true)
	fs.DurationVar(&o.snapshot, "snapshot-every", 0, "publish each H.264 camera's picture on cams.<id>.snapshot this often, e.g. 10s, for a hub with --mqtt and Home Assistant (0: off; the hub publishes JPEG cameras' itself)")
	o.AddFlags(fs)
	if err := config.Load(fs, args, "version"); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.motion.Cams = cli.SplitList(o.motion.Cams)
	if _, err := o.motion.Camera(); err != nil {
		return nil, err
	}
	// A joined detector (the token of `hub user add NAME --role admin`)
	// connects to the token's hub unless told otherwise.
	if _, err := o.auth.Resolve(natsconn.KindViewer, ""); err != nil {
		return nil, err
	}
	o.nats = o.auth.URLs(o.nats, fs.Changed("nats"))
	return &o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stdout)
	if err != nil {
		return cli.ParseError(stderr, "detector", err)
	}
	log, code, done := o.Start("detector", stdout, stderr)
	if done {
		return code
	}
	cam, _ := o.motion.Camera() // checked in parse
	nc, err := natsconn.Dial(o.nats, natsconn.DialOptions{Name: "camhub-detector", Retry: true, Auth: o.auth}, log)
	if err != nil {
		log.Error("connecting to the hub", "error", err)
		return cli.ExitFailure
	}
	defer natsconn.Close(nc)
	d, err := detector.New(nc, detector.Config{Defaults: cam, Cameras: o.motion.Cameras, Only: o.motion.Cams, Snapshots: o.snapshot}, log)
	if err != nil {
		return cli.UsageError(stderr, "detector", err)
	}
	log.Info("camhub detector starting", "version", version.String(), "nats", natsconn.RedactURL(o.nats))
	if err := d.Run(ctx); err != nil {
		log.Error("detector failed", "error", err)
		return cli.ExitFailure
	}
	log.Info("camhub detector stopped")
	return cli.ExitOK
}
