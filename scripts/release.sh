#!/usr/bin/env bash
# Builds camhub release archives for Raspberry Pi OS bookworm on this
# (amd64 Debian/Ubuntu) machine: `make release` runs it.
#
# For each architecture it cross-compiles the agent, hub and viewer with cgo
# against Debian bookworm's own OpenCV (4.6, the one Raspberry Pi OS bookworm
# has) in a sysroot, and leaves in dist/:
#
#   camhub-<version>-linux-<arch>/          bin/{agent,hub,viewer}, deploy/pi, configs, ...
#   camhub-<version>-linux-<arch>.tar.gz    the same directory as an archive
#   SHA256SUMS                              of the archives and the binaries
#
# Run with --help for the options.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
	cat <<'EOF'
Usage: scripts/release.sh [--arch LIST] [--out DIR] [--programs LIST] [--version V]

Cross-compiles camhub for Raspberry Pi OS bookworm and packs it in DIR
(default dist/), replacing the camhub-* releases already there.

  --arch LIST       comma-separated Debian architectures (default arm64,armhf):
                      arm64  64-bit Raspberry Pi OS (Pi 3, 4, 5, Zero 2 W)
                      armhf  32-bit Raspberry Pi OS on ARMv7 or later (Pi 2, 3, 4, 5,
                             Zero 2 W); not the ARMv6 Pi 1 and Zero/Zero W
                      amd64  this machine's architecture, built natively (for tests)
  --out DIR         output directory (default dist)
  --programs LIST   which of agent,hub,viewer to build (default all three; also detector,
                    the motion detector as a program of its own, for images)
  --version V       the version to stamp (default: git describe --tags --always --dirty)
  -h, --help        this help

Environment:
  CAMHUB_SYSROOT_DIR     where sysroots are kept and reused (default /var/tmp/camhub-sysroot);
                         <dir>/<arch> is Debian bookworm's libopencv-dev for <arch>, about
                         1.4 GB each, made once with debootstrap (a few minutes)
  CAMHUB_DEBIAN_MIRROR   the Debian mirror for the sysroots (default http://deb.debian.org/debian)
  CAMHUB_SYSROOT_PACKAGES  the -dev packages in a sysroot (default libopencv-dev,libturbojpeg0-dev,
                         libavcodec-dev,libswscale-dev,libavutil-dev,libyuv-dev)

Missing tools (debootstrap, crossbuild-essential-<arch>, qemu-user-static,
binutils, pkg-config) are installed with apt-get, with sudo unless root.
EOF
}

log() { printf '[release %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

arches=arm64,armhf
out=dist
programs=agent,hub,viewer
version=
while [ $# -gt 0 ]; do
	case $1 in
	--arch) arches=${2:?--arch needs a value}; shift 2 ;;
	--arch=*) arches=${1#*=}; shift ;;
	--out) out=${2:?--out needs a value}; shift 2 ;;
	--out=*) out=${1#*=}; shift ;;
	--programs) programs=${2:?--programs needs a value}; shift 2 ;;
	--programs=*) programs=${1#*=}; shift ;;
	--version) version=${2:?--version needs a value}; shift 2 ;;
	--version=*) version=${1#*=}; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
done

sysroot_base=${CAMHUB_SYSROOT_DIR:-/var/tmp/camhub-sysroot}
mirror=${CAMHUB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# The development packages the cgo code needs (pkg-config: opencv4 for gocv,
# libturbojpeg for internal/turbojpeg, libavcodec, libswscale, libavutil and
# libyuv, linked statically, for internal/avcodec's H.264). A sysroot made
# with another list, or another recipe version, is made again.
sysroot_packages=${CAMHUB_SYSROOT_PACKAGES:-libopencv-dev,libturbojpeg0-dev,libavcodec-dev,libswscale-dev,libavutil-dev,libyuv-dev}
sysroot_recipe=2

command -v go >/dev/null || die "go is not on PATH (Go 1.26: https://go.dev/dl/)"
host_arch=$(dpkg --print-architecture 2>/dev/null) || die "this script needs a Debian or Ubuntu machine (dpkg)"

pkgs=()
IFS=, read -r -a pkg_names <<<"$programs"
for p in "${pkg_names[@]}"; do
	case $p in agent | hub | viewer | detector) pkgs+=("./cmd/$p") ;; *) die "unknown program '$p' (agent, hub, viewer, detector)" ;; esac
