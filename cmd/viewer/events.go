package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"camhub/internal/cli"
	"camhub/internal/export"
	"camhub/internal/humantime"
	"camhub/internal/natsconn"
	"camhub/internal/replay"
	"camhub/internal/wire"
)

// defaultEventsSince is how far back `viewer events` looks without --since.
const defaultEventsSince = 24 * time.Hour

// checkEvent checks `viewer export --event`.
func (o *options) checkEvent(fs *pflag.FlagSet) error {
	for _, f := range []string{"cam", "cams", "since", "from", "to", "out-dir", "format"} {
		if fs.Changed(f) {
			return fmt.Errorf("--event names the clip: --%s does not go with it", f)
		}
	}
	if err := wire.ValidateEventID(o.event); err != nil {
		return fmt.Errorf("--event: %w", err)
	}
	if o.out == "" {
		return errors.New("where to? give --out FILE (.mp4, or .avi for a JPEG camera)")
	}
	return nil
}

// checkEvents checks `viewer events`.
func (o *options) checkEvents() error {
	if o.cam != "" {
		if err := wire.ValidateID(o.cam); err != nil {
			return fmt.Errorf("--cam: %w", err)
		}
	}
	if o.since < 0 {
		return fmt.Errorf("--since %v: must be positive, such as 24h", o.since)
	}
	return nil
}

// runEvents lists the events EVENTS holds.
func runEvents(ctx context.Context, o *options, stdout, stderr io.Writer, log *slog.Logger) int {
	nc, js, err := dialOnce(o, stderr, log)
	if err != nil {
		fmt.Fprintln(stderr, "viewer events:", err)
		return cli.ExitFailure
	}
	defer natsconn.Close(nc)
	since := o.since
	if since == 0 {
		since = defaultEventsSince
	}
	now := time.Now()
	evs, bad, err := replay.Events(ctx, js, o.cam, now.Add(-since))
	if err != nil {
		fmt.Fprintln(stderr, "viewer events:", err)
		return cli.ExitFailure
	}
	if bad > 0 {
		fmt.Fprintf(stderr, "viewer events: %d documents in %s that are not camhub events left out\n", bad, wire.EventsStream)
	}
	if o.json {
		if evs == nil {
			evs = []wire.Event{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(evs); err != nil {
			return cli.ExitFailure
		}
		return cli.ExitOK
	}
	if len(evs) == 0 {
		fmt.Fprintf(stdout, "no events in the last %v\n", since)
		return cli.ExitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT\tCAMERA\tSTART\tLENGTH\tSCORE\tCLIP")
	for _, e := range evs {
		length, clip := "going on", "being stored"
		if !e.Open() {
			length = e.End.Sub(e.Start).Round(100 * time.Millisecond).String()
			clip = fmt.Sprintf("%d frames, %.1f MB", e.Clip.Frames, float64(e.Clip.Bytes)/1e6)
			if e.Clip.Missing != "" {
				clip += " (incomplete)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f%%\t%s\n", e.ID, e.Camera, humantime.ClockMilli(e.Start, now), length, 100*e.Score, clip)
	}
	tw.Flush()
	return cli.ExitOK
}

// runExportEvent writes an event's clip.
func runExportEvent(ctx context.Context, o *options, stdout, stderr io.Writer, log *slog.Logger) int {
	nc, js, err := dialOnce(o, stderr, log)
	if err != nil {
		fmt.Fprintln(stderr, "viewer export:", err)
		return cli.ExitFailure
	}
	defer natsconn.Close(nc)
	p := newProgress(stderr, o.event, isTerminal(stderr), time.Now)
	res, err := export.Event(ctx, js, o.event, o.out, p.update)
	p.clear()
	if err != nil {
		fmt.Fprintln(stderr, "viewer export:", err)
		return exitCode(err)
	}
	fmt.Fprintln(stdout, summary(o.out, res, time.Now()))
	return cli.ExitOK
}
