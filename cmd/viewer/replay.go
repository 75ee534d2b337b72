package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/cli"
	"camhub/internal/export"
	"camhub/internal/humantime"
	"camhub/internal/natsconn"
	"camhub/internal/replay"
	"camhub/internal/videojpeg"
	"camhub/internal/wire"
)

// This file holds the commands that read the replay buffer once and exit:
// snapshot and export.

// target is a camera and the file to write of it.
type target struct{ id, path string }

// targets lists the files to write: --out for the one camera, or
// --out-dir/<id><ext> for each.
func (o *options) targets(ext string) []target {
	if o.out != "" {
		return []target{{o.cams[0], o.out}}
	}
	ts := make([]target, len(o.cams))
	for i, id := range o.cams {
		ts[i] = target{id, filepath.Join(o.outDir, id+ext)}
	}
	return ts
}

// makeOutDir creates --out-dir if it does not exist yet.
func (o *options) makeOutDir() error {
	if o.outDir == "" {
		return nil
	}
	return os.MkdirAll(o.outDir, 0o755)
}

// dialOnce connects a command that does one thing and exits: it fails at
// once if no server answers, and keeps connection chatter out of its
// output unless a log level was asked for.
func dialOnce(o *options, stderr io.Writer, log *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	if o.LogLevel == "info" {
		log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	nc, err := natsconn.Dial(o.nats, natsconn.DialOptions{Name: "camhub-viewer-" + o.command.name, Auth: o.auth}, log)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		natsconn.Close(nc)
		return nil, nil, err
	}
	return nc, js, nil
}

// exitCode is the exit status for a failed snapshot or export: 2 for a
// request that could never work (such as a file type), 1 otherwise.
func exitCode(err error) int {
	if errors.Is(err, replay.ErrInvalid) {
		return cli.ExitUsage
	}
	return cli.ExitFailure
}

// explain adds what helps to replay's errors: which cameras the buffer
// does hold, how long the hub keeps frames.
func explain(ctx context.Context, js jetstream.JetStream, err error) error {
	switch {
	case errors.Is(err, replay.ErrNoFrames):
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ids, lerr := bufferCameras(ctx, js)
		switch {
		case lerr != nil:
		case len(ids) == 0:
			return fmt.Errorf("%w; the buffer holds no frames of any camera", err)
		default:
			return fmt.Errorf("%w; the buffer holds frames of %s", err, strings.Join(ids, ", "))
		}
	case errors.Is(err, replay.ErrOutOfRange):
		return fmt.Errorf("%w; the hub keeps frames only for its --replay time (30s unless set)", err)
	}
	return err
}

