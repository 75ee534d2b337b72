// Command viewer shows camhub cameras: a live grid of them in one window,
// rewound from the hub's replay buffer if asked, the list of cameras the
// hub knows, and clips and snapshots written from the buffer.
package main

import (
	"context"
	"io"
	"os"
	"runtime"
	"sync"

	"camhub/internal/cli"
	"camhub/internal/natsconn"
	"camhub/internal/ops"
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
  viewer --http :8443 --user web --http-tls-cert c.pem --http-tls-key k.pem
                                           # visitors log in as hub users, see their cameras
  viewer --cams front,back --since 20s     # what just happened: 20 s behind live
  viewer --since 30s --speed 2             # every camera, catching up with live in 30 s
  viewer --at 2026-11-24T08:00:05Z         # from a time (RFC 3339) still in the buffer
  viewer list
  viewer list --json | jq '.[] | select(.state == "live") | .id'
  viewer healthcheck :8080                 # exit 0 if the viewer --http on :8080 is healthy
  viewer snapshot --cam front --out front.jpg
  viewer snapshot --cams front,back --out-dir snaps        # snaps/front.jpg, snaps/back.jpg
  viewer export --cam front --since 60s --out front.mp4
  viewer export --cam front --from 2026-11-24T08:00:00Z --to 2026-11-24T08:00:20Z --out front.avi
  viewer export --cams front,back --out-dir clips          # the whole buffer: clips/front.mp4 ...
  viewer events --cam front --since 24h                    # motion events, with their clips
  viewer export --event 20261124T080005123Z-front --out event.mp4

export writes one video frame per frame captured, at the rate they were
captured: .mp4 is H.264 (MPEG-4 Part 2 where OpenCV has no H.264 encoder),
.avi is Motion JPEG. Without --since, --from or --to it writes everything
the buffer holds; with several cameras every clip covers the same time. It
shows its progress on stderr: a bar with the rate and time left on a
terminal, a line every 5 s otherwise. A file appears complete or not at
all: an error or Ctrl-C leaves none. snapshot writes the newest frame in
the buffer as it was sent, without waiting for the next. Both create
--out-dir if it does not exist, and print what they wrote. Exit status: 0
done, 1 failed, 2 bad flags or request.

Every flag can also be set as a key in the --config YAML file (cams may be
a YAML list) or as an environment variable CAMHUB_<FLAG> (e.g.
CAMHUB_WINDOW_SIZE=1920x1080); flags override the environment, which
overrides the file. The flags for one run only, --cam, --since, --at,
--speed, --from, --to and --out, are command-line flags only.

Flags:
`

func main() {
	ctx, stop := cli.SignalContext()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the viewer command: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// NATS reports errors (a permission the hub refused) on its own
	// goroutine, through the logger, while the command writes too.
	stderr = &lockedWriter{w: stderr}
	if len(args) > 0 && args[0] == "healthcheck" {
		return ops.Healthcheck(ctx, "viewer", args[1:], stdout, stderr)
	}
	o, err := parse(args, stdout)
	if err != nil {
		return cli.ParseError(stderr, "viewer", err)
	}
	log, code, done := o.Start("viewer", stdout, stderr)
	if done {
		return code
	}
	if o.joinInArgs {
		natsconn.WarnJoinInArgs(log)
	}
	return o.command.run(ctx, o, stdout, stderr, log)
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
