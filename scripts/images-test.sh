#!/usr/bin/env bash
# End-to-end test of the arm64 images (scripts/images.sh --arch arm64): they
# are built here without a registry or buildx (cross-compiled programs, the
# libraries they load from Debian's arm64 sysroot, loaded as arm64 images),
# and run for real under qemu-user through the kernel's binfmt_misc, as
# Docker runs any arm64 image on an amd64 machine with qemu-user-static:
#
#  1. every arm64 image says it is linux/arm64 and its program starts
#     (--version) in it;
#  2. an arm64 agent container (--source testpattern, 320x240) joins an amd64
#     hub container on a Docker network with its join token, goes live, and
#     its frames decode (a snapshot, through an amd64 viewer container,
#     decoded in full by ffmpeg) at the size asked for;
#  3. the arm64 agent's HEALTHCHECK (agent healthcheck, arm64, under qemu)
#     says healthy.
#
# Reuses the amd64 images of the compose test (their settings are copied:
# built if missing) and the arm64 sysroot and Go build cache of the Pi test.
#
# Usage: scripts/images-test.sh [--help]
# Environment:
#   CAMHUB_TAG          the amd64 images' tag (default latest); arm64: TAG-arm64
#   CAMHUB_GOPROXY      for the amd64 images if they must be built (default:
#                       local, this machine's module cache; see scripts/images.sh)
# Needs root or sudo (binfmt_misc), Docker, Go, qemu-user-static, ffmpeg.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
fi
[ $# = 0 ] || { echo "usage: scripts/images-test.sh [--help]" >&2; exit 2; }

log() { printf '[images-test %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
now() { date +%s; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

command -v docker >/dev/null || die "docker is needed"
command -v ffprobe >/dev/null || die "ffmpeg is needed (scripts/deps.sh test)"
[ -x /usr/bin/qemu-aarch64-static ] || die "qemu-user-static is needed (scripts/deps.sh test)"
tag=${CAMHUB_TAG:-latest}
export CAMHUB_GOPROXY=${CAMHUB_GOPROXY:-local}

t_start=$(now)
work=$(mktemp -d /tmp/camhub-images-test.XXXXXX)
id=camhub-qemu-$$
containers=()
cleanup() {
	local rc=$?
	set +e
	if [ $rc != 0 ]; then
		for c in "${containers[@]}"; do
			log "logs of $c (last 15 lines):"
			docker logs --tail 15 "$c" 2>&1 | sed 's/^/    | /' >&2
		done
	fi
	for c in "${containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1; done
	docker network rm "$id" >/dev/null 2>&1
	docker volume rm "$id-data" "$id-joins" >/dev/null 2>&1
	rm -rf "$work"
	[ $rc = 0 ] || log "FAILED (exit $rc)"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- binfmt_misc: arm64 programs run by qemu, in containers too --------------
# The F flag (qemu-user-static's own registration has it) makes the kernel
# open the interpreter when it is registered, so that it works inside a
# container, whose root has no qemu.
reg=/proc/sys/fs/binfmt_misc
[ -e "$reg/register" ] || as_root mount -t binfmt_misc binfmt_misc "$reg" || die "cannot mount binfmt_misc"
if [ ! -e "$reg/qemu-aarch64" ]; then
	if command -v update-binfmts >/dev/null; then as_root update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true; fi
	[ -e "$reg/qemu-aarch64" ] || as_root sh -c "cat /usr/lib/binfmt.d/qemu-aarch64.conf >$reg/register" ||
		die "cannot register qemu-aarch64 with binfmt_misc"
fi
grep -q '^enabled' "$reg/qemu-aarch64" || die "binfmt_misc's qemu-aarch64 is disabled"
grep -Eq '^flags:.*F' "$reg/qemu-aarch64" || die "binfmt_misc's qemu-aarch64 has no F flag: containers cannot use it"
log "binfmt_misc: qemu-aarch64 ($(sed -n 's/^interpreter //p' "$reg/qemu-aarch64"), flags $(sed -n 's/^flags: //p' "$reg/qemu-aarch64"))"

# ---- build --------------------------------------------------------------------
t0=$(now)
version=imagetest-$(git rev-parse --short HEAD 2>/dev/null || echo dev)
scripts/images.sh --arch arm64 --images hub,agent,viewer,detector --tag "$tag" --version "$version"
t_build=$(($(now) - t0))

# ---- 1. the images ------------------------------------------------------------
t0=$(now)
sizes=
for i in hub agent viewer detector; do
	img=camhub-$i:$tag-arm64
	platform=$(docker image inspect -f '{{.Os}}/{{.Architecture}}' "$img") || die "no image $img"
	[ "$platform" = linux/arm64 ] || die "$img is $platform, not linux/arm64"
	[ "$(docker image inspect -f '{{.Config.User}}' "$img")" = 10001:44 ] || die "$img does not run as 10001:44"
	got=$(docker run --rm "$img" --version 2>&1) || die "$i --version in $img failed: $got"
	case $got in *"$version"*) ;; *) die "$i in $img says '$got', not $version" ;; esac
	sizes+=" $i $(($(docker image inspect -f '{{.Size}}' "$img") / 1000000))MB"
done
log "arm64 images, each program starting in its own under qemu:$sizes"

# ---- 2. an arm64 agent streams to an amd64 hub ------------------------------
docker network create "$id" >/dev/null
docker volume create "$id-data" >/dev/null
docker volume create "$id-joins" >/dev/null
# The hub's data and the join tokens, made by the (amd64) admin image.
docker run --rm -u 0:0 --entrypoint /bin/sh -v "$id-data:/var/lib/camhub" -v "$id-joins:/joins" "camhub-admin:$tag" -c '
	set -e; umask 077
	hub camera add pi1 --data /var/lib/camhub --advertise hub:4222 >/joins/pi1.join
	hub user add tester --role viewer --data /var/lib/camhub --advertise hub:4222 >/joins/tester.join 2>/dev/null
	chown -R 10001:44 /var/lib/camhub /joins' || die "cannot add the camera and the viewer"
containers+=("$id-hub")
docker run -d --name "$id-hub" --network "$id" --network-alias hub -v "$id-data:/var/lib/camhub" \
	"camhub-hub:$tag" --advertise hub:4222 --storage memory >/dev/null
[ "$(docker image inspect -f '{{.Architecture}}' "camhub-hub:$tag")" = amd64 ] || die "the hub image is not amd64"
containers+=("$id-agent")
docker run -d --name "$id-agent" --network "$id" -v "$id-joins:/joins:ro" \
	--health-interval 3s --health-start-period 60s \
	"camhub-agent:$tag-arm64" --join-file /joins/pi1.join --source testpattern --size 320x240 --fps 5 >/dev/null
# The agent is an arm64 process, run by qemu (the kernel starts the
# interpreter binfmt_misc names).
pid=$(docker inspect -f '{{.State.Pid}}' "$id-agent")
[ "$pid" -gt 0 ] || die "the arm64 agent is not running"
exe=$(readlink "/proc/$pid/exe")
case $exe in *qemu*) ;; *) die "the agent's process is $exe, not qemu running an arm64 program" ;; esac
log "the arm64 agent runs under $exe"

