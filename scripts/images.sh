#!/usr/bin/env bash
# Builds camhub's container images, one per program: `make images` runs it.
# Run with --help for the options.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
	cat <<'EOF'
Usage: scripts/images.sh [--arch LIST] [--images LIST] [--tag TAG] [--version V]

Builds camhub's images into this machine's Docker engine, without a registry:

  camhub-hub       the static hub: the binary, CA certificates and its user (no shell)
  camhub-agent     the agent with only the shared libraries it loads (no shell)
  camhub-viewer    the web viewer (viewer --http), likewise
  camhub-detector  the motion detector, likewise
  camhub-admin     the hub command on debian:bookworm-slim, with a shell (this
                   machine's architecture only: docker-compose.yml's init)

  amd64  (this machine's architecture) from deploy/docker/Dockerfile's targets,
         as camhub-<image>:TAG
  arm64  (Raspberry Pi OS 64-bit, Pi 3/4/5) as camhub-<image>:TAG-arm64: the
         programs cross-compiled by scripts/release.sh against Debian bookworm's
         arm64 libraries (its sysroot), each with the libraries it loads from
         that sysroot (deploy/docker/closure.sh), written as an arm64 image
         (deploy/docker/image-archive.py) and loaded: no buildx, no emulation
         needed to build. They run here under qemu-user (binfmt_misc), on a Pi
         natively. The images' settings (user, entry point, health check) are
         copied from the amd64 ones, which are built first if missing.

  --arch LIST     amd64, arm64 or both (default amd64,arm64)
  --images LIST   which of hub,agent,viewer,detector,admin (default all)
  --tag TAG       the images' tag (default latest)
  --version V     the version the programs report (default: git describe)
  -h, --help      this help

Environment:
  CAMHUB_GOPROXY      the Go module proxy of the amd64 build (Docker build arg
                      GOPROXY); "local" serves this machine's module cache to
                      the build over the docker bridge (for a build network
                      without the real proxy)
  CAMHUB_SYSROOT_DIR  see scripts/release.sh --help

On a Pi: docker save camhub-agent:latest-arm64 | ssh pi docker load (README, Docker).
EOF
}

log() { printf '[images %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

arches=amd64,arm64
images=hub,agent,viewer,detector,admin
tag=latest
version=
while [ $# -gt 0 ]; do
	case $1 in
	--arch) arches=${2:?--arch needs a value}; shift 2 ;;
	--arch=*) arches=${1#*=}; shift ;;
	--images) images=${2:?--images needs a value}; shift 2 ;;
	--images=*) images=${1#*=}; shift ;;
	--tag) tag=${2:?--tag needs a value}; shift 2 ;;
	--tag=*) tag=${1#*=}; shift ;;
	--version) version=${2:?--version needs a value}; shift 2 ;;
	--version=*) version=${1#*=}; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
done
IFS=, read -r -a arch_list <<<"$arches"
IFS=, read -r -a image_list <<<"$images"
for i in "${image_list[@]}"; do
	case $i in hub | agent | viewer | detector | admin) ;; *) die "unknown image '$i' (hub, agent, viewer, detector, admin)" ;; esac
done
for a in "${arch_list[@]}"; do
	case $a in amd64 | arm64) ;; *) die "unknown architecture '$a' (amd64, arm64)" ;; esac
done
if [ -z "$version" ]; then
	version=$(git describe --tags --always --dirty 2>/dev/null || true)
	[ -n "$version" ] || version=dev
fi
command -v docker >/dev/null || die "docker is needed"
[ "$(dpkg --print-architecture 2>/dev/null || echo amd64)" = amd64 ] || die "this script builds on amd64 (on a Pi: docker compose build)"

