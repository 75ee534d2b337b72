#!/usr/bin/env bash
# The whole of camhub on one machine: an embedded hub, two demo cameras
# (test patterns "front" and "back") and the grid viewer. Quit the viewer
# (q, Esc or Ctrl-C) and everything stops.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
	echo "camhub demo: the grid viewer opens a window, and there is no display here." >&2
	echo "Run it from a desktop session (or with ssh -X)." >&2
	exit 1
fi

mkdir -p bin
echo "camhub demo: building hub, agent and viewer into bin/ ..." >&2
go build -o bin/ ./cmd/hub ./cmd/agent ./cmd/viewer

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

bin/hub --listen 127.0.0.1:4222 --monitor 127.0.0.1:8222 &
pids+=($!)
bin/agent --id front --source testpattern --nats nats://127.0.0.1:4222 &
pids+=($!)
bin/agent --id back --source testpattern --fps 10 --nats nats://127.0.0.1:4222 &
pids+=($!)
bin/viewer --cams front,back --nats nats://127.0.0.1:4222