viewer() { # viewer ARGS...: the amd64 viewer image on the test's network, as tester
	docker run --rm --network "$id" -v "$id-joins:/joins:ro" -v "$work:/out" \
		"camhub-viewer:$tag" "$@" --join-file /joins/tester.join
}
chmod 0777 "$work"
deadline=$(($(now) + 120))
while :; do
	j=$(viewer list --json 2>/dev/null | jq -c '.[] | select(.id == "pi1")' || true)
	if [ -n "$j" ] && jq -e --arg v "$version" \
		'.state == "live" and .version == $v and .width == 320 and .height == 240 and .frames_sent >= 3' <<<"$j" >/dev/null; then
		break
	fi
	[ "$(now)" -lt "$deadline" ] || die "the arm64 camera is not live at $version 320x240 within 120 s; the hub says: ${j:-nothing}"
	sleep 1
done
viewer snapshot --cam pi1 --out /out/pi1.jpg >&2 || die "no snapshot of the arm64 camera"
ffmpeg -v error -xerror -i "$work/pi1.jpg" -f null - || die "the arm64 camera's frame does not decode"
size=$(ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=s=x:p=0 "$work/pi1.jpg")
[ "$size" = 320x240 ] || die "the arm64 camera's frame decodes as $size, not 320x240"
log "arm64 agent -> amd64 hub: live, version $version, host $(jq -r .host <<<"$j"), $(jq -r .frames_sent <<<"$j") frames sent; its snapshot decodes as a $size JPEG"

# ---- 3. its health check, run by Docker in the arm64 image ---------------------
deadline=$(($(now) + 60))
until [ "$(docker inspect -f '{{.State.Health.Status}}' "$id-agent")" = healthy ]; do
	[ "$(now)" -lt "$deadline" ] || die "the arm64 agent is not healthy within 60 s: $(docker inspect -f '{{json .State.Health}}' "$id-agent")"
	sleep 1
done
log "the arm64 agent's health check (agent healthcheck, arm64) says healthy"
t_run=$(($(now) - t0))

log "PASS: arm64 images built in ${t_build}s, tested in ${t_run}s; all $(($(now) - t_start))s"
