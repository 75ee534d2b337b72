#!/usr/bin/env bash
# camhub's benchmark: camhub beside the raw NATS ceiling and the ZeroMQ
# baseline, in one run on one machine (see docs/BENCHMARKS.md).
#
#   bench/run.sh           (make bench)        ~15 min; writes docs/BENCHMARKS.md
#                                              and docs/benchmarks.png
#   bench/run.sh --quick   (make bench-quick)  under 2 min; writes bench/out/ only
#
# Run it on a quiet machine: every part shares the CPUs with the others of
# its own run, never with anything else, or the numbers say little.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=""
case "${1:-}" in
--quick) quick=-quick ;;
"") ;;
*) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac
export PATH=$PATH:/usr/local/go/bin
scripts/deps.sh bench
out=bench/out
mkdir -p "$out"
echo "bench: building" >&2
go build -o bin/ ./cmd/hub ./cmd/agent ./bench/camhub-bench
# the H.264 benchmarks that live beside their code (camhub-bench runs them)
go test -c -o bin/agent.test ./agent
go test -c -o bin/avcodec.test ./internal/avcodec
[ -f "$out/frames/1280x720.avi" ] || bin/camhub-bench frames -out "$out/frames"
[ -f "$out/frames/vtest-1280x720.h264" ] || bin/camhub-bench footage -out "$out/frames"

results=$out/results.jsonl
zmq=$out/zmq.jsonl
rm -f "$results" "$zmq"
bin/camhub-bench run -frames "$out/frames" -bin bin -out "$results" $quick

# The ZeroMQ baseline on the same frames, rates and machine.
py=/usr/bin/python3 # Debian's, with python3-zmq and python3-opencv
secs=10
[ -n "$quick" ] && secs=3
echo "bench: the ZeroMQ baseline" >&2
$py bench/zmq/run.py --frames "$out/frames/640x480" --scenario relay --seconds "$secs" --json "$zmq"
$py bench/zmq/run.py --frames "$out/frames/640x480" --scenario latency --cams 8 --fps 30 --seconds "$secs" --json "$zmq"
$py bench/zmq/run.py --frames "$out/frames/1280x720" --scenario overload --cams 8 --fps 30 --seconds $((2 * secs)) --json "$zmq"

# The web page in headless Chromium: the age of what it shows by player,
# over the run, and Chromium's CPU per frame (web/pagebench_test.go).
# CAMHUB_PAGE_BENCH sets how long (10m for the 10-minute run).
page=$out/page.md
rm -f "$page"
pagerun=${CAMHUB_PAGE_BENCH:-2m}
[ -n "$quick" ] && pagerun=15s
echo "bench: the web page, $pagerun" >&2
CAMHUB_PAGE_BENCH=$pagerun CAMHUB_PAGE_BENCH_OUT=$PWD/$page \
	go test -count=1 -timeout 60m -run '^(TestPageAge|TestPageCPU)$' ./web/ >&2

if [ -n "$quick" ]; then
	report=$out/BENCHMARKS.md command="make bench-quick"
else
	report=docs/BENCHMARKS.md command="make bench"
fi
chart=$(dirname "$report")/benchmarks.png
bin/camhub-bench report -in "$results" -zmq "$zmq" -page "$page" -out "$report" -command "$command"
$py bench/chart.py "$results" "$zmq" "$chart"
echo "bench: wrote $report and $chart" >&2