work=$(mktemp -d /tmp/camhub-images.XXXXXX)
proxy_pid=
cleanup() {
	[ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# local_goproxy: serves this machine's module cache (a valid GOPROXY tree)
# on the docker bridge's address, for a build whose network cannot reach the
# real proxy; go.sum still verifies every module.
local_goproxy() {
	local gw port deadline
	go mod download
	gw=$(docker network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}')
	[ -n "$gw" ] || gw=$(ip -4 -o addr show docker0 | awk '{print $4}' | cut -d/ -f1)
	[ -n "$gw" ] || die "cannot find the docker bridge's address"
	# A fixed port keeps the build's cache (GOPROXY is a build arg).
	port=${CAMHUB_MODPROXY_PORT:-38111}
	python3 -m http.server --bind "$gw" --directory "$(go env GOMODCACHE)/cache/download" "$port" >/dev/null 2>&1 &
	proxy_pid=$!
	deadline=$((SECONDS + 30))
	until curl -fsS -o /dev/null "http://$gw:$port/" 2>/dev/null; do
		[ $SECONDS -lt $deadline ] || die "module cache server on $gw:$port did not start (port taken? set CAMHUB_MODPROXY_PORT)"
		sleep 0.2
	done
	CAMHUB_GOPROXY=http://$gw:$port
	log "Go modules for the build from this machine's module cache: $CAMHUB_GOPROXY"
}

# build_native IMAGE: docker build of the Dockerfile's target IMAGE.
build_native() {
	local t0=$SECONDS
	if [ "${CAMHUB_GOPROXY:-}" = local ]; then local_goproxy; fi
	log "amd64: building camhub-$1:$tag (target $1)"
	docker build -q -f deploy/docker/Dockerfile --target "$1" -t "camhub-$1:$tag" \
		--build-arg "GOPROXY=${CAMHUB_GOPROXY:-https://proxy.golang.org,direct}" \
		--build-arg "VERSION=$version" . >"$work/build-$1.log" 2>&1 ||
		{ tail -n 30 "$work/build-$1.log" >&2; die "docker build --target $1 failed"; }
	log "amd64: camhub-$1:$tag in $((SECONDS - t0)) s"
}

# build_arm64: the arm64 images of image_list (all but admin).
build_arm64() {
	local sysroot=${CAMHUB_SYSROOT_DIR:-/var/tmp/camhub-sysroot}/arm64 cgo=() i t0=$SECONDS
	for i in "${image_list[@]}"; do
		case $i in agent | viewer | detector) cgo+=("$i") ;; esac
	done
	# The amd64 images whose settings the arm64 ones copy.
	for i in "${image_list[@]}"; do
		[ "$i" != admin ] || continue
		docker image inspect "camhub-$i:$tag" >/dev/null 2>&1 || build_native "$i"
	done
	local dist=$work/dist bin
	if [ ${#cgo[@]} -gt 0 ]; then
		log "arm64: cross-compiling ${cgo[*]} (scripts/release.sh)"
		scripts/release.sh --arch arm64 --programs "$(IFS=,; echo "${cgo[*]}")" --out "$dist" --version "$version" \
			>"$work/release.log" 2>&1 || { tail -n 30 "$work/release.log" >&2; die "release.sh failed"; }
	fi
	bin=$dist/camhub-$version-linux-arm64/bin
	mkdir -p "$bin"
	case ",$images," in *,hub,*)
		log "arm64: building the hub (static, CGO_ENABLED=0)"
		CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -trimpath \
			-ldflags "-s -w -X camhub/internal/version.Version=$version" -o "$bin/hub" ./cmd/hub
		;;
	esac

	# The layers. base: the hub image's own /etc and /tmp (user, group, CA
	# certificates: files of no architecture); data: the user's directory.
	local base=$work/layer-base data=$work/layer-data libs=$work/layer-libs cid
	mkdir -p "$base" "$data/var/lib/camhub"
	chmod 0755 "$data/var/lib/camhub"
	cid=$(docker create "camhub-hub:$tag" 2>/dev/null || docker create "camhub-${image_list[0]}:$tag")
	docker cp "$cid:/etc" "$base/" && docker cp "$cid:/tmp" "$base/" || { docker rm "$cid" >/dev/null; die "cannot copy /etc from the amd64 image"; }
	docker rm "$cid" >/dev/null
	chmod 1777 "$base/tmp"
	if [ ${#cgo[@]} -gt 0 ]; then
		local args=()
		for i in "${cgo[@]}"; do args+=("$bin/$i=/usr/local/bin/$i"); done
		log "arm64: the libraries ${cgo[*]} load, from $sysroot"
		deploy/docker/closure.sh "$sysroot" "$libs" "${args[@]}"
		rm -r "$libs/usr/local"
	fi
	for i in "${image_list[@]}"; do
		[ "$i" != admin ] || { log "arm64: no admin image (it has a Debian userland: build it on the Pi)"; continue; }
		local layer=$work/layer-$i layers=()
		mkdir -p "$layer/usr/local/bin"
		cp "$bin/$i" "$layer/usr/local/bin/"
		case $i in
		hub) layers=(--layer "$base" --layer "$data" --layer "$layer") ;;
		*) layers=(--layer "$base" --layer "$libs" --layer "$data" --layer "$layer") ;;
		esac
		deploy/docker/image-archive.py --arch arm64 --tag "camhub-$i:$tag-arm64" \
			--config-from "camhub-$i:$tag" "${layers[@]}" | docker load -q >&2 ||
			die "cannot load camhub-$i:$tag-arm64"
	done
	log "arm64: done in $((SECONDS - t0)) s"
}

t_all=$SECONDS
for a in "${arch_list[@]}"; do
	case $a in
	amd64) for i in "${image_list[@]}"; do build_native "$i"; done ;;
	arm64) build_arm64 ;;
	esac
done
log "done in $((SECONDS - t_all)) s:"
for i in "${image_list[@]}"; do
	for a in "${arch_list[@]}"; do
		t=$tag
		[ "$a" = amd64 ] || t=$tag-$a
		docker image inspect "camhub-$i:$t" >/dev/null 2>&1 || continue
		docker image inspect -f "camhub-$i:$t {{.Os}}/{{.Architecture}} {{.Size}}" "camhub-$i:$t" |
			awk '{ printf "  %-32s %-12s %6.1f MB\n", $1, $2, $3 / 1e6 }' >&2
	done
done
