#!/usr/bin/env bash
# Checks that the arm64 build of the motion detector (what a Raspberry Pi
# runs) finds the same events as the amd64 build, on the same fixtures.
#
# Both builds of internal/motion/motiontest's TestEvents run the fixtures
# (ffmpeg from real footage, made by this machine's ffmpeg, which the
# emulated test runs natively) through the detector as the hub runs it:
# libjpeg-turbo's scaled decoding, libavcodec for H.264, OpenCV. The arm64
# test binary is cross-compiled with cgo against the sysroot of
# scripts/release.sh and runs under qemu-user (qemu-aarch64-static with the
# sysroot's libraries). Each build must pass its own checks (the walk:
# exactly one event; noise, brightness step, masked clock: none), and the
# events of the two must be identical, or this fails. How much the
# pictures' scores differ is printed, for information.
#
# qemu says nothing of a real Pi's speed: the emulated CPU per picture it
# prints only shows the run is the detector's real work.
#
# Usage: scripts/motion-arm64-test.sh [--help]
# Environment:
#   CAMHUB_SYSROOT_DIR  see scripts/release.sh --help (default /var/tmp/camhub-sysroot);
#                       without an arm64 sysroot there, release.sh makes one
#                       (a few minutes, ~1.4 GB)
#   CAMHUB_MOTION_ARM64_KEEP  a directory to keep the results in (events, scores, logs)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
fi
[ $# = 0 ] || { echo "usage: scripts/motion-arm64-test.sh [--help]" >&2; exit 2; }

log() { printf '[motion-arm64 %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

sr=${CAMHUB_SYSROOT_DIR:-/var/tmp/camhub-sysroot}/arm64
triplet=aarch64-linux-gnu
pkg=./internal/motion/motiontest
work=$(mktemp -d /tmp/camhub-motion-arm64.XXXXXX)
cleanup() {
	local rc=$?
	if [ -n "${CAMHUB_MOTION_ARM64_KEEP:-}" ]; then
		mkdir -p "$CAMHUB_MOTION_ARM64_KEEP" && cp "$work"/*.txt "$work"/*.log "$CAMHUB_MOTION_ARM64_KEEP/" 2>/dev/null
	fi
	rm -rf "$work"
	[ $rc = 0 ] || log "FAILED (exit $rc)"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t_start=$SECONDS
# The sysroot, the cross compiler and qemu come with a release build; an
# existing sysroot is only read, never made again here.
if [ ! -f "$sr/.camhub-sysroot" ] || ! command -v "$triplet-gcc" >/dev/null || ! command -v qemu-aarch64-static >/dev/null; then
	log "no arm64 sysroot in $sr (or no cross compiler, qemu): scripts/release.sh --arch arm64 makes them"
	scripts/release.sh --arch arm64 --programs agent --out "$work/dist" --version motion-arm64
fi
command -v ffmpeg >/dev/null || die "ffmpeg is needed for the fixtures (scripts/deps.sh test)"

# The cross-compile as release.sh does it (-trimpath too, so that the
# packages a release built are reused from Go's cache); no -race: the race
# detector needs a native run.
t0=$SECONDS
log "building the motion tests for arm64 (cgo against $sr)"
env CGO_ENABLED=1 GOOS=linux GOARCH=arm64 \
	"PKG_CONFIG_SYSROOT_DIR=$sr" \
	"PKG_CONFIG_LIBDIR=$sr/usr/lib/$triplet/pkgconfig:$sr/usr/share/pkgconfig" \
	"CC=$triplet-gcc --sysroot=$sr" "CXX=$triplet-g++ --sysroot=$sr" \
	"CGO_LDFLAGS=-Wl,--allow-shlib-undefined -Wl,-rpath-link=$sr/usr/lib/$triplet" \
	go test -c -trimpath -o "$work/motiontest.arm64" "$pkg" || die "the arm64 cross-compile failed"
machine=$(readelf -h "$work/motiontest.arm64" | sed -n 's/.*Machine: *//p')
[ "$machine" = AArch64 ] || die "the arm64 test binary is for '$machine', not AArch64"
log "building the motion tests for amd64"
go test -c -trimpath -o "$work/motiontest.amd64" "$pkg" || die "the amd64 build failed"
t_build=$((SECONDS - t0))

# run ARCH [RUNNER...]: TestEvents of that build, in the package's
# directory as go test runs it; events and scores in $work/ARCH-*.txt.
run() {
	local arch=$1 t=$SECONDS
	shift
	log "$arch: TestEvents${1:+ under $1}"
	(cd "$pkg" && "$@" "$work/motiontest.$arch" -test.run '^TestEvents$' -test.v -test.count=1 \
		-events "$work/$arch-events.txt" -scores "$work/$arch-scores.txt") >"$work/$arch.log" 2>&1 ||
		{ sed 's/^/    | /' "$work/$arch.log" >&2; die "$arch: TestEvents failed"; }
	eval "t_$arch=$((SECONDS - t))"
	grep -E 'pictures decoded and analysed' "$work/$arch.log" | sed "s/^ */    $arch: /" >&2
}
run amd64
run arm64 qemu-aarch64-static -L "$sr"

sed 's/^/    /' "$work/arm64-events.txt" >&2
if ! diff -u "$work/amd64-events.txt" "$work/arm64-events.txt" >"$work/events.diff"; then
	sed 's/^/    | /' "$work/events.diff" >&2
	die "the arm64 build's events differ from the amd64 build's"
fi
[ "$(wc -l <"$work/amd64-events.txt")" -ge 6 ] || die "too few fixtures in the results: $(cat "$work/amd64-events.txt")"
# For information: the scores, picture by picture (libswscale's conversion
# of H.264 pictures to BGR rounds a little differently on arm64).
LC_ALL=C join <(awk '{ print $1 "#" $2, $3 }' "$work/amd64-scores.txt" | LC_ALL=C sort) \
	<(awk '{ print $1 "#" $2, $3 }' "$work/arm64-scores.txt" | LC_ALL=C sort) |
	awk '{ split($1, k, "#"); f = k[1]; n[f]++; d = $2 - $3; if (d < 0) d = -d
		if (d > 0) diff[f]++; if (d > max[f]) max[f] = d }
		END { for (f in n) printf "    scores %s: %d of %d pictures differ, by %.6f at most\n", f, diff[f], n[f], max[f] }' |
	sort >&2
log "PASS: the arm64 build's events are the amd64 build's: build ${t_build}s, amd64 ${t_amd64}s, arm64 under qemu ${t_arm64}s; all $((SECONDS - t_start))s"