done
IFS=, read -r -a arch_list <<<"$arches"
[ ${#arch_list[@]} -gt 0 ] || die "no architecture given"

if [ -z "$version" ]; then
	version=$(git describe --tags --always --dirty 2>/dev/null || true)
	[ -n "$version" ] || version=dev
fi
case $version in *[!A-Za-z0-9._+~-]*) die "version '$version' has characters unfit for a file name" ;; esac

# apt_need CMD PACKAGE...: installs PACKAGEs unless CMD is on PATH.
apt_updated=0
apt_need() {
	local cmd=$1; shift
	command -v "$cmd" >/dev/null && return 0
	log "installing $* (for $cmd)"
	local alog
	alog=$(mktemp)
	if [ $apt_updated = 0 ]; then
		as_root apt-get update >"$alog" 2>&1 || { cat "$alog" >&2; rm -f "$alog"; die "apt-get update failed"; }
		apt_updated=1
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >"$alog" 2>&1 \
		|| { tail -30 "$alog" >&2; rm -f "$alog"; die "apt-get install $* failed"; }
	rm -f "$alog"
}
apt_need readelf binutils
apt_need pkg-config pkg-config

# arch_vars ARCH: sets triplet, goarch, goarm, qemu for a Debian architecture.
arch_vars() {
	goarm=
	case $1 in
	arm64) triplet=aarch64-linux-gnu goarch=arm64 qemu=qemu-aarch64-static ;;
	armhf) triplet=arm-linux-gnueabihf goarch=arm goarm=7 qemu=qemu-arm-static ;;
	amd64) triplet=x86_64-linux-gnu goarch=amd64 qemu= ;;
	*) die "unsupported architecture '$1' (arm64, armhf, amd64)" ;;
	esac
}

# make_sysroot ARCH: Debian bookworm's $sysroot_packages for ARCH, unpacked
# (not configured: nothing of it runs here) into $sysroot_base/ARCH, once.
# Also writes .camhub-files, "package path" for every file, to tell which
# package a library the binaries link comes from.
make_sysroot() {
	local arch=$1 sr=$sysroot_base/$1 tmp stamp
	stamp="camhub sysroot recipe $sysroot_recipe: bookworm $arch $sysroot_packages"
	if [ -f "$sr/.camhub-sysroot" ] && [ "$(cat "$sr/.camhub-sysroot")" = "$stamp" ]; then
		log "$arch: reusing sysroot $sr"
		return 0
	fi
	apt_need debootstrap debootstrap
	tmp=$sr.partial
	log "$arch: making sysroot $sr: debootstrap of bookworm with $sysroot_packages from $mirror (a few minutes, ~1.4 GB)"
	local t0=$SECONDS
	as_root rm -rf "$tmp" "$sr"
	as_root mkdir -p "$sysroot_base"
	as_root debootstrap --foreign --arch "$arch" --variant=minbase --include="$sysroot_packages" \
		bookworm "$tmp" "$mirror" >"$sysroot_base/debootstrap-$arch.log" 2>&1 \
		|| { tail -20 "$sysroot_base/debootstrap-$arch.log" >&2; die "$arch: debootstrap failed (log: $sysroot_base/debootstrap-$arch.log)"; }
	log "$arch: unpacking $(find "$tmp/var/cache/apt/archives" -name '*.deb' | wc -l) packages"
	local f pkg
	for f in "$tmp"/var/cache/apt/archives/*.deb; do
		as_root dpkg-deb -x "$f" "$tmp" || die "$arch: cannot unpack $f"
		pkg=$(dpkg-deb -f "$f" Package)
		dpkg-deb -c "$f" | awk -v p="$pkg" '{ sub(/^\./, "", $6); print p, $6 }'
	done | as_root tee "$tmp/.camhub-files" >/dev/null
	# Made by update-alternatives in the packages' scripts, which do not run here.
	local d
	for d in blas lapack; do
		if [ -e "$tmp/usr/lib/$triplet/$d/lib$d.so.3" ]; then
			as_root ln -sf "$d/lib$d.so.3" "$tmp/usr/lib/$triplet/lib$d.so.3"
		fi
	done
	[ -f "$tmp/usr/lib/$triplet/pkgconfig/opencv4.pc" ] || die "$arch: the sysroot has no opencv4.pc"
	echo "$stamp" | as_root tee "$tmp/.camhub-sysroot" >/dev/null
	as_root mv "$tmp" "$sr"
	log "$arch: sysroot ready in $((SECONDS - t0)) s ($(du -sh "$sr" | cut -f1))"
}

# runtime_packages FILES BINARY...: the Debian packages with the shared
# libraries the binaries link, one a line. FILES is "package path" lines
# (the sysroot's .camhub-files), or empty to ask this machine's dpkg.
runtime_packages() {
	local files=$1 lib pkg; shift
	readelf -d "$@" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort -u | while read -r lib; do
		if [ -n "$files" ]; then
			pkg=$(awk -v s="/$triplet/$lib" 'substr($2, length($2) - length(s) + 1) == s { print $1; exit }' "$files")
		else
			pkg=$(dpkg -S "*/$triplet/$lib" 2>/dev/null | sed -n '1s/:.*//p')
		fi
		[ -n "$pkg" ] || die "no package has $lib (linked by the binaries)"
		echo "$pkg"
	done | sort -u
}

