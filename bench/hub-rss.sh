#!/usr/bin/env bash
# Samples the hub's memory (RSS) while N testpattern cameras stream through it,
# to check that the replay buffer keeps it bounded.
#   bench/hub-rss.sh [cameras=8] [minutes=3] [storage=memory] [fps=30] [replay-bytes=1GiB]
# Prints one line per 10 s sample: elapsed time, hub RSS, buffered frames and bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
cams=${1:-8} minutes=${2:-3} storage=${3:-memory} fps=${4:-30} bytes=${5:-1GiB}
scripts/deps.sh build
go build -o bin/ ./cmd/hub ./cmd/agent
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
mport=$((port + 1))
agents=()
hub=
stop() { # agents first, so they report "stopped" to a hub still there
	[ ${#agents[@]} -eq 0 ] || kill "${agents[@]}" 2>/dev/null || true
	wait "${agents[@]}" 2>/dev/null || true
	[ -z "$hub" ] || { kill "$hub" 2>/dev/null; wait "$hub" 2>/dev/null; } || true
	rm -rf "$dir"
}
trap stop EXIT

bin/hub --listen 127.0.0.1:$port --monitor 127.0.0.1:$mport --storage "$storage" \
	--store-dir "$dir" --replay-bytes "$bytes" --log-level warn &
hub=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$mport/healthz" >/dev/null && break; sleep 0.1; done
for i in $(seq "$cams"); do
	bin/agent --id "cam$i" --source testpattern --fps "$fps" --nats "nats://127.0.0.1:$port" --log-level warn &
	agents+=($!)
done
echo "# $cams cameras x $fps fps, 640x480 q80, storage=$storage, replay-bytes=$bytes; $(nproc) cores; $(date -u +%FT%TZ)"
printf '%8s %10s %10s %12s\n' elapsed rss_mib frames buffer_mib
end=$((SECONDS + minutes * 60))
start=$SECONDS
while [ $SECONDS -lt $end ]; do
	sleep 10
	rss=$(awk '/VmRSS/ {printf "%.0f", $2/1024}' /proc/$hub/status)
	js=$(curl -sf "http://127.0.0.1:$mport/jsz?streams=true" || echo '{}')
	msgs=$(echo "$js" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("messages",0))')
	buf=$(echo "$js" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d.get("bytes",0)/1048576))')
	printf '%7ss %10s %10s %12s\n' $((SECONDS - start)) "$rss" "$msgs" "$buf"
done
