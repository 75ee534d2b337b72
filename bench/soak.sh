#!/usr/bin/env bash
# Soak test: a hub, N testpattern cameras and two consumers run for a while;
# the RSS and goroutine count of every process are sampled into a CSV, and a
# summary says whether anything grew.
#   bench/soak.sh [minutes=10] [cameras=8] [fps=30] [interval_s=10] [size=640x480]
# CAMHUB_BIN=dir uses the hub, agent and viewer binaries in dir instead of
# building them from this tree.
#
# Processes: hub --http, N agents --http, one web viewer (viewer --http), one
# client reading every camera from the web viewer's /api/stream (curl), and
# `viewer list --json` run at every sample (its answer is checked: all
# cameras live). RSS is read from /proc/<pid>/status (VmRSS), goroutines from
# go_goroutines on each Go process's /metrics.
#
# Output: bench/out/soak-<UTC time>.csv (t_s,process,pid,rss_kib,goroutines)
# and a summary table: first, last, min and max per process, and a verdict.
# A process "grew" if its RSS over the last quarter of the run is above its
# RSS over the second quarter by more than 25 % + 16 MiB, or its goroutines
# by more than 10 % + 5 (the first quarter is warm-up: buffers filling).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10} cams=${2:-8} fps=${3:-30} every=${4:-10} size=${5:-640x480}

mkdir -p bench/out
bindir=$(mktemp -d)
if [ -n "${CAMHUB_BIN:-}" ]; then # prebuilt binaries
	cp "$CAMHUB_BIN"/hub "$CAMHUB_BIN"/agent "$CAMHUB_BIN"/viewer "$bindir/"
else
	scripts/deps.sh build
	go build -o "$bindir/" ./cmd/hub ./cmd/agent ./cmd/viewer
fi
work=$(mktemp -d)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
csv=bench/out/soak-$stamp.csv
logdir=bench/out/soak-$stamp.logs
mkdir -p "$logdir"

base=$((20000 + RANDOM % 20000))
nport=$base hport=$((base + 1)) wport=$((base + 2))
url=nats://127.0.0.1:$nport

declare -A pids ops # process name -> pid, metrics URL
agents=()
others=()
stop() { # clients first, then the agents (they report "stopped"), then the hub
	set +e
	for p in "${others[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${others[@]}"; do wait "$p" 2>/dev/null; done
	for p in "${agents[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${agents[@]}"; do wait "$p" 2>/dev/null; done
	[ -z "${pids[hub]:-}" ] || { kill "${pids[hub]}" 2>/dev/null; wait "${pids[hub]}" 2>/dev/null; }
	rm -rf "$work" "$bindir"
}
trap stop EXIT

waithttp() { # url: wait until it answers 200
	for _ in $(seq 100); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done
	echo "soak: $1 does not answer" >&2
	return 1
}

"$bindir/hub" --listen 127.0.0.1:$nport --monitor "" --http 127.0.0.1:$hport \
	--storage memory --store-dir "$work/hub" --log-level warn 2>"$logdir/hub.log" &
pids[hub]=$! ops[hub]=http://127.0.0.1:$hport
waithttp "${ops[hub]}/healthz"
for i in $(seq "$cams"); do
	p=$((base + 10 + i))
	"$bindir/agent" --id "cam$i" --source testpattern --fps "$fps" --size "$size" --nats "$url" \
		--http 127.0.0.1:$p --log-level warn 2>"$logdir/cam$i.log" &
	pids[cam$i]=$! ops[cam$i]=http://127.0.0.1:$p
	agents+=($!)
done
for i in $(seq "$cams"); do waithttp "${ops[cam$i]}/healthz"; done
"$bindir/viewer" --http 127.0.0.1:$wport --nats "$url" --log-level warn 2>"$logdir/web.log" &
pids[web]=$! ops[web]=http://127.0.0.1:$wport
others+=($!)
waithttp "${ops[web]}/healthz"
# a client of every camera on one connection, reading as fast as frames come
curl -sN "${ops[web]}/api/stream" -o /dev/null &
pids[stream-client]=$!
others+=($!)

names=(hub)
for i in $(seq "$cams"); do names+=("cam$i"); done
names+=(web stream-client)
echo "# soak: $cams cameras x $fps fps at $size for $minutes min, sample every ${every}s; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"
echo "t_s,process,pid,rss_kib,goroutines" >"$csv"
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo ""; }
gor() { curl -sf --max-time 5 "$1/metrics" 2>/dev/null | awk '$1 == "go_goroutines" {print $2}' || true; }

