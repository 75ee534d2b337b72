#!/usr/bin/env bash
# Makes local stand-ins for the two base images the Dockerfile builds FROM,
# for a Docker engine that cannot pull from a registry (the camhub test
# machines have none). Where a registry is reachable you do not need this:
# `docker compose build` pulls the official images.
#
#   debian:bookworm-slim   debootstrap --variant=minbase bookworm, imported
#   golang:1.26-bookworm   that rootfs + the build tools the official golang
#                          image has (gcc, g++, make, pkg-config, git, ...)
#                          + this machine's Go toolchain (/usr/local/go)
#
# An image that already exists is left alone (FORCE=1 rebuilds both).
# Environment:
#   ROOTFS_DIR   where the debootstrap rootfs is kept (default /var/tmp/camhub-docker/rootfs)
#   DEBIAN_MIRROR (default http://deb.debian.org/debian)
#   GOROOT_SRC   the Go toolchain to copy in (default: $(go env GOROOT))
#   SLIM_IMAGE, GO_IMAGE  the names to give them (defaults as above)
# Needs root (debootstrap) and, if missing, installs debootstrap with apt-get.
set -euo pipefail

SLIM_IMAGE=${SLIM_IMAGE:-debian:bookworm-slim}
GO_IMAGE=${GO_IMAGE:-golang:1.26-bookworm}
ROOTFS_DIR=${ROOTFS_DIR:-/var/tmp/camhub-docker/rootfs}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
FORCE=${FORCE:-0}

log() { printf '[base-images] %s\n' "$*" >&2; }
have_image() { [ "$FORCE" != 1 ] && docker image inspect "$1" >/dev/null 2>&1; }
sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if have_image "$SLIM_IMAGE"; then
	log "$SLIM_IMAGE exists"
else
	if [ ! -e "$ROOTFS_DIR/.camhub-debootstrap-complete" ]; then
		command -v debootstrap >/dev/null || sudo_ apt-get install -y debootstrap
		log "debootstrap bookworm into $ROOTFS_DIR (a few minutes)"
		sudo_ rm -rf "$ROOTFS_DIR"
		sudo_ mkdir -p "$(dirname "$ROOTFS_DIR")"
		sudo_ debootstrap --variant=minbase bookworm "$ROOTFS_DIR" "$DEBIAN_MIRROR"
		sudo_ touch "$ROOTFS_DIR/.camhub-debootstrap-complete"
	fi
	log "importing $SLIM_IMAGE"
	# Make the rootfs look like the official slim image: the same apt
	# sources (with updates and security) and no apt lists or caches.
	tmp=$(mktemp -d)
	trap 'sudo_ rm -rf "$tmp"' EXIT
	sudo_ cp -a "$ROOTFS_DIR" "$tmp/rootfs"
	sudo_ rm -f "$tmp/rootfs/.camhub-debootstrap-complete" "$tmp/rootfs/etc/apt/sources.list"
	sudo_ tee "$tmp/rootfs/etc/apt/sources.list.d/debian.sources" >/dev/null <<-SRC
		Types: deb
		URIs: http://deb.debian.org/debian
		Suites: bookworm bookworm-updates
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

		Types: deb
		URIs: http://deb.debian.org/debian-security
		Suites: bookworm-security
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	SRC
	sudo_ tee "$tmp/rootfs/etc/apt/apt.conf.d/docker-clean" >/dev/null <<-'CONF'
		DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
		APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
		Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
	CONF
	sudo_ sh -c "rm -rf '$tmp/rootfs'/var/lib/apt/lists/* '$tmp/rootfs'/var/cache/apt/archives/*.deb"
	sudo_ tar -C "$tmp/rootfs" -c . | docker import \
		-c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		-c 'CMD ["bash"]' - "$SLIM_IMAGE" >/dev/null
	sudo_ rm -rf "$tmp"
	trap - EXIT
	# The golang stand-in is built on the slim one: make it again too.
	docker image rm "$GO_IMAGE" >/dev/null 2>&1 || true
fi

if have_image "$GO_IMAGE"; then
	log "$GO_IMAGE exists"
else
	GOROOT_SRC=${GOROOT_SRC:-$(go env GOROOT)}
	log "building $GO_IMAGE from $SLIM_IMAGE + $GOROOT_SRC ($("$GOROOT_SRC/bin/go" version))"
	ctx=$(mktemp -d)
	trap 'rm -rf "$ctx"' EXIT
	# A build context of just the toolchain (no pkg/obj caches).
	tar -C "$GOROOT_SRC" --exclude=./pkg/obj -c . | (mkdir "$ctx/go" && tar -C "$ctx/go" -x)
	cat >"$ctx/Dockerfile" <<-DOCKERFILE
		FROM $SLIM_IMAGE
		# What the official golang:*-bookworm image has besides Go
		# (buildpack-deps:bookworm-scm + the cgo toolchain).
		RUN apt-get update \\
		 && apt-get install -y --no-install-recommends ca-certificates curl git \\
		      g++ gcc libc6-dev make pkg-config \\
		 && rm -rf /var/lib/apt/lists/*
		ENV GOLANG_VERSION=$("$GOROOT_SRC/bin/go" env GOVERSION | sed 's/^go//') GOTOOLCHAIN=local GOPATH=/go
		ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
		COPY go /usr/local/go
		RUN mkdir -p /go/src /go/bin && chmod -R 1777 /go
		WORKDIR /go
	DOCKERFILE
	docker build -q -t "$GO_IMAGE" "$ctx" >/dev/null
	rm -rf "$ctx"
	trap - EXIT
fi
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "^($SLIM_IMAGE|$GO_IMAGE) " >&2 || true