build_arch() {
	local arch=$1 sr='' name dir t0
	arch_vars "$arch"
	name=camhub-$version-linux-$arch
	dir=$out/$name
	local -a env_=(CGO_ENABLED=1 GOOS=linux "GOARCH=$goarch")
	if [ "$arch" = "$host_arch" ]; then
		pkg-config --exists opencv4 || die "amd64: OpenCV's development files are missing: apt-get install libopencv-dev"
		[ -f /usr/include/libyuv.h ] || die "amd64: libyuv's development files are missing: apt-get install libyuv-dev"
	else
		[ "$host_arch" = amd64 ] || die "cross-compiling is only set up from amd64 (this is $host_arch)"
		apt_need "$triplet-g++" "crossbuild-essential-$arch"
		apt_need "$qemu" qemu-user-static
		make_sysroot "$arch"
		sr=$sysroot_base/$arch
		env_+=(
			"PKG_CONFIG_SYSROOT_DIR=$sr"
			"PKG_CONFIG_LIBDIR=$sr/usr/lib/$triplet/pkgconfig:$sr/usr/share/pkgconfig"
			"CC=$triplet-gcc --sysroot=$sr"
			"CXX=$triplet-g++ --sysroot=$sr"
			"CGO_LDFLAGS=-Wl,--allow-shlib-undefined -Wl,-rpath-link=$sr/usr/lib/$triplet"
		)
		[ -n "$goarm" ] && env_+=("GOARM=$goarm")
	fi
	log "$arch: building ${pkg_names[*]} $version (cgo; the first build of gocv for an architecture takes a few minutes)"
	t0=$SECONDS
	rm -rf "$dir"
	mkdir -p "$dir/bin"
	env "${env_[@]}" go build -trimpath -ldflags "-s -w -X camhub/internal/version.Version=$version" \
		-o "$dir/bin/" "${pkgs[@]}" || die "$arch: go build failed"
	log "$arch: built in $((SECONDS - t0)) s: $(cd "$dir/bin" && for b in *; do printf '%s %s  ' "$b" "$(du -h "$b" | cut -f1)"; done)"

	# A quick check that the binaries are what we meant and start: --version
	# under qemu with the sysroot's libraries.
	local b got
	for b in "$dir"/bin/*; do
		file_arch=$(readelf -h "$b" | sed -n 's/.*Machine: *//p')
		if [ -n "$qemu" ]; then
			got=$(QEMU_LD_PREFIX=$sr "$qemu" "$b" --version 2>&1) || die "$arch: $b --version under $qemu failed: $got"
		else
			got=$("$b" --version 2>&1) || die "$arch: $b --version failed: $got"
		fi
		case $got in *"$version"*) ;; *) die "$arch: $b --version says '$got', not $version" ;; esac
		log "$arch: $(basename "$b"): $file_arch, --version: $got"
	done

	# What a Pi needs besides the binaries.
	runtime_packages "${sr:+$sr/.camhub-files}" "$dir"/bin/* >"$dir/runtime-packages" || die "$arch: cannot list the runtime packages"
	log "$arch: runtime packages: $(tr '\n' ' ' <"$dir/runtime-packages")"
	echo "$version" >"$dir/VERSION"
	mkdir -p "$dir/deploy" "$dir/configs"
	cp -R deploy/pi "$dir/deploy/pi"
	cp configs/agent.yaml configs/agent-secure.yaml "$dir/configs/"
	cp README.md "$dir/"
	[ -f LICENSE ] && cp LICENSE "$dir/"
	(cd "$dir" && find . -type f -printf '%P\n' | LC_ALL=C sort | xargs sha256sum >"$out/.sums-$arch" && mv "$out/.sums-$arch" SHA256SUMS)
	tar -C "$out" --owner=0 --group=0 --numeric-owner -czf "$out/$name.tar.gz" "$name"
	log "$arch: $out/$name.tar.gz ($(du -h "$out/$name.tar.gz" | cut -f1))"
}

for a in "${arch_list[@]}"; do arch_vars "$a"; done # unknown ones fail here, before anything is removed
mkdir -p "$out"
out=$(cd "$out" && pwd)
# dist/ holds one release: deploy/pi/install.sh picks the binaries from it.
rm -rf "$out"/camhub-*-linux-* "$out/SHA256SUMS"
t_all=$SECONDS
for a in "${arch_list[@]}"; do
	build_arch "$a"
done
(cd "$out" && sha256sum -- camhub-*.tar.gz camhub-*/bin/* >SHA256SUMS)
log "done in $((SECONDS - t_all)) s: $out"
ls -l "$out" >&2
