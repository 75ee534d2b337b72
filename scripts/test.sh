#!/usr/bin/env bash
# Runs camhub's checks and tests: gofmt, go vet, and every test with the race
# detector and gocv's Mat leak profile. Installs what the tests need first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet -tags matprofile ./...
# The hub and the web viewer need no cgo: only capture, encoding, the viewer
# window and clip export link OpenCV or libjpeg-turbo.
CGO_ENABLED=0 go build ./hub/... ./web/... ./internal/wire/...
cgodeps=$(go list -deps ./hub/... ./web/... | grep -E '^(gocv\.io/x/gocv|camhub/internal/turbojpeg|camhub/internal/avcodec|camhub/internal/videojpeg)(/|$)' || true)
if [ -n "$cgodeps" ]; then
	echo "hub and web must build without cgo, but they depend on:" >&2
	echo "$cgodeps" >&2
	echo "(go list -deps ./hub/... ./web/... shows the path; keep OpenCV code out of their imports)" >&2
	exit 1
fi
go test -race -tags matprofile -count=1 -timeout 30m "$@" ./...
# The Docker packaging (deploy/docker/Dockerfile's images, docker-compose.yml,
# the Grafana dashboard against a real Prometheus): where a Docker engine
# runs, unless CAMHUB_COMPOSE_TEST=0. ~15 min the first time (base images,
# apt), ~4 min after a Go change (the cgo build), ~1.5 min otherwise.
if [ "${CAMHUB_COMPOSE_TEST:-1}" != 0 ] && docker info >/dev/null 2>&1; then scripts/compose-test.sh; fi
# The Raspberry Pi builds and install (make release, the arm64 and armhf
# agents under qemu against a local hub, systemd-analyze verify, install.sh
# over SSH into a systemd container): unless CAMHUB_PI_TEST=0. ~11 min the
# first time (sysroots, cross-compiles), ~2 min after. Without a Docker
# engine the SSH install step is left out, as the compose test is.
if [ "${CAMHUB_PI_TEST:-1}" != 0 ]; then
	docker info >/dev/null 2>&1 || export CAMHUB_PI_TEST_DOCKER="${CAMHUB_PI_TEST_DOCKER:-0}"
	scripts/pi-test.sh
	# The motion detector's arm64 build under qemu: the same events as amd64
	# (~1.5 min with pi-test's builds of gocv in Go's cache; ~14 min without).
	scripts/motion-arm64-test.sh
fi
# The arm64 images (scripts/images.sh: cross-built, loaded without a registry)
# run under qemu-user in Docker, an arm64 agent streaming to an amd64 hub:
# where a Docker engine runs, unless CAMHUB_IMAGES_TEST=0. Reuses the compose
# test's images and the Pi test's sysroot and Go build cache: ~2 min.
if [ "${CAMHUB_IMAGES_TEST:-1}" != 0 ] && docker info >/dev/null 2>&1; then scripts/images-test.sh; fi