start=$SECONDS end=$((SECONDS + minutes * 60))
listbad=0 lists=0
while :; do
	t=$((SECONDS - start))
	for n in "${names[@]}"; do
		pid=${pids[$n]}
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "soak: $n (pid $pid) is gone at ${t}s; its log: $logdir" >&2
			exit 1
		fi
		g=""
		[ -z "${ops[$n]:-}" ] || g=$(gor "${ops[$n]}")
		echo "$t,$n,$pid,$(rss "$pid"),$g" >>"$csv"
	done
	lists=$((lists + 1))
	live=$("$bindir/viewer" list --json --nats "$url" 2>/dev/null |
		python3 -c 'import json,sys; print(sum(c["state"] == "live" for c in json.load(sys.stdin)))' 2>/dev/null || echo 0)
	[ "$live" -eq "$cams" ] || { listbad=$((listbad + 1)); echo "soak: at ${t}s viewer list shows $live of $cams cameras live" >&2; }
	[ $SECONDS -lt $end ] || break
	sleep "$every" # the sampling interval
done

# frames through the web viewer, per camera, and drops the agents counted
web=$(curl -sf "${ops[web]}/metrics")
echo "# web viewer: $(echo "$web" | awk '/^camhub_web_camera_frames_total/ {s += $2} END {print s+0}') frames received," \
	"$(echo "$web" | awk '/^camhub_web_camera_frames_missed_total/ {s += $2} END {print s+0}') missed (Frame-Seq gaps);" \
	"sent to the stream client $(echo "$web" | awk '/^camhub_web_frames_sent_total/ {print $2}'), skipped $(echo "$web" | awk '/^camhub_web_frames_skipped_total/ {print $2}')"
sent=0 dropped=0
for i in $(seq "$cams"); do
	m=$(curl -sf "${ops[cam$i]}/metrics")
	sent=$((sent + $(echo "$m" | awk '/^camhub_agent_frames_sent_total/ {printf "%d", $2}')))
	dropped=$((dropped + $(echo "$m" | awk '/^camhub_agent_frames_dropped_total/ {printf "%d", $2}')))
done
echo "# agents: $sent frames sent, $dropped dropped; viewer list: $((lists - listbad)) of $lists samples had all $cams cameras live"
echo "# csv: $csv; logs: $logdir; load at the end $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$csv" <<'EOF'
import csv, sys
rows = {}
for r in csv.DictReader(open(sys.argv[1])):
    rows.setdefault(r["process"], []).append(r)
def col(rs, k):
    return [int(float(r[k])) for r in rs if r[k] not in ("", None)]
def quarter_mean(v, q):
    n = len(v)
    part = v[n * q // 4 : max(n * (q + 1) // 4, n * q // 4 + 1)]
    return sum(part) / len(part)
print(f"{'process':14} {'rss MiB first/last/min/max':30} {'goroutines first/last/min/max':30} verdict")
grew, short = [], False
for name, rs in rows.items():
    rss = [x / 1024 for x in col(rs, "rss_kib")]
    g = col(rs, "goroutines")
    verdict = "flat"
    if len(rss) >= 8:
        a, b = quarter_mean(rss, 1), quarter_mean(rss, 3)
        if b > a * 1.25 + 16:
            verdict = f"RSS GREW {a:.0f}->{b:.0f} MiB"
        if g:
            ga, gb = quarter_mean(g, 1), quarter_mean(g, 3)
            if gb > ga * 1.10 + 5:
                verdict = f"GOROUTINES GREW {ga:.0f}->{gb:.0f}"
    else:
        verdict = "too few samples"
    if verdict == "too few samples":
        short = True
    elif verdict != "flat":
        grew.append(name)
    rs_ = f"{rss[0]:.0f}/{rss[-1]:.0f}/{min(rss):.0f}/{max(rss):.0f}"
    gs = f"{g[0]}/{g[-1]}/{min(g)}/{max(g)}" if g else "-"
    print(f"{name:14} {rs_:30} {gs:30} {verdict}")
if grew:
    print("VERDICT: growth in " + ", ".join(grew))
elif short:
    print("VERDICT: too few samples to judge (at least 8 needed)")
else:
    print("VERDICT: no growth")
sys.exit(1 if grew else 0)
EOF