// bufferCameras lists the cameras with frames in the replay buffer.
func bufferCameras(ctx context.Context, js jetstream.JetStream) ([]string, error) {
	st, err := js.Stream(ctx, wire.FramesStream)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, filter := range []string{wire.AllFrames, wire.AllVideo} {
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
		if err != nil {
			return nil, err
		}
		for subject := range info.State.Subjects {
			if id, _, err := wire.ParseSubject(subject); err == nil {
				ids = append(ids, id)
			} else if id, _, err := wire.ParseVideoSubject(subject); err == nil {
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// runSnapshot writes the newest frame of each camera.
func runSnapshot(ctx context.Context, o *options, stdout, stderr io.Writer, log *slog.Logger) int {
	nc, js, err := dialOnce(o, stderr, log)
	if err == nil {
		defer natsconn.Close(nc)
		err = o.makeOutDir()
	}
	if err != nil {
		fmt.Fprintln(stderr, "viewer snapshot:", err)
		return cli.ExitFailure
	}
	code := cli.ExitOK
	for _, tg := range o.targets(".jpg") {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		f, err := replay.WriteSnapshot(sctx, js, tg.id, tg.path, videojpeg.Factory)
		cancel()
		if err != nil {
			fmt.Fprintln(stderr, "viewer snapshot:", explain(ctx, js, err))
			code = max(code, exitCode(err))
			if ctx.Err() != nil || errors.Is(err, replay.ErrNoBuffer) {
				break // the same for every camera
			}
			continue
		}
		now := time.Now()
		fmt.Fprintf(stdout, "wrote %s: %s, %dx%d, frame %d captured %s (%s ago)\n", tg.path,
			humanize.IBytes(uint64(len(f.JPEG))), f.Width, f.Height, f.Seq, humantime.ClockMilli(f.Time, now), age(now.Sub(f.Time)))
	}
	return code
}

// runExport writes a clip of each camera.
func runExport(ctx context.Context, o *options, stdout, stderr io.Writer, log *slog.Logger) int {
	if o.event != "" {
		return runExportEvent(ctx, o, stdout, stderr, log)
	}
	nc, js, err := dialOnce(o, stderr, log)
	if err == nil {
		defer natsconn.Close(nc)
		err = o.makeOutDir()
	}
	if err != nil {
		fmt.Fprintln(stderr, "viewer export:", err)
		return cli.ExitFailure
	}
	from, to := o.from.t, o.to.t
	if o.since > 0 {
		from = time.Now().Add(-o.since)
	}
	targets := o.targets("." + string(o.format))
	if len(targets) > 1 && (from.IsZero() || to.IsZero()) {
		// Every clip covers the same time: from the oldest frame of any
		// of the cameras to the newest now, not when its turn comes.
		first, last, err := span(ctx, js, o.cams)
		if err != nil {
			fmt.Fprintln(stderr, "viewer export:", err)
			return cli.ExitFailure
		}
		if from.IsZero() {
			from = first
		}
		if to.IsZero() {
			to = last
		}
	}
	terminal := isTerminal(stderr)
	code := cli.ExitOK
	for i, tg := range targets {
		p := newProgress(stderr, tg.id, terminal, time.Now)
		res, err := export.Export(ctx, js, export.Options{ID: tg.id, From: from, To: to, Out: tg.path, Progress: p.update})
		p.clear()
		if err != nil && ctx.Err() != nil {
			var left []string
			for _, t := range targets[i:] {
				left = append(left, t.path)
			}
			fmt.Fprintf(stderr, "viewer export: cancelled; not written: %s\n", strings.Join(left, ", "))
			return cli.ExitFailure
		}
		if err != nil {
			fmt.Fprintln(stderr, "viewer export:", explain(ctx, js, err))
			code = max(code, exitCode(err))
			if errors.Is(err, replay.ErrNoBuffer) {
				break // the same for every camera
			}
			continue
		}
		fmt.Fprintln(stdout, summary(tg.path, res, time.Now()))
	}
	return code
}

// span returns the capture times of the oldest and the newest frame of any
// of cameras ids in the buffer; zero if none has any (Export then says so
// for each).
func span(ctx context.Context, js jetstream.JetStream, ids []string) (first, last time.Time, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, id := range ids {
		f, l, err := replay.Bounds(ctx, js, id)
		if errors.Is(err, replay.ErrNoBuffer) {
			return first, last, err
		}
		if err != nil {
			continue // Export says what is wrong with this camera
		}
		if first.IsZero() || f.Before(first) {
			first = f
		}
		if l.After(last) {
			last = l
		}
	}
	return first, last, nil
}

// summary is the line export prints for a clip it wrote.
func summary(path string, r export.Result, now time.Time) string {
	length := time.Duration(float64(r.Frames) / r.FPS * float64(time.Second))
	s := fmt.Sprintf("wrote %s: %d frames, %s at %.3g fps, %s, captured %s to %s",
		path, r.Frames, age(length), r.FPS, codecName(r.Codec), humantime.ClockMilli(r.First, now), humantime.ClockMilli(r.Last, now))
	if r.Skipped > 0 {
		s += fmt.Sprintf(" (%d frames that could not be decoded left out)", r.Skipped)
	}
	if r.OutOfOrder > 0 {
		s += fmt.Sprintf(" (%d frames whose capture time was out of step with the camera's clock by more than %v left out)",
			r.OutOfOrder, replay.MaxClockStep)
	}
	return s
}

// codecName names a clip's codec by its FourCC.
func codecName(fourcc string) string {
	switch fourcc {
	case "avc1":
		return "H.264 (avc1)"
	case "mp4v":
		return "MPEG-4 Part 2 (mp4v)"
	case "MJPG":
		return "Motion JPEG (MJPG)"
	}
	return fourcc
}

// age writes a duration for people: "40ms", "12.5s", "3m5s".
func age(d time.Duration) string {
	switch d = max(d, 0); {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
