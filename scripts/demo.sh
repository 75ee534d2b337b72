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

# The hub is secured as it is by default: its own CA, TLS only, and only the
# cameras and users of its data directory get in. The demo keeps that
# directory, and its cameras' and viewer's credentials, in a fresh temporary
# directory that goes when the demo ends.
demo=$(mktemp -d -t camhub-demo-XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$demo"
}
trap cleanup EXIT INT TERM

hub_addr=127.0.0.1:4222
add() { # add camera|user NAME [flags]: the join token into $demo/NAME.join
	bin/hub "$1" add "$2" --data "$demo/hub" --advertise "$hub_addr" "${@:3}" >"$demo/$2.join" 2>"$demo/add.log" ||
		{ cat "$demo/add.log" >&2; exit 1; }
}
add camera front
add camera back
add user demo --role viewer

bin/hub --listen "$hub_addr" --monitor 127.0.0.1:8222 --data "$demo/hub" &
pids+=($!)
bin/agent --join-file "$demo/front.join" --state-dir "$demo/front" --source testpattern &
pids+=($!)
bin/agent --join-file "$demo/back.join" --state-dir "$demo/back" --source testpattern --fps 10 &
pids+=($!)
bin/viewer --cams front,back --join-file "$demo/demo.join" --state-dir "$demo/viewer"
